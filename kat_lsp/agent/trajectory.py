"""Trajectory files: `<sample>.traj.json`, one per agent sample, SWE-agent-like fields.

`trajectory` holds one entry per step (response, thought, action, observation,
timings); `history` the exact messages sent; `info` the exit status, submission and
usage. The agent writes it once when the sample ends (also when it fails), so the
file costs nothing per step.

What a trajectory stores is bounded: every text longer than FIELD_CAP characters (a
reply, an observation, a tool argument, a message of `history`) is kept as its head and
tail with the cut said in between, and structures nested deeper than MAX_DEPTH are
replaced by a note. A step then costs at most a few FIELD_CAPs, a sample at most
`step_limit` steps of them.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIELD_CAP = 64 * 1024
"""Characters kept of one text field."""
MAX_DEPTH = 32
"""Nesting kept of a stored structure (tool arguments come from the model)."""
_TAIL = 4096


def clip_text(text: str, cap: int = FIELD_CAP) -> str:
    """`text` itself when it fits, else its head and tail with the cut said between."""
    if len(text) <= cap:
        return text
    tail = min(_TAIL, cap // 4)
    head = cap - tail
    cut = len(text) - head - tail
    note = f"\n[... kat-lsp: {cut} characters cut from the trajectory ...]\n"
    return text[:head] + note + text[-tail:]


def clip(value: Any, depth: int = 0) -> Any:
    """A copy of JSON-like `value` with every string clipped and deep nesting cut."""
    if isinstance(value, str):
        return clip_text(value)
    if isinstance(value, dict | list | tuple) and depth >= MAX_DEPTH:
        return f"[kat-lsp: nested deeper than {MAX_DEPTH} levels, not stored]"
    if isinstance(value, dict):
        return {clip_text(str(k)): clip(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clip(v, depth + 1) for v in value]
    return value


@dataclass
class Trajectory:
    path: Path | None
    meta: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def add_step(
        self,
        *,
        response: str,
        action: str,
        observation: str,
        tool_call: dict[str, Any] | None,
        query_time: float,
        execution_time: float,
    ) -> None:
        response = clip_text(response)
        self.steps.append(
            {
                "response": response,
                "thought": response,
                "action": clip_text(action),
                "tool_call": clip(tool_call),
                "observation": clip_text(observation),
                "query_time": query_time,
                "execution_time": execution_time,
                "timestamp": time.time(),
            }
        )

    def save(self, messages: list[dict[str, Any]]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            **self.meta,
            "trajectory": self.steps,
            "history": clip(messages, 1),
            "info": clip(self.info),
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)
