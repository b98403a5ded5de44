"""Escape suite, class 10: one sample's tree ends only that sample.

A hostile sample leaves a tree the host cannot stage (`.GIT/x`, a path git refuses);
a hostile test leaves a test tree full of things a reset must remove (a nested
repository whose HEAD is a FIFO, `.GIT/x`, `.git`, a chmod 000 folder, a symlink in
place of a tracked folder). The run still completes with the honest sample's fix, and
the hostile sample's reason is recorded in its trajectory and in run.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.security.harness import bash, fix_turns, hostile_fix
from tests.security.test_git import repro_turns, run_record


def trajectory(tmp_path: Path, name: str) -> dict[str, Any]:
    found = list((tmp_path / "kat-state").rglob(f"{name}.traj.json"))
    assert len(found) == 1, found
    return json.loads(found[0].read_text())


def test_dot_GIT_path_in_one_sample_ends_only_that_sample(tmp_path: Path) -> None:
    """Sample 0 creates `.GIT/x` (git refuses the path, so its tree cannot be staged);
    sample 1 fixes the bug. The run succeeds with sample 1's fix; sample 0 ends with
    `tree_error` naming the path, in run.json and in its trajectory."""
    hostile = [bash("mkdir .GIT && echo x > .GIT/x"), *fix_turns()]
    run = hostile_fix(
        tmp_path,
        generate={"0": hostile, "1": fix_turns()},
        testgen={"0": repro_turns()},
        args=("--samples", "2"),
    )

    assert run.returncode == 0, run.stderr
    best = run.ranked["candidates"][0]
    assert "return hi" in best["patch"] and best["tests_passed"] == 1
    assert best["samples"] == [1]
    record = run_record(tmp_path)
    assert record["status"] == "done"
    sample = next(s for s in record["samples"] if s["index"] == 0)
    assert sample["status"] == "failed", sample
    assert sample["exit_status"].startswith("tree_error") and ".GIT/x" in sample["exit_status"]
    info = trajectory(tmp_path, "generate-0")["info"]
    assert info["exit_status"] == "tree_error" and ".GIT/x" in info["reason"]
    assert run.repo_after == run.repo_before


def test_a_test_leaving_an_unresettable_mess_ends_no_tree_and_no_run(tmp_path: Path) -> None:
    """The test command leaves a nested repository with a FIFO as HEAD (git would block
    on it), `.GIT/x`, `.git`, a chmod 000 folder and a symlink where a tracked folder
    was, on the base and on every candidate. The host resets each tree by its own
    walk: every tree is tested, the fix ranks, and the run is done."""
    mess = (
        "mkdir -p sub && git -C sub init -q && rm sub/.git/HEAD && mkfifo sub/.git/HEAD; "
        "mkdir -p .GIT .git locked/deep && echo x > .GIT/x && echo x > locked/deep/f; "
        "chmod 000 locked/deep; mkdir -p /tmp/elsewhere && ln -s /tmp/elsewhere docs; "
        "python3 test_clamp.py"
    )
    run = hostile_fix(
        tmp_path,
        generate={"0": fix_turns(), "1": [bash("echo note > notes.txt"), *fix_turns()]},
        testgen={"0": repro_turns(mess)},
        args=("--samples", "2"),
    )

    assert run.returncode == 0, run.stderr
    record = run_record(tmp_path)
    assert record["status"] == "done" and record["tests"][0]["kept"], record["tests"]
    candidates = run.ranked["candidates"]
    assert len(candidates) == 2 and all(c["tests_passed"] == 1 for c in candidates), candidates
    assert run.repo_after == run.repo_before


def test_folders_nested_thousands_deep_end_no_run(tmp_path: Path) -> None:
    """Sample 0 nests 3,000 folders (a recursive removal dies of RecursionError, and the
    paths pass PATH_MAX) and leaves them read-only; sample 1 fixes the bug. The run is
    done with the fix, and no checkout is left in the cache."""
    nest = (
        "python3 -c \"import os\nfor _ in range(3000): os.mkdir('d'); os.chdir('d')\" "
        "&& chmod 555 d"
    )
    run = hostile_fix(
        tmp_path,
        generate={"0": [bash(nest), *fix_turns()], "1": fix_turns()},
        args=("--samples", "2"),
    )

    assert run.returncode == 0, run.stderr
    assert "return hi" in run.ranked["candidates"][0]["patch"]
    assert run_record(tmp_path)["status"] == "done"
    assert not any((tmp_path / "kat-cache" / "checkouts").glob("*/*")), "a checkout was left"
