"""The JSON shapes the server sends (docs/reference/lsp.md): candidates, runs, run updates.

The VS Code extension and other clients read these field names; change them only
together with the reference page and `extension/src/common/protocol.ts`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kat_lsp.pipeline.api import RankedCandidate, RunEvent, SampleState
from kat_lsp.server.wsedit import uri_of


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def candidate_title(c: RankedCandidate) -> str:
    """`KAT #1 · score 8.5 · tests 2/2 · 3 samples agree`."""
    score = "no score" if c.judge_score is None else f"score {c.judge_score:.1f}"
    tests = f"tests {c.tests_passed}/{c.tests_total}" if c.tests_total else "no tests"
    agree = f"{_plural(c.cluster_size, 'sample')} agree" if c.cluster_size > 1 else "1 sample"
    return f"KAT #{c.rank} · {score} · {tests} · {agree}"


def candidate_json(c: RankedCandidate, root: Path) -> dict[str, Any]:
    return {
        "id": c.id,
        "rank": c.rank,
        "title": candidate_title(c),
        "judgeScore": c.judge_score,
        "testsPassed": c.tests_passed,
        "testsTotal": c.tests_total,
        "clusterSize": c.cluster_size,
        "files": [uri_of(root, f) for f in c.files],
    }


def sample_json(s: SampleState) -> dict[str, Any]:
    return {
        "index": s.index,
        "phase": s.phase,
        "round": s.round,
        "status": s.status,
        "steps": s.steps,
        "lastAction": s.last_action,
    }


def run_update_json(event: RunEvent, root: Path) -> dict[str, Any]:
    """The params of a `kat/runUpdate` notification."""
    return {
        "runId": event.run_id,
        "phase": event.phase,
        "percentage": event.percentage,
        "message": event.message,
        "samples": [sample_json(s) for s in event.samples],
        "candidates": [candidate_json(c, root) for c in event.candidates],
    }


def iso_time(epoch: float | None) -> str:
    """UTC, ISO 8601 (`2026-11-29T20:31:05Z`)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch or 0))


def run_summary_json(
    run_id: str,
    issue: str,
    status: str,
    root: Path,
    created: float | None,
    candidates: list[RankedCandidate],
) -> dict[str, Any]:
    """One entry of `kat.lsp.listRuns`."""
    return {
        "runId": run_id,
        "issue": issue,
        "status": status,
        "root": str(root),
        "created": iso_time(created),
        "candidates": [candidate_json(c, root) for c in candidates],
    }
