"""The state of one run and its renderings: the event stream and the persisted record.

`RunState` is plain data the runner mutates; `event()` is what displays see,
`record()` what run.json holds, `candidates()` the ranked list both show.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kat_lsp.config import KatConfig
from kat_lsp.interfaces import Usage
from kat_lsp.pipeline.api import RankedCandidate, RunEvent, RunPhase, SampleState, TestState
from kat_lsp.pipeline.execution import ReproTest
from kat_lsp.pipeline.ranking import Scored
from kat_lsp.pipeline.sample import SampleOutcome


@dataclass
class RunState:
    run_id: str
    issue: str
    root: Path
    config: KatConfig
    phase: RunPhase = "snapshot"
    percentage: int = 0
    message: str = "taking a snapshot of the workspace"
    samples: dict[tuple[str, int], SampleState] = field(default_factory=dict)
    outcomes: list[SampleOutcome] = field(default_factory=list)
    """Finished generation samples."""
    tests: list[ReproTest] = field(default_factory=list)
    groups: dict[str, Scored] = field(default_factory=dict)
    """Candidate groups by dedup key, with their evidence."""
    ranked: list[Scored] = field(default_factory=list)
    reflections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    timings: dict[str, float] = field(default_factory=dict)
    snapshot_commit: str | None = None

    def set_phase(self, phase: RunPhase, message: str, percentage: int | None = None) -> None:
        self.timings[phase] = round(time.time() - self.created, 3)
        self.phase, self.message = phase, message
        if percentage is not None:
            self.percentage = max(self.percentage, percentage)

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

    def event(self) -> RunEvent:
        return RunEvent(
            self.run_id,
            self.phase,
            self.percentage,
            self.message,
            [SampleState(**vars(s)) for s in self.samples.values()],
            self.candidates(),
            [TestState(t.index, t.command, t.kept, t.reason) for t in self.tests],
        )

    def kept_tests(self) -> list[ReproTest]:
        return [t for t in self.tests if t.kept]

    def record(self, status: str, usage: Usage, error: str | None = None) -> dict[str, Any]:
        """Everything run.json holds (patches are stored beside it)."""
        ranked_keys = {c.key for c in self.ranked}
        return {
            "run_id": self.run_id,
            "issue": self.issue,
            "root": str(self.root),
            "status": status,
            "phase": self.phase,
            "error": error,
            "created": self.created,
            "finished": time.time() if status != "running" else None,
            "snapshot_commit": self.snapshot_commit,
            "settings": self.config.public_dict(),
            "timings": self.timings,
            "usage": usage.to_dict(),
            "samples": [
                {**vars(s), "patch_chars": len(o.patch)}
                for o in self.outcomes
                if (s := self.samples.get(("generate", o.ctx.sample)))
            ],
            "tests": [
                {"index": t.index, "command": t.command, "kept": t.kept, "reason": t.reason}
                for t in self.tests
            ],
            "candidates": [c.to_dict() for c in self.candidates()],
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
