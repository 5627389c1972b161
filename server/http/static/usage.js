// The usage page: fetches /api/ai/usage/details with the API key and draws it. No framework,
// no build step; every value is put in with textContent, never as HTML.
"use strict";

const KEY_STORE = "orchestrator.apiKey";
const REFRESH_MS = 15000;
const $ = (sel) => document.querySelector(sel);

function usd(value) {
  // As the CLI prints it: cents, or four decimals for the sums one cheap call costs.
  if (value === 0 || Math.abs(value) >= 0.1) {
    return "$" + value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  if (Math.abs(value) >= 0.0001) return "$" + value.toFixed(4);
  return "$" + value.toPrecision(2);  // a fraction of a hundredth of a cent: still not zero
}
const int = (n) => n.toLocaleString("en-US");
const pct = (x) => (x * 100).toFixed(1) + "%";
const ms = (x) => (x === null || x === undefined ? "–" : x >= 1000 ? (x / 1000).toFixed(2) + " s" : x.toFixed(0) + " ms");

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function figure(name, text) {
  $(`[data-figure="${name}"]`).textContent = text;
}

function takeKeyFromUrl() {
  const match = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (match) {
    localStorage.setItem(KEY_STORE, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

async function load() {
  const key = localStorage.getItem(KEY_STORE);
  const headers = key ? { Authorization: "Bearer " + key } : {};
  const resp = await fetch("/api/ai/usage/details?days=30", { headers, cache: "no-store" });
  if (resp.status === 401) {
    showLogin();
    return null;
  }
  const data = await resp.json();
  if (!resp.ok) throw new Error(data.message || resp.statusText);
  return data;
}

function showLogin() {
  $("#content").hidden = true;
  $("#login").hidden = false;
  document.body.dataset.ready = "login";
}

function drawCards(d) {
  $("#period").textContent = d.period;
  $("#updated").textContent = "updated " + d.generated_at.replace("T", " ").replace("Z", " UTC");
  figure("spend", usd(d.budget.spent));
  const b = d.budget;
  if (b.monthly_limit === null) {
    figure("budget", "no monthly budget set");
    $("#budget-bar").style.width = "0";
  } else {
    figure("budget", `${b.used_percentage}% of ${usd(b.monthly_limit)} budget`);
    $("#budget-bar").style.width = Math.min(100, b.used_percentage) + "%";
    $("#budget-bar").className = b.used_percentage >= 95 ? "hot" : b.used_percentage >= 80 ? "warm" : "";
  }
  figure("calls", int(d.usage.total_requests));
  figure("tokens", `${int(d.usage.total_tokens)} tokens, ${int(d.usage.errors)} errors`);
  figure("cache-rate", pct(d.cache.hit_rate));
  figure("cache-hits", `${int(d.cache.hits)} of ${int(d.cache.calls)} calls from cache`);
  figure("latency-p50", ms(d.latency.p50_ms));
  figure("latency-p95", `p95 ${ms(d.latency.p95_ms)} over the last ${d.latency.samples} model calls`);
}

function drawDaily(days) {
  const box = $("#daily");
  box.replaceChildren();
  const width = 900, height = 180, pad = 28, top = 12;
  const max = Math.max(...days.map((x) => x.cost), 0);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + pad}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "spend per day");
  const slot = width / days.length;
  days.forEach((day, i) => {
    const h = max > 0 ? (day.cost / max) * (height - top) : 0;
    const bar = document.createElementNS(ns, "rect");
    bar.setAttribute("x", (i * slot + slot * 0.15).toFixed(1));
    bar.setAttribute("y", (height - h).toFixed(1));
    bar.setAttribute("width", (slot * 0.7).toFixed(1));
    bar.setAttribute("height", Math.max(h, day.calls ? 1 : 0).toFixed(1));
    bar.setAttribute("class", "bar");
    const tip = document.createElementNS(ns, "title");
    tip.textContent = `${day.date}: ${usd(day.cost)}, ${day.calls} calls`;
    bar.appendChild(tip);
    svg.appendChild(bar);
    if (i % 5 === 0 || i === days.length - 1) {
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", (i * slot + slot / 2).toFixed(1));
      label.setAttribute("y", height + 18);
      label.setAttribute("text-anchor", "middle");
      label.textContent = day.date.slice(5);
      svg.appendChild(label);
    }
  });
  const peak = document.createElementNS(ns, "text");
  peak.setAttribute("x", 4);
  peak.setAttribute("y", 10);
  peak.textContent = "max " + usd(max);
  svg.appendChild(peak);
  box.appendChild(svg);
  const today = days[days.length - 1];
  $("#daily-range").textContent = `${days[0].date} – ${today.date}; today ${usd(today.cost)}`;
}

function drawModels(rows) {
  const body = $("#models tbody");
  body.replaceChildren();
  const max = Math.max(...rows.map((r) => r.cost), 0);
  if (!rows.length) {
    const tr = el("tr");
    const td = el("td", "no calls this month", "muted");
    td.colSpan = 7;
    tr.appendChild(td);
    body.appendChild(tr);
  }
  for (const r of rows) {
    const tr = el("tr");
    tr.dataset.model = r.model;
    tr.append(
      el("td", r.model),
      el("td", int(r.requests), "num"),
      el("td", int(r.tokens), "num"),
      el("td", int(r.cache_hits), "num"),
      el("td", ms(r.avg_latency_ms), "num"),
      el("td", usd(r.cost), "num cost"),
    );
    const cell = el("td", null, "bar-col");
    const bar = el("div", null, "hbar");
    bar.style.width = max > 0 ? ((r.cost / max) * 100).toFixed(1) + "%" : "0";
    cell.appendChild(bar);
    tr.appendChild(cell);
    body.appendChild(tr);
  }
}

function drawRecent(rows) {
  const body = $("#recent tbody");
  body.replaceChildren();
  for (const r of rows) {
    const tr = el("tr");
    const outcome = r.cache_hit ? "cache hit" : r.outcome;
    tr.append(
      el("td", r.time.slice(5, 19).replace("T", " ")),
      el("td", r.model),
      el("td", r.task),
      el("td", `${int(r.input_tokens)} / ${int(r.output_tokens)}`, "num"),
      el("td", ms(r.latency_ms), "num"),
      el("td", usd(r.cost), "num"),
      el("td", outcome, r.outcome === "ok" ? "ok" : "bad"),
      el("td", r.reason, "reason"),
    );
    body.appendChild(tr);
  }
}

async function refresh() {
  try {
    const data = await load();
    if (!data) return;
    $("#error").hidden = true;
    $("#login").hidden = true;
    drawCards(data);
    drawDaily(data.daily);
    drawModels(data.by_model);
    drawRecent(data.recent);
    $("#content").hidden = false;
    document.body.dataset.ready = "true";
  } catch (err) {
    $("#error").textContent = "Could not load usage: " + err.message;
    $("#error").hidden = false;
    document.body.dataset.ready = "error";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  takeKeyFromUrl();
  $("#login").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(KEY_STORE, $("#key").value.trim());
    refresh();
  });
  refresh();
  setInterval(refresh, REFRESH_MS);
});
