"""The pipeline's public data: what a run reports while it goes and what it leaves.

The CLI and the language server both drive `kat_lsp.pipeline.runner.Pipeline` and
render the same `RunEvent` stream; nothing else of the pipeline is their business.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

RunPhase = Literal[
    "snapshot",
    "generate",
    "dedup",
    "testgen",
    "execute",
    "judge",
    "reflect",
    "done",
    "cancelled",
    "failed",
]
SampleStatus = Literal["pending", "running", "submitted", "no_change", "failed", "limits_exceeded"]


@dataclass
class SampleState:
    """One agent sample (generation or test generation) as the displays show it."""

    index: int
    phase: Literal["generate", "testgen"]
    round: int = 0
    status: SampleStatus = "pending"
    steps: int = 0
    last_action: str = ""
    tokens: int = 0
    exit_status: str | None = None


@dataclass
class TestState:
    """A reproduction test once validated on the snapshot."""

    index: int
    command: str
    kept: bool
    reason: str


@dataclass
class RankedCandidate:
    """A deduplicated candidate fix with its evidence. Field names follow ranked.json."""

    id: str
    rank: int
    patch: str
    judge_score: float | None
    tests_passed: int
    tests_total: int
    cluster_size: int
    samples: list[int]
    round: int
    files: list[str] = field(default_factory=list)
    """Paths (relative to the run's root) the patch touches."""
    judge_reasons: list[str] = field(default_factory=list)
    regressions: int | None = None

    def to_ranked_json(self) -> dict[str, Any]:
        keys = (
            "id",
            "rank",
            "patch",
            "judge_score",
            "tests_passed",
            "tests_total",
            "cluster_size",
            "samples",
            "round",
        )
        return {k: getattr(self, k) for k in keys}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunEvent:
    """A change of a run's state, sent to every listener (CLI display, LSP progress)."""

    run_id: str
    phase: RunPhase
    percentage: int
    message: str
    samples: list[SampleState]
    candidates: list[RankedCandidate]
    tests: list[TestState] = field(default_factory=list)
    """Empty until the reproduction tests are validated."""


@dataclass
class RunResult:
    """What a finished (or cancelled, or failed) run leaves."""

    run_id: str
    issue: str
    root: Path
    status: Literal["done", "cancelled", "failed"]
    candidates: list[RankedCandidate]
    snapshot_commit: str | None = None
    error: str | None = None
    run_dir: Path | None = None

    def ranked_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "issue": self.issue,
            "candidates": [c.to_ranked_json() for c in self.candidates],
        }
