"""Execution filtering: validate reproduction tests on the snapshot, run them on candidates.

A test is the patch a `testgen` sample left plus its submitted command. It is kept
only when it fails on the snapshot (it reproduces the issue). Each kept test then runs
against each candidate representative: one test tree per candidate with the candidate
recorded in the tree's private index, each test laid on top in turn (a conflict counts
as a failure), run sandboxed with a timeout, and the tree reset. Checkouts run in
parallel, bounded by `test_concurrency`; tests of one checkout run one after another.

A test tree's git dir lives beside it, where the sandbox cannot write: every host git
over it (record, reset, clean) reads only what the host wrote (docs/architecture/
workspace.md). What a test leaves that cannot be reset ends that tree's remaining
tests (`not_run`, with the reason), never the run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Literal

import anyio

from kat_lsp.config import KatConfig
from kat_lsp.interfaces import CommandResult, Executor
from kat_lsp.sandbox import make_executor
from kat_lsp.workspace import Snapshot, create_checkout, testtree
from kat_lsp.workspace.checkouts import Checkout
from kat_lsp.workspace.git import WorkspaceError
from kat_lsp.workspace.patches import PatchError, apply_patch

log = logging.getLogger(__name__)


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
    checkout = await anyio.to_thread.run_sync(
        lambda: create_checkout(snapshot, name, inner_git=False)
    )
    executor = make_executor(checkout.path, config, view=snapshot.sandbox_view())
    try:
        await executor.start()  # the sandbox boots while git lays the candidate down
        try:
            if candidate_patch:
                await anyio.to_thread.run_sync(lambda: apply_patch(checkout.path, candidate_patch))
            base = await anyio.to_thread.run_sync(testtree.record_tree, checkout)
        except (PatchError, WorkspaceError) as exc:
            report.runs = [
                TestRun(t.index, False, f"candidate does not apply: {exc}", "not_run")
                for t in tests
            ]
            return report
        broken = ""
        for test in tests:
            if broken:
                report.runs.append(TestRun(test.index, False, broken, "not_run"))
                continue
            run, broken = await _run_test(checkout, base, executor, test, config)
            report.runs.append(run)
        if regression and config.test_command and not broken:
            result = await executor.run(config.test_command, timeout=config.test_timeout)
            report.regression_exit = result.exit_code
            report.regression_failures = failed_ids(result)
        return report
    finally:
        with anyio.CancelScope(shield=True):
            await executor.aclose()
            try:
                await anyio.to_thread.run_sync(checkout.remove)
            except OSError:
                log.exception("could not remove test tree %s", checkout.path)


async def _run_test(
    checkout: Checkout, base: str, executor: Executor, test: ReproTest, config: KatConfig
) -> tuple[TestRun, str]:
    """Run one test on the tree, then reset the tree to `base`. Returns the run and,
    when the tree could not be reset, why the tree's remaining tests cannot run."""
    path = checkout.path
    try:
        if test.patch:
            await anyio.to_thread.run_sync(lambda: apply_patch(path, test.patch))
    except (PatchError, WorkspaceError) as exc:
        run = TestRun(test.index, False, f"test does not apply on this candidate: {exc}", "not_run")
        return run, await _reset(checkout, base, test)
    try:
        result = await executor.run(test.command, timeout=config.test_timeout)
    finally:
        with anyio.CancelScope(shield=True):
            broken = await _reset(checkout, base, test)
    passed = result.exit_code == 0 and not result.timed_out
    outcome: Literal["ran", "timed_out"] = "timed_out" if result.timed_out else "ran"
    return TestRun(test.index, passed, _describe(result), outcome), broken


async def _reset(checkout: Checkout, base: str, test: ReproTest) -> str:
    try:
        await anyio.to_thread.run_sync(testtree.restore, checkout, base)
    except WorkspaceError as exc:
        return f"not run: test {test.index} left a tree that cannot be reset ({exc})"
    return ""


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
