"""Grouping candidates: formatting-only variants together, real differences apart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kat_lsp.pipeline.dedup import (
    UNCHANGED_KEY,
    DedupInput,
    candidate_key,
    group_candidates,
    group_candidates_async,
)

BASE_PY = b"def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    return x\n"
FIX = b"def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    if x > hi:\n        return hi\n    return x\n"
FIX_REFORMATTED = (
    b"def clamp(x, lo, hi):\n"
    b"    if x < lo:  # below\n"
    b"        return lo\n"
    b"\n"
    b"    if (x > hi):\n"
    b"        return hi\n"
    b"    return x\n"
)
FIX_OFF_BY_ONE = FIX.replace(b"x > hi", b"x >= hi")


def cand(
    sample: int, files: Mapping[str, bytes | None], base: Mapping[str, bytes | None]
) -> DedupInput:
    return DedupInput(sample, dict(files), {p: base.get(p) for p in files})


def test_formatting_variants_form_one_group_led_by_the_earliest_sample() -> None:
    base = {"clamp.py": BASE_PY}
    groups = group_candidates(
        [
            cand(3, {"clamp.py": FIX_REFORMATTED}, base),
            cand(1, {"clamp.py": FIX_OFF_BY_ONE}, base),
            cand(2, {"clamp.py": FIX}, base),
            cand(5, {"clamp.py": FIX}, base),
        ]
    )
    assert [(g.representative, g.samples, g.size) for g in groups] == [
        (1, [1], 1),
        (2, [2, 3, 5], 3),
    ]
    assert groups[0].key != groups[1].key


def test_keys_are_stable_hex_digests() -> None:
    item = cand(0, {"clamp.py": FIX}, {"clamp.py": BASE_PY})
    key = candidate_key(item)
    assert key is not None and int(key, 16) >= 0
    # a fresh interpreter computes the same key (no per-process hashing in it)
    code = (
        "from kat_lsp.pipeline.dedup import DedupInput, candidate_key;"
        f"print(candidate_key(DedupInput(0, {{'clamp.py': {FIX!r}}}, {{'clamp.py': {BASE_PY!r}}})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == key


def test_empty_candidates_are_dropped() -> None:
    groups = group_candidates([DedupInput(0, {}, {}), cand(1, {"a.py": b"x = 1\n"}, {})])
    assert [g.samples for g in groups] == [[1]]
    assert candidate_key(DedupInput(0, {}, {})) is None


def test_formatting_only_candidates_share_the_unchanged_key() -> None:
    base = {"clamp.py": BASE_PY}
    reformatted = BASE_PY.replace(b"x < lo", b"(x<lo)") + b"# trailing comment\n"
    groups = group_candidates(
        [cand(0, {"clamp.py": reformatted}, base), cand(1, {"clamp.py": BASE_PY + b"\n\n"}, base)]
    )
    assert [(g.samples, g.unchanged) for g in groups] == [([0, 1], True)]
    assert groups[0].key == UNCHANGED_KEY
    assert not group_candidates([cand(2, {"clamp.py": FIX}, base)])[0].unchanged


def test_a_reformatted_extra_file_does_not_separate_equal_fixes() -> None:
    other = b"VALUE = {'a': 1}\n"
    base = {"clamp.py": BASE_PY, "other.py": other}
    groups = group_candidates(
        [
            cand(0, {"clamp.py": FIX, "other.py": b'VALUE = {\n    "a": 1,\n}\n'}, base),
            cand(1, {"clamp.py": FIX_REFORMATTED}, base),
        ]
    )
    assert [g.samples for g in groups] == [[0, 1]]


def test_multiple_files_must_all_match() -> None:
    base = {"clamp.py": BASE_PY, "util.py": b"def one():\n    return 1\n"}
    util_fix = b"def one():\n    return 1.0\n"
    groups = group_candidates(
        [
            cand(0, {"clamp.py": FIX, "util.py": util_fix}, base),
            cand(1, {"util.py": util_fix + b"\n", "clamp.py": FIX_REFORMATTED}, base),
            cand(2, {"clamp.py": FIX, "util.py": b"def one():\n    return 2\n"}, base),
            cand(3, {"clamp.py": FIX}, base),
        ]
    )
    assert [g.samples for g in groups] == [[0, 1], [2], [3]]


def test_syntax_error_candidate_groups_only_with_its_whitespace_twin() -> None:
    base = {"clamp.py": BASE_PY}
    broken = FIX.replace(b"if x > hi:", b"if x > hi")
    groups = group_candidates(
        [
            cand(0, {"clamp.py": broken}, base),
            cand(1, {"clamp.py": broken.replace(b"return hi", b"return   hi   ")}, base),
            cand(2, {"clamp.py": broken.replace(b"return hi", b"return hi  # clip")}, base),
            cand(3, {"clamp.py": FIX}, base),
        ]
    )
    assert [g.samples for g in groups] == [[0, 1], [2], [3]]


def test_unknown_extension_compares_whitespace_normalised_text() -> None:
    base = {"notes.c": b"int f(int x) {\n  return x;\n}\n"}
    fix = b"int f(int x) {\n  return x + 1;\n}\n"
    groups = group_candidates(
        [
            cand(0, {"notes.c": fix}, base),
            cand(1, {"notes.c": b"int f(int x) {   \n  return x  +  1;\n\n}\n"}, base),
            cand(2, {"notes.c": fix.replace(b"+ 1", b"- 1")}, base),
        ]
    )
    assert [g.samples for g in groups] == [[0, 1], [2]]


def test_deleted_and_created_files() -> None:
    base: dict[str, bytes | None] = {"old.py": b"x = 1\n", "new.py": None}
    groups = group_candidates(
        [
            cand(0, {"old.py": None}, base),
            cand(1, {"old.py": None}, base),
            cand(2, {"old.py": b""}, base),  # emptied is not deleted
            cand(3, {"new.py": b"y = 2\n"}, base),
            cand(4, {"new.py": b"y  =  2  # new\n"}, base),
            cand(5, {"./new.py": b"y = 2\n"}, {}),  # base missing: did not exist
        ]
    )
    assert [g.samples for g in groups] == [[0, 1], [2], [3, 4, 5]]


def test_binary_files_compare_by_exact_bytes() -> None:
    base = {"logo.png": b"\x89PNG\r\n\x1a\n\x00old"}
    new = b"\x89PNG\r\n\x1a\n\x00new"
    groups = group_candidates(
        [
            cand(0, {"logo.png": new}, base),
            cand(1, {"logo.png": new}, base),
            cand(2, {"logo.png": new + b" "}, base),
        ]
    )
    assert [g.samples for g in groups] == [[0, 1], [2]]


def test_each_language_groups_reformatted_fixes(tmp_path: Path) -> None:
    """Files as a real repository holds them; candidates differ by formatting or not."""
    snippets = {
        "app.js": ("function f(a) { return a + 1 }\n", "function f(a) {\n  return a + 2;\n}\n"),
        "app.ts": (
            "export const f = (a: number): number => a + 1\n",
            "export const f = (a: number): number =>\n  a + 2;\n",
        ),
        "main.go": (
            "package main\n\nfunc f(a int) int { return a + 1 }\n",
            "package main\n\nfunc f(a int) int {\n\treturn a + 2\n}\n",
        ),
        "lib.rs": ("fn f(a: i32) -> i32 { a + 1 }\n", "fn f(a: i32) -> i32 {\n    a + 2\n}\n"),
        "F.java": (
            "class F { int f(int a) { return a + 1; } }\n",
            "class F {\n    int f(int a) {\n        return a + 2;\n    }\n}\n",
        ),
    }
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for name, (old, _) in snippets.items():
        (tmp_path / name).write_text(old)
    subprocess.run(["git", "-C", str(tmp_path), "add", "."], check=True)
    for name, (old, new) in snippets.items():
        (tmp_path / name).write_text(new)
        head = subprocess.run(
            ["git", "-C", str(tmp_path), "show", f":{name}"], capture_output=True, check=True
        ).stdout
        base = {name: head}
        compact = old.replace("1", "2").encode()
        wrong = old.replace("1", "3").encode()
        items = [
            cand(0, {name: (tmp_path / name).read_bytes()}, base),
            cand(1, {name: compact}, base),
            cand(2, {name: wrong}, base),
        ]
        assert [g.samples for g in group_candidates(items)] == [[0, 1], [2]], name


async def test_async_grouping_runs_off_the_event_loop() -> None:
    base = {"clamp.py": BASE_PY}
    items = [cand(i, {"clamp.py": FIX if i % 2 else FIX_OFF_BY_ONE}, base) for i in range(6)]
    groups = await group_candidates_async(items)
    assert [g.samples for g in groups] == [[0, 2, 4], [1, 3, 5]]


def test_concurrent_runs_in_threads_agree() -> None:
    """Two runs of the server may dedup at once: parsers are per thread, caches shared."""
    base = {"clamp.py": BASE_PY}
    items = [
        cand(i, {"clamp.py": [FIX, FIX_REFORMATTED, FIX_OFF_BY_ONE][i % 3]}, base)
        for i in range(30)
    ]
    expected = [[i for i in range(30) if i % 3 != 2], [i for i in range(30) if i % 3 == 2]]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: group_candidates(items), range(8)))
    assert all([g.samples for g in groups] == expected for groups in results)
