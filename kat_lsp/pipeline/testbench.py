"""Streamed execution filtering for one run: reproduction tests meet candidate groups.

Tests are validated once on the snapshot; every candidate group runs the kept tests as
soon as both exist, usually while other samples are still generating, so the end of a
round only waits for the groups its last samples brought. Results are cached per group
key (the kept tests never change after round 0); the project's `test_command` on the
snapshot is the regression baseline. A tree that fails ends only its own report.
"""

from __future__ import annotations

import logging

import anyio
from anyio.abc import TaskGroup

from kat_lsp.config import KatConfig
from kat_lsp.pipeline.execution import (
    ReproTest,
    TestRun,
    TreeReport,
    run_on_tree,
    validate_tests,
)
from kat_lsp.pipeline.ranking import Scored
from kat_lsp.workspace import Snapshot

log = logging.getLogger(__name__)


class TestBench:
    __test__ = False  # not a pytest class

    def __init__(self, snapshot: Snapshot, config: KatConfig) -> None:
        self.snapshot = snapshot
        self.config = config
        self.limiter = anyio.CapacityLimiter(max(1, config.test_concurrency))
        self.tests: list[ReproTest] = []
        self.ready = anyio.Event()
        self.reports: dict[str, TreeReport] = {}
        self.groups: dict[str, tuple[int, str]] = {}
        """Group keys seen so far -> (a member sample, its patch)."""
        self.base: TreeReport | None = None

    @property
    def kept(self) -> list[ReproTest]:
        return [t for t in self.tests if t.kept]

    def offer(self, key: str, sample: int, patch: str, tg: TaskGroup | None) -> None:
        """A candidate group exists: run the tests on it now if they are ready."""
        if key in self.groups:
            return
        self.groups[key] = (sample, patch)
        if self.ready.is_set() and tg is not None:
            tg.start_soon(self.run_group, key)

    async def validate(self, tests: list[ReproTest]) -> None:
        """Keep the tests that fail on the snapshot; from now on groups run them."""
        async with self.limiter:
            self.tests = await validate_tests(self.snapshot, tests, self.config)
        self.ready.set()

    async def finish(self) -> None:
        """Every group seen so far has its report (and the baseline exists)."""
        async with anyio.create_task_group() as tg:
            if self.config.test_command:
                tg.start_soon(self.run_base)
            for key in list(self.groups):
                tg.start_soon(self.run_group, key)

    async def on_tree(self, name: str, patch: str) -> TreeReport:
        """The tree's report; a failure of this tree ends only it (every test `not_run`)."""
        async with self.limiter:
            try:
                return await run_on_tree(
                    self.snapshot,
                    name,
                    patch,
                    self.kept,
                    self.config,
                    regression=bool(self.config.test_command),
                )
            except Exception as exc:
                log.exception("test tree %s failed", name)
                detail = f"the test tree failed: {type(exc).__name__}: {exc}"
                return TreeReport([TestRun(t.index, False, detail, "not_run") for t in self.kept])

    async def run_base(self) -> None:
        if self.base is None:
            self.base = TreeReport()  # claimed
            self.base = await self.on_tree("base", "")

    async def run_group(self, key: str) -> None:
        if key in self.reports:
            return
        self.reports[key] = TreeReport()  # claimed: no second run of the same group
        sample, patch = self.groups[key]
        self.reports[key] = await self.on_tree(f"exec-c{sample}", patch)

    def score(self, group: Scored) -> None:
        """Copy the group's test results (and new failures of `test_command`) onto it."""
        report = self.reports[group.key]
        group.tests_passed, group.tests_total = report.passed, len(self.kept)
        group.test_runs = report.runs
        group.regressions = 0
        baseline = self.base.regression_failures if self.base else None
        if baseline is not None and report.regression_failures is not None:
            group.regressions = len(report.regression_failures - baseline)
