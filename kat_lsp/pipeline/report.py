"""Text the model reads about candidates: test results for the judge, a round for reflection."""

from __future__ import annotations

from kat_lsp.pipeline.execution import ReproTest
from kat_lsp.pipeline.ranking import Scored

PATCH_CHARS = 4000


def _clip(text: str, limit: int = PATCH_CHARS) -> str:
    if len(text) <= limit:
        return text
    return (
        text[: limit // 2]
        + f"\n[... {len(text) - limit} characters clipped ...]\n"
        + text[-limit // 2 :]
    )


def test_summary(candidate: Scored, tests: list[ReproTest]) -> str:
    """Which reproduction tests the candidate passes, one line each."""
    kept = [t for t in tests if t.kept]
    if not kept:
        return "No reproduction test could be validated for this issue; judge the patch on its own."
    lines = [f"The candidate passes {candidate.tests_passed} of {len(kept)} reproduction tests."]
    commands = {t.index: t.command for t in kept}
    for run in candidate.test_runs:
        verdict = "PASS" if run.passed else "FAIL"
        lines.append(f"- {verdict} `{commands.get(run.test, '?')}` ({run.detail})")
    if candidate.regressions:
        lines.append(f"The project's test command shows {candidate.regressions} new failure(s).")
    return "\n".join(lines)


def round_summary(
    ranked: list[Scored], groups: dict[str, Scored], rnd: int, tests: list[ReproTest]
) -> str:
    """The round's candidates (diffs, tests, scores) and the tests, for phase `reflect`."""
    parts: list[str] = []
    kept = [t for t in tests if t.kept]
    dropped = [t for t in tests if not t.kept]
    parts.append(f"Reproduction tests kept: {len(kept)}; dropped: {len(dropped)}.")
    parts.extend(f"- dropped `{t.command or '(none)'}`: {t.reason}" for t in dropped)
    in_round = [g for g in groups.values() if g.round <= rnd]
    ranked_keys = [g.key for g in ranked]
    ordered = sorted(
        in_round,
        key=lambda g: (ranked_keys.index(g.key) if g.key in ranked_keys else 99, g.representative),
    )
    if not ordered:
        parts.append("No attempt produced a change.")
    for g in ordered:
        score = "not judged" if g.judge_score is None else str(g.judge_score)
        reasons = "; ".join(r for r in g.judge_reasons if r)
        parts.append(
            f'<candidate id="c{g.representative}" samples="{g.size}" '
            f'tests="{g.tests_passed}/{g.tests_total}" judge="{score}">\n'
            f"{_clip(g.patch)}\n" + (f"Reviewer: {reasons}\n" if reasons else "") + "</candidate>"
        )
    return "\n".join(parts)
