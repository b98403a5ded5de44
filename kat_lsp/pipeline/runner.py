"""The KAT pipeline: snapshot → rounds of (generate ‖ testgen → dedup → execute → judge
→ reflect) → ranked candidates. The library API that the CLI and the server call.

`Pipeline(config).run(issue, root, on_event=...)` runs one issue to its end and returns
a `RunResult`; cancel the calling task to cancel the run (samples and tests stop,
checkouts are removed, the run is recorded as cancelled). Failures of samples, tests,
judges and reflections are contained and recorded; the run completes with what it has.
The exception is a misconfigured model endpoint (`EndpointError`: bad key, wrong URL or
model, no tool support): the first sample that meets it stops the run, which fails with
its one-line message (docs/reliability.md).

Execution is streamed: as soon as the reproduction tests are validated, every new
candidate group runs them while the other samples are still generating, so that the
end of a round waits only for what the last samples brought.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from kat_lsp.config import KatConfig
from kat_lsp.exceptions import EndpointError, find_endpoint_error
from kat_lsp.interfaces import Model, Phase, RequestContext, Usage
from kat_lsp.model.limited import LimitedModel
from kat_lsp.pipeline.api import RunEvent, RunPhase, RunResult, SampleState
from kat_lsp.pipeline.capacity import check_sample_counts
from kat_lsp.pipeline.dedup import UNCHANGED_KEY, DedupInput, candidate_key, group_candidates
from kat_lsp.pipeline.execution import ReproTest
from kat_lsp.pipeline.judge import judge_candidate, reflect_on_round
from kat_lsp.pipeline.ranking import Scored, dominant_group, execution_cut, final_order
from kat_lsp.pipeline.report import round_summary, test_summary
from kat_lsp.pipeline.sample import TREE_ERROR, SampleOutcome, run_sample
from kat_lsp.pipeline.state import RunState
from kat_lsp.pipeline.store import RunStore
from kat_lsp.pipeline.testbench import TestBench
from kat_lsp.workspace import Snapshot, remove_run, take_snapshot
from kat_lsp.workspace.patches import patch_files

log = logging.getLogger(__name__)

EventCallback = Callable[[RunEvent], None]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def split_budget(samples: int, rounds: int) -> list[int]:
    """K samples over R rounds, earlier rounds taking the remainder: 8 over 3 → 3, 3, 2."""
    base, extra = divmod(samples, rounds)
    return [base + (1 if r < extra else 0) for r in range(rounds)]


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
        check_sample_counts(self.config)
        run = _Run(self, issue.strip(), Path(root).resolve(), run_id or new_run_id(), on_event)
        return await run.execute(overrides)


class _Run:
    """Orchestrates one run; its data lives in `self.state`."""

    def __init__(
        self,
        pipeline: Pipeline,
        issue: str,
        root: Path,
        run_id: str,
        on_event: EventCallback | None,
    ):
        self.config = config = pipeline.config
        self.model = LimitedModel(pipeline.model, config.model_concurrency)
        self.state = RunState(run_id, issue, root, config)
        self.on_event = on_event
        self.store = RunStore.create(run_id, pipeline.runs_base)
        self.total_samples = config.samples + config.test_samples
        self.tg: TaskGroup | None = None
        """The current round's task group: streamed test runs join it."""
        self.sandboxes = anyio.Semaphore(max(1, config.sandbox_concurrency))
        """Samples alive at once: a sample takes its checkout and sandbox only inside."""

    # ----- events and persistence -------------------------------------------------
    def emit(self) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(self.state.event())
        except Exception:  # a display bug must not end the run
            log.exception("event listener failed")

    def set_phase(self, phase: RunPhase, message: str, percentage: int | None = None) -> None:
        self.state.set_phase(phase, message, percentage)
        self.emit()

    def persist(self, status: str, error: str | None = None) -> None:
        for c in self.state.candidates():
            self.store.save_patch("candidates", c.id, c.patch)
        for t in self.state.tests:
            self.store.save_patch("tests", f"test-{t.index}", t.patch)
        self.store.save(self.state.record(status, self.model.usage, error))

    def result(self, status: str, error: str | None = None) -> RunResult:
        self.persist(status, error)
        s = self.state
        return RunResult(
            run_id=s.run_id,
            issue=s.issue,
            root=s.root,
            status=status,  # type: ignore[arg-type]
            candidates=s.candidates(),
            snapshot_commit=s.snapshot_commit,
            error=error,
            run_dir=self.store.path,
        )

    # ----- the run ------------------------------------------------------------------
    async def execute(self, overrides: Mapping[str, str] | None) -> RunResult:
        self.persist("running")
        self.emit()
        paths: dict[str | Path, str] = dict(overrides.items()) if overrides else {}
        try:
            snapshot = await anyio.to_thread.run_sync(
                lambda: take_snapshot(self.state.root, overrides=paths, run_id=self.state.run_id)
            )
            self.state.snapshot_commit = snapshot.commit
            await self.rounds(TestBench(snapshot, self.config))
            n = len(self.state.ranked)
            done = (
                f"{n} candidate{'s' if n != 1 else ''}" if n else "no sample produced a candidate"
            )
            self.set_phase("done", done, 100)
            return self.result("done", None if n else self.every_sample_failed())
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                self.set_phase("cancelled", "cancelled")
                self.persist("cancelled")
            raise
        except Exception as exc:
            if (endpoint := find_endpoint_error(exc)) is not None:
                return self.stopped_by(endpoint)  # one line says it all: no traceback
            log.exception("run %s failed", self.state.run_id)
            self.set_phase("failed", f"failed: {exc}")
            return self.result("failed", f"{type(exc).__name__}: {exc}")
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.cleanup)

    def stopped_by(self, error: EndpointError) -> RunResult:
        """The run stopped at the first sample that met a misconfigured endpoint (the
        others were cancelled): failed, with that sample's message as the error."""
        for state in self.state.samples.values():
            if state.status in ("pending", "running"):
                state.status, state.exit_status = "failed", "stopped: endpoint error"
        self.set_phase("failed", "stopped: the model endpoint is misconfigured")
        return self.result("failed", str(error))

    def every_sample_failed(self) -> str | None:
        """When every generation sample ended on a model error: the last message."""
        samples = [o for o in self.state.outcomes if o.ctx.phase == "generate"]
        if samples and all(o.exit_status == "model_error" for o in samples):
            last = samples[-1].outcome.message  # outcomes are in the order they ended
            return f"every sample failed on the model endpoint; the last error: {last}"
        return None

    def cleanup(self) -> None:
        remove_run(self.state.run_id)  # by run id: also a snapshot cancelled while being taken

    async def rounds(self, bench: TestBench) -> None:
        cfg, s = self.config, self.state
        budget = split_budget(cfg.samples, cfg.rounds)
        bounds = [sum(budget[:r]) for r in range(len(budget) + 1)]
        for rnd in range(len(budget)):
            for i in range(bounds[rnd], bounds[rnd + 1]):
                s.samples[("generate", i)] = SampleState(i, "generate", rnd)
        for i in range(cfg.test_samples):
            s.samples[("testgen", i)] = SampleState(i, "testgen", 0)
        reflection: str | None = None
        for rnd, count in enumerate(budget):
            first = bounds[rnd]
            self.set_phase(
                "generate",
                f"round {rnd + 1}/{len(budget)}: generating {count} candidates",
                5 + 65 * first // self.total_samples,
            )
            async with anyio.create_task_group() as tg:
                self.tg = tg
                for index in range(first, first + count):
                    tg.start_soon(self.generate, bench, index, rnd, reflection)
                if rnd == 0:
                    tg.start_soon(self.make_tests, bench)
            self.tg = None
            await self.evaluate(bench, rnd)
            done = bounds[rnd + 1]
            if rnd == len(budget) - 1:
                break
            kept = len(s.kept_tests())
            winner = dominant_group(list(s.groups.values()), done, kept)
            if cfg.early_stop and winner is not None:
                note = (
                    f"early stop after round {rnd + 1}: candidate c{winner.representative} holds "
                    f"{winner.size} of {done} samples and passes all {kept} tests"
                )
                s.notes.append(note)
                for i in range(done, cfg.samples):
                    s.samples[("generate", i)].status = "no_change"
                    s.samples[("generate", i)].exit_status = "skipped (early stop)"
                self.set_phase("judge", note)
                break
            self.set_phase("reflect", f"reflecting on round {rnd + 1}")
            text, _ = await reflect_on_round(
                self.model,
                cfg,
                self.ctx("reflect", rnd, rnd),
                issue=s.issue,
                round_text=round_summary(s.ranked, s.groups, rnd, s.tests),
            )
            if text:
                s.reflections.append(text)
                reflection = text
            self.persist("running")

    def ctx(self, phase: Phase, rnd: int, sample: int) -> RequestContext:
        return RequestContext(phase, self.state.run_id, rnd, sample)

    async def sample(
        self, snapshot: Snapshot, phase: Phase, index: int, rnd: int, reflection: str | None
    ) -> SampleOutcome:
        state = self.state.samples[(phase, index)]

        def on_start() -> None:
            state.status = "running"
            self.emit()

        def on_step(steps: int, action: str, usage: Usage) -> None:
            state.steps, state.last_action, state.tokens = steps, action, usage.total_tokens
            self.emit()

        async with self.sandboxes:  # the others wait here, "pending"
            outcome = await run_sample(
                ctx=self.ctx(phase, rnd, index),
                issue=self.state.issue,
                snapshot=snapshot,
                config=self.config,
                model=self.model,
                run_dir=self.store.path,
                reflection=reflection,
                on_step=on_step,
                on_start=on_start,
            )
        state.exit_status = outcome.reason
        state.status = _status_of(outcome)
        finished = sum(s.status not in ("pending", "running") for s in self.state.samples.values())
        self.state.percentage = max(self.state.percentage, 5 + 65 * finished // self.total_samples)
        self.emit()
        return outcome

    async def generate(
        self, bench: TestBench, index: int, rnd: int, reflection: str | None
    ) -> None:
        outcome = await self.sample(bench.snapshot, "generate", index, rnd, reflection)
        self.state.outcomes.append(outcome)
        if not outcome.patch.strip():
            return
        try:  # a candidate is the sample's own: what it holds ends only this sample
            patch_files(outcome.patch)
            item = self.dedup_input(bench.snapshot, outcome)
            key = await anyio.to_thread.run_sync(candidate_key, item)
        except Exception as exc:
            log.exception("sample %d: candidate dropped", index)
            state = self.state.samples[("generate", index)]
            state.status, state.exit_status = "failed", f"error: candidate unreadable ({exc})"
            outcome.patch, outcome.files = "", {}
            self.emit()
            return
        if key is not None and key != UNCHANGED_KEY:
            bench.offer(key, index, outcome.patch, self.tg)

    @staticmethod
    def dedup_input(snapshot: Snapshot, outcome: SampleOutcome) -> DedupInput:
        base = {p: snapshot.read_file(p) for p in outcome.files}
        return DedupInput(outcome.ctx.sample, outcome.files, base)

    async def make_tests(self, bench: TestBench) -> None:
        results: list[SampleOutcome] = []

        async def one(i: int) -> None:
            results.append(await self.sample(bench.snapshot, "testgen", i, 0, None))

        async with anyio.create_task_group() as tg:
            for i in range(self.config.test_samples):
                tg.start_soon(one, i)
        tests = []
        for o in sorted(results, key=lambda o: o.ctx.sample):
            test = ReproTest(o.ctx.sample, o.patch, o.command or "")
            if o.exit_status != "submitted" or not test.command:
                test.reason = f"no test submitted ({o.reason})"
            tests.append(test)
        await bench.validate(tests)
        self.state.tests = bench.tests
        self.state.message = f"{len(bench.kept)} of {len(tests)} reproduction tests kept"
        self.emit()
        await bench.finish()  # the groups that came before the tests

    async def evaluate(self, bench: TestBench, rnd: int) -> None:
        """Dedup all candidates so far, finish the tests of new groups, cut, judge."""
        s = self.state
        self.set_phase("dedup", "grouping equivalent candidates")
        by_sample = {o.ctx.sample: o for o in s.outcomes if o.patch.strip()}
        items = [self.dedup_input(bench.snapshot, o) for _, o in sorted(by_sample.items())]
        for group in await anyio.to_thread.run_sync(group_candidates, items):
            if group.unchanged:  # formatting-only edits are no fix
                continue
            if group.key not in s.groups:
                rep = by_sample[group.representative]
                s.groups[group.key] = Scored(
                    group.key,
                    group.representative,
                    [],
                    rep.ctx.round,
                    rep.patch,
                    patch_files(rep.patch),
                )
                bench.offer(group.key, group.representative, rep.patch, None)
            s.groups[group.key].samples = list(group.samples)
        missing = sum(k not in bench.reports for k in s.groups)
        self.set_phase("execute", f"running {len(bench.kept)} tests on {missing} candidates", 72)
        await bench.finish()
        for scored in s.groups.values():
            bench.score(scored)
        survivors = execution_cut(list(s.groups.values()), self.config.top_k)
        self.set_phase("judge", f"judging {len(survivors)} candidates", 85)
        async with anyio.create_task_group() as tg:
            for scored in survivors:
                if not scored.judge_scores and not scored.judge_reasons:
                    for _ in range(self.config.judge_samples):
                        tg.start_soon(self.judge, scored, rnd)
        s.ranked = final_order(survivors)
        self.emit()
        self.persist("running")

    async def judge(self, g: Scored, rnd: int) -> None:
        groups = sorted(self.state.groups.values(), key=lambda c: c.representative)
        verdict = await judge_candidate(
            self.model,
            self.config,
            self.ctx("judge", rnd, groups.index(g)),
            issue=self.state.issue,
            patch=g.patch,
            tests=test_summary(g, self.state.tests),
        )
        if verdict.score is not None:
            g.judge_scores.append(verdict.score)
        g.judge_reasons.append(verdict.reason)


def _status_of(outcome: SampleOutcome) -> Any:
    if outcome.exit_status in ("model_error", "error", TREE_ERROR):
        return "failed"
    if outcome.exit_status == "limits_exceeded":
        return "limits_exceeded"
    return "submitted" if outcome.patch.strip() else "no_change"
