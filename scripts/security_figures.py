"""Run the escape suite (tests/security) and print attacks tried / held per class.

    python scripts/security_figures.py [--markdown]

Each test of tests/security is one attack (or one variant of one); a passing test is an
attack held. The table is what docs/security.md quotes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSES = {
    "test_git": "1. host-side git never trusts a checkout",
    "test_editor": "2. the editor is confined beneath the checkout",
    "test_processes": "3. no process outlives its command",
    "test_limits": "4. resource limits",
    "test_secrets": "5. secrets by allowlist, home and repository hidden",
    "test_lsp": "6, 8, 9. language server: TCP token, apply review, crafted params",
    "test_trust": "7. a workspace cannot weaken its sandbox",
    "test_apply": "8. applying is reviewed (`fix --apply`)",
    "test_containment": "10. one sample cannot end the run",
    "test_harness": "the harness itself",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/security", f"--junitxml={report}"],
            cwd=ROOT,
            check=False,
        )  # fmt: skip
        cases = ET.parse(report).getroot().iter("testcase")
        tried: Counter[str] = Counter()
        held: Counter[str] = Counter()
        for case in cases:
            module = case.get("classname", "").rsplit(".", 1)[-1]
            tried[module] += 1
            if not any(child.tag in ("failure", "error", "skipped") for child in case):
                held[module] += 1
    rows = [(CLASSES.get(m, m), tried[m], held[m]) for m in sorted(tried, key=_order)]
    total = (sum(tried.values()), sum(held.values()))
    if args.markdown:
        print("| class | attacks tried | held |\n| --- | ---: | ---: |")
        for name, t, h in rows:
            print(f"| {name} | {t} | {h} |")
        print(f"| **all** | **{total[0]}** | **{total[1]}** |")
    else:
        for name, t, h in rows:
            print(f"{t:4d} tried {h:4d} held  {name}")
        print(f"{total[0]:4d} tried {total[1]:4d} held  all")
    return 0 if total[0] == total[1] else 1


def _order(module: str) -> int:
    names = list(CLASSES)
    return names.index(module) if module in names else len(names)


if __name__ == "__main__":
    sys.exit(main())
