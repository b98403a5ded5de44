"""The KAT pipeline: snapshot → rounds of (generate ‖ testgen → dedup → execute → judge
→ reflect) → ranked candidates. The library API that the CLI and the server call.

`Pipeline(config).run(issue, root, on_event=...)` runs one issue to its end and returns
a `RunResult`; cancel the calling task to cancel the run (samples and tests stop,
checkouts are removed, the run is recorded as cancelled). Failures of samples, tests,
judges and reflections are contained and recorded; the run completes with what it has.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio

from kat_lsp.config import KatConfig
from kat_lsp.interfaces import Model, ModelResponse, Phase, RequestContext, Usage
from kat_lsp.pipeline.api import RankedCandidate, RunEvent, RunPhase, RunResult, SampleState
from kat_lsp.pipeline.dedup import DedupInput, group_candidates
from kat_lsp.pipeline.execution import ReproTest, TreeReport, run_on_tree, validate_tests
from kat_lsp.pipeline.judge import judge_candidate, reflect_on_round
from kat_lsp.pipeline.ranking import Scored, dominant_group, execution_cut, final_order
from kat_lsp.pipeline.report import round_summary, test_summary
from kat_lsp.pipeline.sample import SampleOutcome, run_sample
from kat_lsp.pipeline.store import RunStore
from kat_lsp.workspace import Snapshot, remove_run_checkouts, take_snapshot
from kat_lsp.workspace.patches import patch_files

log = logging.getLogger(__name__)

EventCallback = Callable[[RunEvent], None]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def split_budget(samples: int, rounds: int) -> list[int]:
    """K samples over R rounds, earlier rounds taking the remainder: 8 over 3 → 3, 3, 2."""
    base, extra = divmod(samples, rounds)
    return [base + (1 if r < extra else 0) for r in range(rounds)]


class LimitedModel:
    """Bounds the model requests in flight (`model_concurrency`) and sums their usage."""

    def __init__(self, model: Model, limit: int) -> None:
        self.model = model
        self.limiter = anyio.CapacityLimiter(max(1, limit))
        self.usage = Usage()

    async def query(
        self,
        messages: list[dict[str, Any]],
        *,
        ctx: RequestContext,
        tools: list[dict[str, Any]] | None = None,
        temperature: float | None = None,
    ) -> ModelResponse:
        async with self.limiter:
            response = await self.model.query(
                messages, ctx=ctx, tools=tools, temperature=temperature
            )
        self.usage.add(response.usage)
        return response


class Pipeline:
    """Runs issues through the KAT workflow with one configuration and one model."""

    def __init__(
        self, config: KatConfig, model: Model | None = None, *, runs_base: Path | None = None
    ):
        if model is None:
            config.require_endpoint()
            from kat_lsp.model.openai_model import OpenAIModel

            model = OpenAIModel(config)
        self.config = config
        self.model = model
        self.runs_base = runs_base

    async def run(
        self,
        issue: str,
        root: Path,
        *,
        overrides: Mapping[str, str] | None = None,
        on_event: EventCallback | None = None,
        run_id: str | None = None,
    ) -> RunResult:
        from kat_lsp.sandbox import check_sandbox

        check_sandbox(self.config)
        run = _Run(self, issue.strip(), Path(root).resolve(), run_id or new_run_id(), on_event)
        return await run.execute(overrides)


class _Run:
    """The state of one run; lives as long as `Pipeline.run`."""

    def __init__(
        self,
        pipeline: Pipeline,
        issue: str,
        root: Path,
        run_id: str,
        on_event: EventCallback | None,
    ):
        self.config = pipeline.config
        self.model = LimitedModel(pipeline.model, self.config.model_concurrency)
        self.issue, self.root, self.run_id, self.on_event = issue, root, run_id, on_event
        self.store = RunStore.create(run_id, pipeline.runs_base)
        self.test_limiter = anyio.CapacityLimiter(max(1, self.config.test_concurrency))
        self.phase: RunPhase = "snapshot"
        self.percentage = 0
        self.message = "taking a snapshot of the workspace"
        self.samples: dict[tuple[str, int], SampleState] = {}
        self.outcomes: list[SampleOutcome] = []
        self.tests: list[ReproTest] = []
        self.groups: dict[str, Scored] = {}
        self.ranked: list[Scored] = []
        self.reflections: list[str] = []
        self.notes: list[str] = []
        self.created = time.time()
        self.timings: dict[str, float] = {}
        self.snapshot: Snapshot | None = None
        self.base_failures: set[str] | None = None
        """Failing tests of `test_command` on the snapshot (regression baseline)."""

    # ----- events and persistence -------------------------------------------------
    def emit(self) -> None:
        if self.on_event is None:
            return
        event = RunEvent(
            self.run_id,
            self.phase,
            self.percentage,
            self.message,
            [SampleState(**vars(s)) for s in self.samples.values()],
            self.candidates(),
        )
        try:
            self.on_event(event)
        except Exception:  # a display bug must not end the run
            log.exception("event listener failed")

    def set_phase(self, phase: RunPhase, message: str, percentage: int | None = None) -> None:
        self.timings[phase] = round(time.time() - self.created, 3)
        self.phase, self.message = phase, message
        if percentage is not None:
            self.percentage = max(self.percentage, percentage)
        self.emit()

    def candidates(self) -> list[RankedCandidate]:
        return [
            RankedCandidate(
                id=f"c{c.representative}",
                rank=i + 1,
                patch=c.patch,
                judge_score=c.judge_score,
                tests_passed=c.tests_passed,
                tests_total=c.tests_total,
                cluster_size=c.size,
                samples=c.samples,
                round=c.round,
                files=c.files,
                judge_reasons=c.judge_reasons,
                regressions=c.regressions,
            )
            for i, c in enumerate(self.ranked)
        ]

    def persist(self, status: str, error: str | None = None) -> list[RankedCandidate]:
        candidates = self.candidates()
        for c in candidates:
            self.store.save_patch("candidates", c.id, c.patch)
        for t in self.tests:
            self.store.save_patch("tests", f"test-{t.index}", t.patch)
        ranked_keys = {c.key for c in self.ranked}
        self.store.save(
            {
                "run_id": self.run_id,
                "issue": self.issue,
                "root": str(self.root),
                "status": status,
                "phase": self.phase,
                "error": error,
                "created": self.created,
                "finished": time.time() if status != "running" else None,
                "snapshot_commit": self.snapshot.commit if self.snapshot else None,
                "settings": self.config.public_dict(),
                "timings": self.timings,
                "usage": self.model.usage.to_dict(),
                "samples": [
                    {**vars(s), "patch_chars": len(o.patch)}
                    for o in self.outcomes
                    if (s := self.samples.get(("generate", o.ctx.sample)))
                ],
                "tests": [
                    {"index": t.index, "command": t.command, "kept": t.kept, "reason": t.reason}
                    for t in self.tests
                ],
                "candidates": [c.to_dict() for c in candidates],
                "filtered": [
                    {
                        "id": f"c{g.representative}",
                        "samples": g.samples,
                        "tests_passed": g.tests_passed,
                        "tests_total": g.tests_total,
                    }
                    for g in self.groups.values()
                    if g.key not in ranked_keys
                ],
                "reflections": self.reflections,
                "notes": self.notes,
            }
        )
        return candidates

    def result(self, status: str, error: str | None = None) -> RunResult:
        candidates = self.persist(status, error)
        return RunResult(
            run_id=self.run_id,
            issue=self.issue,
            root=self.root,
            status=status,  # type: ignore[arg-type]
            candidates=candidates,
            snapshot_commit=self.snapshot.commit if self.snapshot else None,
            error=error,
            run_dir=self.store.path,
        )

    # ----- the run ------------------------------------------------------------------
    async def execute(self, overrides: Mapping[str, str] | None) -> RunResult:
        self.persist("running")
        self.emit()
        try:
            snapshot = await anyio.to_thread.run_sync(
                lambda: take_snapshot(self.root, overrides=_paths(overrides), run_id=self.run_id)
            )
            self.snapshot = snapshot
            await self.rounds(snapshot)
            self.set_phase("done", self.done_message(), 100)
            return self.result("done")
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                self.set_phase("cancelled", "cancelled")
                self.persist("cancelled")
            raise
        except Exception as exc:
            log.exception("run %s failed", self.run_id)
            self.set_phase("failed", f"failed: {exc}")
            return self.result("failed", f"{type(exc).__name__}: {exc}")
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.cleanup)

    def cleanup(self) -> None:
        remove_run_checkouts(self.run_id)
        if self.snapshot is not None:
            self.snapshot.remove()

    def done_message(self) -> str:
        n = len(self.ranked)
        return f"{n} candidate{'s' if n != 1 else ''}" if n else "no sample produced a candidate"

    async def rounds(self, snapshot: Snapshot) -> None:
        budget = split_budget(self.config.samples, self.config.rounds)
        total = self.config.samples + self.config.test_samples
        for i in range(self.config.samples):
            self.samples[("generate", i)] = SampleState(i, "generate", _round_of(i, budget))
        for i in range(self.config.test_samples):
            self.samples[("testgen", i)] = SampleState(i, "testgen", 0)
        first = 0
        reflection: str | None = None
        for rnd, count in enumerate(budget):
            self.set_phase(
                "generate",
                f"round {rnd + 1}/{len(budget)}: generating {count} candidates",
                5 + 65 * first // total,
            )
            async with anyio.create_task_group() as tg:
                for index in range(first, first + count):
                    tg.start_soon(self.sample, snapshot, "generate", index, rnd, reflection, total)
                if rnd == 0:
                    tg.start_soon(self.make_tests, snapshot, total)
            first += count
            await self.evaluate(snapshot, rnd)
            if rnd == len(budget) - 1:
                break
            winner = dominant_group(list(self.groups.values()), first, self.kept_tests())
            if self.config.early_stop and winner is not None:
                note = (
                    f"early stop after round {rnd + 1}: candidate c{winner.representative} holds "
                    f"{winner.size} of {first} samples and passes all {self.kept_tests()} tests"
                )
                self.notes.append(note)
                for i in range(first, self.config.samples):
                    self.samples[("generate", i)].status = "no_change"
                    self.samples[("generate", i)].exit_status = "skipped (early stop)"
                self.set_phase("judge", note)
                break
            self.set_phase("reflect", f"reflecting on round {rnd + 1}")
            text, _ = await reflect_on_round(
                self.model,
                self.config,
                self.ctx("reflect", rnd, rnd),
                issue=self.issue,
                round_text=round_summary(self.ranked, self.groups, rnd, self.tests),
            )
            if text:
                self.reflections.append(text)
                reflection = text
            self.persist("running")

    def ctx(self, phase: Phase, rnd: int, sample: int) -> RequestContext:
        return RequestContext(phase, self.run_id, rnd, sample)

    def kept_tests(self) -> int:
        return sum(t.kept for t in self.tests)

    async def sample(
        self,
        snapshot: Snapshot,
        phase: Phase,
        index: int,
        rnd: int,
        reflection: str | None,
        total: int,
    ) -> SampleOutcome:
        state = self.samples[(phase, index)]

        def on_start() -> None:
            state.status = "running"
            self.emit()

        def on_step(steps: int, action: str, usage: Usage) -> None:
            state.steps, state.last_action, state.tokens = steps, action, usage.total_tokens
            self.emit()

        outcome = await run_sample(
            ctx=self.ctx(phase, rnd, index),
            issue=self.issue,
            snapshot=snapshot,
            config=self.config,
            model=self.model,
            run_dir=self.store.path,
            reflection=reflection,
            on_step=on_step,
            on_start=on_start,
        )
        state.exit_status = outcome.exit_status
        state.status = _status_of(outcome)
        if phase == "generate":
            self.outcomes.append(outcome)
        done = sum(s.status not in ("pending", "running") for s in self.samples.values())
        self.percentage = max(self.percentage, 5 + 65 * done // total)
        self.emit()
        return outcome

    async def make_tests(self, snapshot: Snapshot, total: int) -> None:
        results: list[SampleOutcome] = []

        async def one(i: int) -> None:
            results.append(await self.sample(snapshot, "testgen", i, 0, None, total))

        async with anyio.create_task_group() as tg:
            for i in range(self.config.test_samples):
                tg.start_soon(one, i)
        tests = []
        for o in sorted(results, key=lambda o: o.ctx.sample):
            test = ReproTest(o.ctx.sample, o.patch, o.command or "")
            if o.exit_status != "submitted" or not test.command:
                test.reason = f"no test submitted ({o.exit_status})"
            tests.append(test)
        async with self.test_limiter:
            self.tests = await validate_tests(snapshot, tests, self.config)

    async def evaluate(self, snapshot: Snapshot, rnd: int) -> None:
        """Dedup all candidates so far, run the kept tests on new groups, cut, judge."""
        self.set_phase("dedup", "grouping equivalent candidates")
        by_sample = {o.ctx.sample: o for o in self.outcomes if o.patch.strip()}
        items = [
            DedupInput(i, o.files, {p: snapshot.read_file(p) for p in o.files})
            for i, o in sorted(by_sample.items())
        ]
        groups = await anyio.to_thread.run_sync(group_candidates, items)
        for g in groups:
            if g.unchanged:  # formatting-only edits are no fix
                continue
            rep = by_sample[g.representative]
            scored = self.groups.get(g.key)
            if scored is None:
                self.groups[g.key] = Scored(
                    g.key,
                    g.representative,
                    list(g.samples),
                    rep.ctx.round,
                    rep.patch,
                    patch_files(rep.patch),
                )
            else:
                scored.samples = list(g.samples)
        kept = [t for t in self.tests if t.kept]
        fresh = [
            g for g in self.groups.values() if g.tests_total != len(kept) or g.regressions is None
        ]
        self.set_phase("execute", f"running {len(kept)} tests on {len(fresh)} candidates", 72)
        if self.config.test_command and self.base_failures is None:
            base = await self.on_tree(snapshot, "base", "", [], regression=True)
            self.base_failures = base.regression_failures or set()
        async with anyio.create_task_group() as tg:
            for scored in fresh:
                tg.start_soon(self.score_tree, snapshot, scored, kept, self.base_failures)
        survivors = execution_cut(list(self.groups.values()), self.config.top_k)
        self.set_phase("judge", f"judging {len(survivors)} candidates", 85)
        async with anyio.create_task_group() as tg:
            for scored in survivors:
                if not scored.judge_scores and not scored.judge_reasons:
                    for _ in range(self.config.judge_samples):
                        tg.start_soon(self.judge, scored, rnd)
        self.ranked = final_order(survivors)
        self.emit()
        self.persist("running")

    async def on_tree(
        self,
        snapshot: Snapshot,
        name: str,
        patch: str,
        tests: list[ReproTest],
        regression: bool = False,
    ) -> TreeReport:
        async with self.test_limiter:
            return await run_on_tree(
                snapshot, name, patch, tests, self.config, regression=regression
            )

    async def score_tree(
        self, snapshot: Snapshot, g: Scored, kept: list[ReproTest], base_failures: set[str] | None
    ) -> None:
        report = await self.on_tree(
            snapshot,
            f"exec-c{g.representative}",
            g.patch,
            kept,
            regression=base_failures is not None,
        )
        g.tests_passed, g.tests_total = report.passed, len(kept)
        g.test_runs = report.runs
        if base_failures is not None and report.regression_failures is not None:
            g.regressions = len(report.regression_failures - base_failures)
        elif g.regressions is None:
            g.regressions = 0

    async def judge(self, g: Scored, rnd: int) -> None:
        index = sorted(self.groups.values(), key=lambda s: s.representative).index(g)
        verdict = await judge_candidate(
            self.model,
            self.config,
            self.ctx("judge", rnd, index),
            issue=self.issue,
            patch=g.patch,
            tests=test_summary(g, self.tests),
        )
        if verdict.score is not None:
            g.judge_scores.append(verdict.score)
        g.judge_reasons.append(verdict.reason)


def _paths(overrides: Mapping[str, str] | None) -> dict[str | Path, str]:
    return dict(overrides.items()) if overrides else {}


def _round_of(index: int, budget: list[int]) -> int:
    for rnd, _ in enumerate(budget):
        if index < sum(budget[: rnd + 1]):
            return rnd
    return len(budget) - 1


def _status_of(outcome: SampleOutcome) -> Any:
    if outcome.exit_status in ("model_error", "error"):
        return "failed"
    if outcome.exit_status == "limits_exceeded":
        return "limits_exceeded"
    return "submitted" if outcome.patch.strip() else "no_change"
