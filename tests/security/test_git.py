"""Escape suite, class 1: host-side git never trusts a tree the sandbox can write.

Every attack plants git state that would make a host git run a command: fsmonitor,
hooks (hooksPath, post-checkout, pre-commit, reference-transaction), filter / diff /
textconv drivers named by `.gitattributes`, `core.worktree` pointing at the user's
repository, alternates, a nested repository with its own hostile config. The command
is `touch <tmp_path>/PWNED`: tmp_path is outside every sandbox's writable tree, so the
marker can only appear if the host ran it. Each run also carries an honest sample and
a real reproduction test, so the runs prove the trees were really staged, tested and
reset by the host while the attack sat in them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.security.harness import (
    CANARY,
    SECRET_FILES,
    bash,
    editor,
    fix_turns,
    hostile_fix,
    submit,
)

REPRO = "from clamp import clamp\nassert clamp(15, 0, 10) == 10, clamp(15, 0, 10)\n"


def repro_turns(command: str = "python3 test_clamp.py") -> list[dict[str, Any]]:
    """A test sample: a test that fails on the bug and passes on the fix."""
    return [editor(command="create", path="test_clamp.py", file_text=REPRO), submit(command)]


def plant_git_traps(marker: Path, user_repo: Path) -> str:
    """bash that arms every git trap it can in the current folder's repository, in a
    nested repository `sub/`, and in any git dir it can reach beside its folder."""
    # Inside the sandbox the marker's folder is read-only: the traps fail quietly there
    # (as they would for an attacker) and only a run on the host can create the marker.
    evil = f"touch {marker} 2>/dev/null; cat"
    return f"""
[ -d .git ] || git init -q .
arm() {{
  git config core.fsmonitor "{evil}"
  git config core.hooksPath "$PWD/hooks-x"
  git config filter.x.clean "{evil}"
  git config filter.x.smudge "{evil}"
  git config filter.x.process "{evil}"
  git config diff.x.textconv "{evil}"
  git config diff.x.command "{evil}"
  git config core.alternateRefsCommand "{evil}"
  mkdir -p hooks-x "$(git rev-parse --git-dir)/hooks"
  for h in post-checkout pre-commit reference-transaction post-index-change post-commit; do
    for d in hooks-x "$(git rev-parse --git-dir)/hooks"; do
      printf '#!/bin/sh\\ntouch {marker} 2>/dev/null; exit 0\\n' > "$d/$h"; chmod +x "$d/$h"
    done
  done
}}
arm
git config core.worktree {user_repo}
echo {user_repo}/.git/objects > .git/objects/info/alternates
printf '* filter=x diff=x\\n' > .gitattributes
mkdir -p sub && (cd sub && git init -q . && arm && echo n > n.txt && git add n.txt \\
  && git -c user.name=x -c user.email=x@x commit -qm n && git config core.worktree {user_repo})
