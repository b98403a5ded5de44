"""Semantic dedup speed: `group_candidates` on 500 candidates across six languages.

One ~300-line file per language (Python, JavaScript, TypeScript, Go, Rust, Java).
Each candidate applies one of four real fixes to one function (a changed comparison
or constant) under random formatting noise (comments, re-wrapped arguments, quote
style, blank lines, trailing commas); one in ten also reformats another file. The
expected groups are the distinct (file, fix) pairs, checked before timing.

Measured side by side in one process, median of --rounds:
- first:  the process's first call (grammars loaded, every cache empty);
- cold:   caches cleared (snapshot trees, subtree memo, file digests);
- warm:   the same candidates again (every file digest cached);
- naive:  every candidate file parsed and walked from scratch (no incremental
          reparse, no memo), the simplest exact design, for scale.
Issue goal: cold < 1 s for 500 candidates.

    python bench/bench_dedup.py [--candidates 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kat_lsp.pipeline import normalize  # noqa: E402
from kat_lsp.pipeline.dedup import DedupInput, group_candidates  # noqa: E402
from kat_lsp.pipeline.normalize import clear_caches, normal_form  # noqa: E402

FUNCTIONS = 32
FIXES = [(3, "<=", "3"), (3, "<", "4"), (11, ">", "3"), (19, "<", "5")]  # (function, op, const)
BASE_FIX = ("<", "3")

# Per language: file name, header, footer, function template, comment marker,
# whether quotes are interchangeable, whether call arguments may end with a comma.
LANGS = {
    "python": ("calc.py", "import math\n\n\n", "", """def compute_{i}(value, limit, scale):
    \"\"\"Compute step {i} of the pipeline.\"\"\"{c}
    total = helper_{i}({args})
    if value {op} limit:
        return total * {k}
    items = [value, limit, scale]
    return math.fsum(items) + len({q}label-{i}{q})


""", "  # ", True, True),
    "javascript": ("calc.js", "import { helper } from './helper.js';\n\n", "", """export function compute{i}(value, limit, scale) {{{c}
  const total = helper({args});
  if (value {op} limit) {{
    return total * {k};
  }}
  const items = [value, limit, scale];
  return items.reduce((a, b) => a + b, 0) + {q}label-{i}{q}.length;
}}

""", "  // ", True, True),
    "typescript": ("calc.ts", "import { helper } from './helper';\n\n", "", """export function compute{i}(value: number, limit: number, scale: number): number {{{c}
  const total: number = helper({args});
  if (value {op} limit) {{
    return total * {k};
  }}
  const items: number[] = [value, limit, scale];
  return items.reduce((a, b) => a + b, 0) + {q}label-{i}{q}.length;
}}

""", "  // ", True, True),
    "go": ("calc.go", "package calc\n\nimport \"strings\"\n\n", "", """func Compute{i}(value int, limit int, scale int) int {{{c}
\ttotal := helper({args})
\tif value {op} limit {{
\t\treturn total * {k}
\t}}
\titems := []int{{value, limit, scale}}
\treturn sum(items) + len(strings.TrimSpace({q}label-{i}{q}))
}}

""", "  // ", False, True),
    "rust": ("calc.rs", "use std::cmp;\n\n", "", """pub fn compute_{i}(value: i64, limit: i64, scale: i64) -> i64 {{{c}
    let total = helper({args});
    if value {op} limit {{
        return total * {k};
    }}
    let items = vec![value, limit, scale];
    items.iter().sum::<i64>() + cmp::max({q}label-{i}{q}.len() as i64, 1)
}}

""", "  // ", False, True),
    "java": ("Calc.java", "package calc;\n\npublic class Calc {\n", "}\n", """    public static long compute{i}(long value, long limit, long scale) {{{c}
        long total = helper({args});
        if (value {op} limit) {{
            return total * {k};
        }}
        long[] items = {{value, limit, scale}};
        return java.util.Arrays.stream(items).sum() + {q}label-{i}{q}.length();
    }}

