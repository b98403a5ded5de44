"""Phases `judge` and `reflect`: the model scores candidates and analyses a round.

A judge sample must call `score {score: 0..10, reason}`; a missing or invalid answer
is retried once (by appending the complaint, so the prompt stays prefix-stable), then
counted as absent. Model failures are contained: an absent score, an empty analysis.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from kat_lsp.agent.templates import render
from kat_lsp.config import KatConfig
from kat_lsp.exceptions import ModelError
from kat_lsp.interfaces import Model, RequestContext, Usage

log = logging.getLogger(__name__)

SCORE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "score",
        "description": "Give the candidate patch a score from 0 (wrong) to 10 (certainly correct and clean), with a short reason.",
        "parameters": {
            "type": "object",
            "properties": {
                "score": {"type": "number", "minimum": 0, "maximum": 10},
                "reason": {"type": "string"},
            },
            "required": ["score", "reason"],
        },
    },
}


@dataclass
class Verdict:
    score: float | None
    reason: str
    usage: Usage


def _system(name: str, config: KatConfig, tools: list[dict[str, Any]]) -> str:
    system = render(name)
    if config.tool_mode == "text" and tools:
        from kat_lsp.model.text_mode import render_tool_instructions

        system += "\n\n" + render_tool_instructions(tools)
    return system


def _valid_score(arguments: dict[str, Any]) -> tuple[float | None, str]:
    value = arguments.get("score")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None, f"score must be a number from 0 to 10, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None, f"score must be a number from 0 to 10, got {value!r}"
    if not 0 <= value <= 10:
        return None, f"score must be between 0 and 10, got {value}"
    return float(value), str(arguments.get("reason", ""))


async def judge_candidate(
    model: Model, config: KatConfig, ctx: RequestContext, *, issue: str, patch: str, tests: str
) -> Verdict:
    """One judge sample for one candidate."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": _system("judge_system", config, [SCORE_TOOL])},
        {
            "role": "user",
            "content": render(
                "judge_instance", issue=issue.strip(), patch=patch, test_results=tests
            ),
        },
    ]
    usage = Usage()
    problem = ""
    for _attempt in range(2):
        try:
            response = await model.query(messages, ctx=ctx, tools=[SCORE_TOOL])
        except ModelError as exc:
            log.warning("judge %s failed: %s", ctx.sample, exc)
            return Verdict(None, f"model error: {exc}", usage)
        usage.add(response.usage)
        messages.append(response.message)
        calls = [c for c in response.tool_calls if c.name == "score"]
        if len(calls) == 1 and not response.format_errors:
            score, reason = _valid_score(calls[0].arguments)
            if score is not None:
                return Verdict(score, reason, usage)
            problem = reason
        else:
            problem = " ".join(response.format_errors) or "call the `score` tool exactly once"
        for raw in response.message.get("tool_calls") or []:
            messages.append(
                {"role": "tool", "tool_call_id": raw["id"], "content": "Rejected: " + problem}
            )
        messages.append(
            {
                "role": "user",
                "content": f"Your answer was not usable: {problem}. Call `score` exactly once.",
            }
        )
    return Verdict(None, f"no valid score ({problem})", usage)


async def reflect_on_round(
    model: Model, config: KatConfig, ctx: RequestContext, *, issue: str, round_text: str
) -> tuple[str, Usage]:
    """Phase `reflect`: the model's analysis of a round (empty when the model fails)."""
    messages = [
        {"role": "system", "content": render("reflect_system")},
        {
            "role": "user",
            "content": render(
                "reflect_instance", issue=issue.strip(), round=ctx.round, candidates=round_text
            ),
        },
    ]
    try:
        response = await model.query(messages, ctx=ctx, tools=None)
    except ModelError as exc:
        log.warning("reflection failed: %s", exc)
        return "", Usage()
    return response.content.strip(), response.usage