W=none
for d in ../.*.git ../*/.git ../.objects; do
  if [ -d "$d" ] && touch "$d/probe" 2>/dev/null; then W="$W $d"; fi
  git --git-dir="$d" config core.fsmonitor "{evil}" 2>/dev/null && W="$W config:$d"
done
"""


def run_record(tmp_path: Path) -> dict[str, Any]:
    records = list((tmp_path / "kat-state").rglob("run.json"))
    assert len(records) == 1, records
    return json.loads(records[0].read_text())


def test_test_command_arming_git_traps_runs_nothing_on_the_host(tmp_path: Path) -> None:
    """Test phase: the test command arms fsmonitor, hooks, filters, worktree and
    alternates in its test tree (and tries the git dirs beside it) before the test;
    the host validates, records, resets and cleans the trees around it: nothing runs
    on the host, the git dirs beside stay unwritable, the user's repo is unchanged."""
    marker = tmp_path / "PWNED"
    repo_path = tmp_path / "user-repo"
    arm = plant_git_traps(marker, repo_path)
    command = arm + '\npython3 test_clamp.py; rc=$?; echo "writable=$W"; exit $rc'
    run = hostile_fix(
        tmp_path,
        generate={"0": fix_turns()},
        testgen={"0": repro_turns(command)},
    )

    assert run.returncode == 0, run.stderr
    assert not marker.exists()
    assert run.repo_after == run.repo_before
    record = run_record(tmp_path)
    assert record["tests"][0]["kept"], record["tests"]
    assert "writable=none" in record["tests"][0]["reason"], record["tests"]
    best = run.ranked["candidates"][0]
    assert "return hi" in best["patch"] and best["tests_passed"] == 1


def test_git_traps_in_a_sample_checkout_run_nothing_and_lose_no_fix(tmp_path: Path) -> None:
    """Generate phase: a sample arms every trap in its checkout's `.git`, in a nested
    repository and through `.gitattributes`, points `core.worktree` at the user's repo,
    and leaves a candidate carrying its attributes into the test phase. The host's diff,
    test trees and removal run none of it; the honest sample's fix ranks with its test."""
    marker = tmp_path / "PWNED"
    arm = plant_git_traps(marker, tmp_path / "user-repo")
    hostile = [
        bash(arm + "\necho W=$W"),
        bash("git add -A && git commit -qm armed; git status --short | head -3; true"),
        editor(
            command="str_replace",
            path="clamp.py",
            old_str="    if x < lo:\n        return lo",
            new_str="    if x < lo:  # armed\n        return lo",
        ),
        submit(),
    ]
    run = hostile_fix(
        tmp_path,
        generate={"0": hostile, "1": fix_turns()},
        testgen={"0": repro_turns()},
        args=("--samples", "2"),
    )

    assert run.returncode == 0, run.stderr
    assert not marker.exists()
    assert run.repo_after == run.repo_before
    assert "W=none" in run.observations()[0], run.observations()
    best = run.ranked["candidates"][0]
    assert "return hi" in best["patch"] and best["tests_passed"] == 1
    record = run_record(tmp_path)
    armed = next(s for s in record["samples"] if s["index"] == 0)
    assert armed["status"] == "submitted" and armed["patch_chars"] > 0, record["samples"]
    groups = record["candidates"] + record["filtered"]
    assert next(g for g in groups if g["id"] == "c0")["tests_total"] == 1, groups


def test_symlinks_among_changed_files_are_read_as_links_not_followed(tmp_path: Path) -> None:
    """Sample 0 adds a symlink `key` to the user's SSH key; sample 1 writes the key's very
    content as a regular file `key`; sample 2 adds links to a FIFO and to /dev/zero.
    The host reads changed files from the blobs git hashed: samples 0 and 1 are not
    merged (nothing read through the link), and nothing hangs or bloats."""
    key = tmp_path / "home" / ".ssh" / "id_rsa"
    link = [bash(f"ln -s {key} key"), *fix_turns()]
    copy = [editor(command="create", path="key", file_text=SECRET_FILES[".ssh/id_rsa"])]
    odd = [bash("mkfifo inner.fifo && ln -s inner.fifo pipe && ln -s /dev/zero z"), *fix_turns()]
    run = hostile_fix(
        tmp_path,
        generate={"0": link, "1": [*copy, *fix_turns()], "2": odd},
        args=("--samples", "3"),
    )

    assert run.returncode == 0, run.stderr
    candidates = run.ranked["candidates"]
    assert sorted(c["id"] for c in candidates) == ["c0", "c1", "c2"], candidates
    assert all(c["cluster_size"] == 1 for c in candidates), candidates
    linked = next(c for c in candidates if c["id"] == "c0")
    assert f"+{key}" in linked["patch"] and CANARY not in linked["patch"]
    odd_patch = next(c for c in candidates if c["id"] == "c2")["patch"]
    assert "+/dev/zero" in odd_patch and "+inner.fifo" in odd_patch
    assert run.repo_after == run.repo_before