""", "  // ", False, False),
}  # fmt: skip


def render(lang: str, fix: tuple[int, str, str] | None, noise: random.Random | None) -> bytes:
    """The language's file with `fix` applied; `noise` reformats the fixed function."""
    _, header, footer, template, comment, quotes, trailing = LANGS[lang]
    parts = [header]
    for i in range(FUNCTIONS):
        op, const = fix[1:] if fix and fix[0] == i else BASE_FIX
        noisy = noise is not None and fix is not None and fix[0] == i
        args, c, q = "value, scale, 7", "", '"'
        if noisy and noise is not None:
            if noise.random() < 0.5:
                indent = " " * noise.choice([8, 12, 6])
                comma = "," if trailing and noise.random() < 0.7 else ""
                args = f"\n{indent}value,\n{indent}scale,\n{indent}7{comma}\n    "
            if noise.random() < 0.5:
                c = f"\n    {comment.strip()} fixed in this sample"
            if quotes and noise.random() < 0.5:
                q = "'"
        text = template.format(i=i, op=op, k=const, args=args, c=c, q=q)
        if noisy and noise is not None and noise.random() < 0.3:
            text = text.replace("\n", "\n\n", 2)
        parts.append(text)
    parts.append(footer)
    return "".join(parts).encode()


def make_candidates(count: int, seed: int = 7) -> tuple[list[DedupInput], int]:
    """Candidates and the number of groups they must form."""
    rng = random.Random(seed)
    langs = sorted(LANGS)
    bases = {lang: render(lang, None, None) for lang in langs}
    items, expected = [], set()
    for sample in range(count):
        lang = langs[sample % len(langs)]
        fix = rng.choice(FIXES)
        expected.add((lang, fix))
        path = LANGS[lang][0]
        files: dict[str, bytes | None] = {path: render(lang, fix, rng)}
        base: dict[str, bytes | None] = {path: bases[lang]}
        if rng.random() < 0.1:  # also reformats another file: must not matter
            other = langs[(sample + 1) % len(langs)]
            other_path = LANGS[other][0]
            files[other_path] = bases[other].replace(b"\n", b"\n\n", 3)
            base[other_path] = bases[other]
        items.append(DedupInput(sample, files, base))
    return items, len(expected)


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def naive(items: list[DedupInput]) -> None:
    depth, normalize.MEMO_MAX_DEPTH = normalize.MEMO_MAX_DEPTH, 0  # no subtree memo
    try:
        for item in items:
            for path, content in item.files.items():
                normal_form(path, content or b"")  # no snapshot tree: a fresh parse
    finally:
        normalize.MEMO_MAX_DEPTH = depth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    items, expected = make_candidates(args.candidates)
    changed = sum(len(i.files) for i in items)
    sizes = [len(render(lang, None, None).splitlines()) for lang in LANGS]
    print(f"{len(items)} candidates, {changed} changed files of {min(sizes)}-{max(sizes)} lines")

    first = timed(lambda: group_candidates(items))
    groups = group_candidates(items)
    assert len(groups) == expected, f"expected {expected} groups, got {len(groups)}"
    cold, warm, base = [], [], []
    for _ in range(args.rounds):
        clear_caches()
        cold.append(timed(lambda: group_candidates(items)))
        warm.append(timed(lambda: group_candidates(items)))
        base.append(timed(lambda: naive(items)))
    c, w, n = (statistics.median(x) for x in (cold, warm, base))
    print(f"groups: {len(groups)} (expected {expected}), largest {max(g.size for g in groups)}")
    for label, t in (("first", first), ("cold", c), ("warm", w), ("naive", n)):
        print(f"{label:>6}: {t * 1000:8.1f} ms  {len(items) / t:10.0f} candidates/s")
    print(f"ratios: naive/cold = {n / c:.1f}x, cold/warm = {c / w:.1f}x")
    print(f"goal: cold < 1 s for 500 -> {'met' if c * 500 / len(items) < 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
