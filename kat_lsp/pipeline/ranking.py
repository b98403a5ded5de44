"""Ranking rules of DESIGN.md §1: the execution cut (top-k) and the final order.

Pure functions over `Scored` records, so the rules are tested without running anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Scored:
    """A candidate group with the evidence gathered about it."""

    key: str
    representative: int
    samples: list[int]
    round: int
    patch: str
    files: list[str]
    tests_passed: int = 0
    tests_total: int = 0
    regressions: int | None = None
    judge_scores: list[float] = field(default_factory=list)
    judge_reasons: list[str] = field(default_factory=list)
    test_runs: list[Any] = field(default_factory=list)
    """`execution.TestRun`s of the kept tests on this candidate."""

    @property
    def size(self) -> int:
        return len(self.samples)

    @property
    def judge_score(self) -> float | None:
        if not self.judge_scores:
            return None
        return round(sum(self.judge_scores) / len(self.judge_scores), 2)


def execution_cut(items: list[Scored], top_k: int) -> list[Scored]:
    """The candidates that go on to the judge.

    Ranked by tests passed, then fewest regressions; the first `top_k` go on with every
    candidate tied with the last of them; a candidate passing no kept test goes on only
    when no candidate passes any.
    """
    if not items:
        return []
    if any(c.tests_passed > 0 for c in items):
        items = [c for c in items if c.tests_passed > 0]

    def key(c: Scored) -> tuple[int, int]:
        return (-c.tests_passed, c.regressions or 0)

    ordered = sorted(items, key=lambda c: (key(c), c.representative))
    if len(ordered) <= top_k:
        return ordered
    last = key(ordered[top_k - 1])
    return [c for i, c in enumerate(ordered) if i < top_k or key(c) == last]


def final_order(items: list[Scored]) -> list[Scored]:
    """Mean judge score, then tests passed, then group size, then earliest sample.
    A candidate without any judge score sorts after every scored one."""

    def key(c: Scored) -> tuple[float, int, int, int]:
        score = c.judge_score
        return (-(score if score is not None else -1.0), -c.tests_passed, -c.size, c.representative)

    return sorted(items, key=key)


def dominant_group(items: list[Scored], samples_so_far: int, tests_kept: int) -> Scored | None:
    """Early stop: a group holding more than half of all samples so far that passes every
    kept test (there must be at least one), or None."""
    if tests_kept == 0:
        return None
    for c in items:
        if c.size * 2 > samples_so_far and c.tests_passed == tests_kept and not c.regressions:
            return c
    return None
