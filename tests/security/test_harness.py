"""The harness itself: an honest run succeeds, and canaries show when a command prints them
(with the sandbox off, so the check proves the canaries would be seen)."""

from __future__ import annotations

from pathlib import Path

from tests.security.harness import CANARY, bash, fix_turns, hostile_fix


def test_honest_run_finds_the_fix_and_leaves_the_repo_alone(tmp_path: Path) -> None:
    run = hostile_fix(tmp_path)
    assert run.returncode == 0, run.stderr
    assert "return hi" in run.ranked["candidates"][0]["patch"]
    assert run.repo_after == run.repo_before
    assert CANARY not in run.model_saw


def test_canaries_are_visible_without_a_sandbox(tmp_path: Path) -> None:
    """Without bubblewrap the home is readable: the suite's canaries really show."""
    run = hostile_fix(
        tmp_path,
        generate=[bash("cat ~/.pgpass"), *fix_turns()],
        args=("--sandbox", "none"),
    )
    assert CANARY in run.observations()[0], run.stderr
