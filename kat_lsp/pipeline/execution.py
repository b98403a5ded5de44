"""Execution filtering: validate reproduction tests on the snapshot, run them on candidates.

A test is the patch a `testgen` sample left plus its submitted command. It is kept
only when it fails on the snapshot (it reproduces the issue). Each kept test then runs
against each candidate representative: one checkout per candidate with the candidate
committed, each test laid on top in turn (a conflict counts as a failure), run
sandboxed with a timeout, and the tree reset. Checkouts run in parallel, bounded by
`test_concurrency`; tests of one checkout run one after another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio

from kat_lsp.config import KatConfig
from kat_lsp.interfaces import CommandResult, Executor
from kat_lsp.sandbox import make_executor
from kat_lsp.workspace import Snapshot, create_checkout
from kat_lsp.workspace.git import GitError, run_git
from kat_lsp.workspace.patches import PatchError, apply_patch


@dataclass
class ReproTest:
    index: int
    patch: str
    command: str
    kept: bool = False
    reason: str = ""
    """Why it was dropped, or what it did on the base when kept."""


@dataclass
class TestRun:
    test: int
    passed: bool
    detail: str
    outcome: Literal["ran", "timed_out", "not_run"] = "ran"
    """`not_run`: the candidate or the test could not be laid down."""


@dataclass
class TreeReport:
    runs: list[TestRun] = field(default_factory=list)
    regression_failures: set[str] | None = None
    regression_exit: int | None = None

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.runs)


def _git(path: Path, *commands: tuple[str, ...]) -> None:
    """Run git commands in `path`, one after another; the first failure raises GitError."""
    for command in commands:
        run_git(command, cwd=path)


_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def failed_ids(result: CommandResult) -> set[str]:
    """Failing test ids from pytest-like output; `<exit N>` when none can be read."""
    ids = set(_FAILED.findall(result.output))
    if not ids and result.exit_code != 0:
        ids = {f"<exit {result.exit_code}>"}
    return ids


def _describe(result: CommandResult) -> str:
    if result.timed_out:
        return "timed out"
    tail = result.output.strip().splitlines()[-3:]
    return f"exit {result.exit_code}" + (": " + " | ".join(tail) if tail else "")


async def run_on_tree(
    snapshot: Snapshot,
    name: str,
    candidate_patch: str,
    tests: list[ReproTest],
    config: KatConfig,
    *,
    regression: bool = False,
) -> TreeReport:
    """Lay `candidate_patch` on a fresh checkout, then run each test (and the project's
    test command when `regression`). A candidate that does not apply fails every test."""
    report = TreeReport()
    checkout = await anyio.to_thread.run_sync(create_checkout, snapshot, name)
    executor = make_executor(checkout.path, config, view=snapshot.sandbox_view())
    try:
        await executor.start()  # the sandbox boots while git lays the candidate down
        try:
            if candidate_patch:
                await anyio.to_thread.run_sync(lambda: apply_patch(checkout.path, candidate_patch))
            await anyio.to_thread.run_sync(
                _git,
                checkout.path,
                ("add", "-A"),
                ("commit", "-q", "--allow-empty", "--no-verify", "-m", "candidate"),
            )
        except (PatchError, GitError) as exc:
            report.runs = [
                TestRun(t.index, False, f"candidate does not apply: {exc}", "not_run")
                for t in tests
            ]
            return report
        for test in tests:
            report.runs.append(await _run_test(checkout.path, executor, test, config))
        if regression and config.test_command:
            result = await executor.run(config.test_command, timeout=config.test_timeout)
            report.regression_exit = result.exit_code
            report.regression_failures = failed_ids(result)
        return report
    finally:
        with anyio.CancelScope(shield=True):
            await executor.aclose()
            await anyio.to_thread.run_sync(checkout.remove)


async def _run_test(path: Path, executor: Executor, test: ReproTest, config: KatConfig) -> TestRun:
    try:
        if test.patch:
            await anyio.to_thread.run_sync(lambda: apply_patch(path, test.patch))
    except PatchError as exc:
        return TestRun(
            test.index, False, f"test does not apply on this candidate: {exc}", "not_run"
        )
    try:
        result = await executor.run(test.command, timeout=config.test_timeout)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_git, path, ("reset", "-q", "--hard"), ("clean", "-qfd"))
    passed = result.exit_code == 0 and not result.timed_out
    return TestRun(
        test.index, passed, _describe(result), "timed_out" if result.timed_out else "ran"
    )


async def validate_tests(
    snapshot: Snapshot, tests: list[ReproTest], config: KatConfig
) -> list[ReproTest]:
    """Run every test on the snapshot; keep those that fail there, say why others went."""
    runnable = [t for t in tests if not t.reason]
    if runnable:
        report = await run_on_tree(snapshot, "validate", "", runnable, config)
        for test, run in zip(runnable, report.runs, strict=True):
            if run.passed:
                test.reason = "passes on the base (does not reproduce the issue)"
            elif run.outcome == "timed_out":
                test.reason = f"timed out on the base (> {config.test_timeout:g} s)"
            elif run.outcome == "not_run":
                test.reason = "could not be run: " + run.detail
            else:
                test.kept = True
                test.reason = f"fails on the base ({run.detail})"
    return tests
