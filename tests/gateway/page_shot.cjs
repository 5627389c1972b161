// Opens the usage page in headless Chromium (Debian's, driven by playwright-core), waits until
// it has drawn its data, saves a full-page screenshot and prints what it rendered as JSON.
//   node page_shot.cjs URL SCREENSHOT.png
"use strict";
const { chromium } = require("playwright-core");

const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

async function main() {
  const [url, shot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: FLAGS,
    timeout: 30000,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = [];
    page.on("pageerror", (err) => problems.push("page error: " + err.message));
    page.on("console", (msg) => { if (msg.type() === "error") problems.push("console: " + msg.text()); });
    await page.goto(url, { waitUntil: "load", timeout: 15000 });
    await page.waitForSelector('body[data-ready="true"], body[data-ready="error"], body[data-ready="login"]',
      { timeout: 15000 });
    await page.screenshot({ path: shot, fullPage: true });
    const rendered = await page.evaluate(() => {
      const text = (sel) => Array.from(document.querySelectorAll(sel), (n) => n.textContent.trim());
      const figures = {};
      for (const node of document.querySelectorAll("[data-figure]")) figures[node.dataset.figure] = node.textContent;
      return {
        ready: document.body.dataset.ready,
        keyInUrl: location.hash.includes("key="),
        figures,
        models: Array.from(document.querySelectorAll("#models tbody tr"), (tr) => Array.from(tr.children, (td) => td.textContent)),
        reasons: text("#recent td.reason"),
        dailyBars: document.querySelectorAll("#daily rect").length,
        dailyRange: document.querySelector("#daily-range").textContent,
        error: document.querySelector("#error").hidden ? null : document.querySelector("#error").textContent,
      };
    });
    rendered.problems = problems;
    process.stdout.write(JSON.stringify(rendered) + "\n");
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + "\n");
  process.exit(1);
});
