"""Generated Python with known defects in every function, for the analysis benchmarks."""

from __future__ import annotations


def generate(lines: int = 1000, *, title: str = "Generated module for a benchmark.") -> str:
    out = [f'"""{title}"""', "import re", "import subprocess", ""]
    i = 0
    while len(out) < lines:
        out += [
            f"def process_{i}(items, wanted, name, flag=False):",
            f'    """Process batch {i}."""',
            '    text = ""',
            "    found = []",
            "    for item in items:",
            "        if item in wanted:",
            "            found.append(item)",
            "        text += str(item)",
            "        rx = re.compile(name)",
            "        if rx.match(text) and flag:",
            "            found.append(text)",
            "    if flag:",
            '        subprocess.call("echo " + name, shell=True)',
            "    return sorted(found)[0] if found else text",
            "",
            "",
        ]
        i += 1
    return "\n".join(out[:lines]) + "\n"
