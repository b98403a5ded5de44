"""Trajectory files: `<sample>.traj.json`, one per agent sample, SWE-agent-like fields.

`trajectory` holds one entry per step (response, thought, action, observation,
timings); `history` the exact messages sent; `info` the exit status, submission and
usage. The agent writes it once when the sample ends (also when it fails), so the
file costs nothing per step.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
        self.steps.append(
            {
                "response": response,
                "thought": response,
                "action": action,
                "tool_call": tool_call,
                "observation": observation,
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
            "history": messages,
            "info": self.info,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)
