"""The agent loop: query the model, run exactly one tool call, append, repeat.

Messages are only ever appended (DESIGN.md §2: each request extends the previous one
byte for byte). Loop control is by the exceptions of `kat_lsp.exceptions`, caught here
and only here: `Submitted` and `LimitsExceeded` end the sample, `FormatError` goes back
to the model, `ModelError` ends the sample as `model_error`. Nothing a tool or the
model does can end the run; only a misconfigured endpoint (`EndpointError`, or a
`RequestRejected` at the sample's first request, which every sample sends alike) does:
it is recorded as `endpoint_error` and raised, so that the run stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from kat_lsp.agent.templates import render
from kat_lsp.agent.trajectory import Trajectory
from kat_lsp.config import KatConfig
from kat_lsp.exceptions import (
    AgentExit,
    EndpointError,
    FormatError,
    LimitsExceeded,
    ModelError,
    ModelFailed,
    RequestRejected,
    Submitted,
)
from kat_lsp.interfaces import Model, ModelResponse, RequestContext, Tool, ToolCall, Usage

log = logging.getLogger(__name__)

StepCallback = Callable[[int, str, Usage], None]
ENDPOINT_ERROR = "endpoint_error"
"""Exit status of the sample that met a misconfigured endpoint (the run stops)."""


@dataclass
class AgentOutcome:
    """How a sample ended."""

    exit_status: str
    """`submitted`, `limits_exceeded`, `model_error`, `endpoint_error`, `error`."""
    message: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0


def summarize_action(call: ToolCall) -> str:
    """One line saying what the model did, for progress displays and trajectories."""
    args = call.arguments
    if call.name == "bash":
        detail = str(args.get("command", ""))
    elif call.name == "str_replace_editor":
        detail = f"{args.get('command', '?')} {args.get('path', '')}"
    else:
        detail = ", ".join(f"{k}={v}" for k, v in args.items())
    detail = " ".join(detail.split())
    return f"{call.name}: {detail[:120]}" if detail else call.name


class Agent:
    """Runs one sample: a conversation of tool calls until submit or a limit."""

    def __init__(
        self,
        model: Model,
        tools: list[Tool],
        config: KatConfig,
        ctx: RequestContext,
        *,
        trajectory: Trajectory | None = None,
        on_step: StepCallback | None = None,
    ) -> None:
        self.model = model
        self.tools = {tool.name: tool for tool in tools}
        self.schemas = [tool.schema() for tool in tools]
        self.config = config
        self.ctx = ctx
        self.trajectory = trajectory or Trajectory(None, {})
        self.on_step = on_step
        self.messages: list[dict[str, Any]] = []
        self.usage = Usage()
        self.steps = 0
        self._format_errors = 0
        self._started = 0.0

    async def run(self, messages: list[dict[str, Any]]) -> AgentOutcome:
        """Run from the initial messages (system + user) to the end of the sample."""
        self.messages = list(messages)
        self._started = time.monotonic()
        outcome = AgentOutcome("error")
        try:
            with anyio.fail_after(self.config.time_limit):
                while True:
                    await self.step()
        except TimeoutError:
            outcome = AgentOutcome(
                "limits_exceeded", f"time limit of {self.config.time_limit:g} s reached"
            )
        except AgentExit as exc:
            outcome = AgentOutcome(exc.exit_status, exc.message, dict(exc.payload))
        except EndpointError as exc:  # not contained: no sample can succeed, the run stops
            self._finish(AgentOutcome(ENDPOINT_ERROR, str(exc)))
            raise
        except Exception as exc:  # contained: a bug or crash ends this sample only
            log.exception("sample %s/%s crashed", self.ctx.phase, self.ctx.sample)
            outcome = AgentOutcome("error", f"{type(exc).__name__}: {exc}")
        return self._finish(outcome)

    def _finish(self, outcome: AgentOutcome) -> AgentOutcome:
        outcome.steps = self.steps
        outcome.usage = self.usage
        outcome.seconds = time.monotonic() - self._started
        self.trajectory.info.update(
            exit_status=outcome.exit_status,
            exit_message=outcome.message,
            steps=self.steps,
            seconds=round(outcome.seconds, 3),
            model_stats=self.usage.to_dict(),
            **{k: v for k, v in outcome.payload.items() if isinstance(v, str | int | float)},
        )
        return outcome

    def _check_limits(self) -> None:
        cfg = self.config
        if self.steps >= cfg.step_limit:
            raise LimitsExceeded(f"step limit of {cfg.step_limit} reached")
        if cfg.token_limit is not None and self.usage.total_tokens >= cfg.token_limit:
            raise LimitsExceeded(f"token limit of {cfg.token_limit} reached")
        if cfg.cost_limit is not None and (self.usage.cost or 0.0) >= cfg.cost_limit:
            raise LimitsExceeded(f"cost limit of {cfg.cost_limit:g} reached")

    async def step(self) -> None:
        self._check_limits()
        t0 = time.monotonic()
        try:
            response = await self.model.query(self.messages, ctx=self.ctx, tools=self.schemas)
        except EndpointError:
            raise
        except RequestRejected as exc:
            if self.steps == 0:
                raise EndpointError(str(exc)) from exc
            raise ModelFailed(str(exc)) from exc
        except ModelError as exc:
            raise ModelFailed(str(exc)) from exc
        query_time = time.monotonic() - t0
        self.usage.add(response.usage)
        self.steps += 1
        self.messages.append(response.message)
        try:
            call = self._single_call(response)
            action = summarize_action(call)
            self._notify(action)  # displays show the action while it runs
            t1 = time.monotonic()
            observation = await self._execute(call)
        except FormatError as exc:
            self._format_error(response, str(exc), query_time)
            return
        except Submitted:
            self._record(response, call, action, "(submitted)", query_time, time.monotonic() - t1)
            raise
        self._format_errors = 0
        self._record(response, call, action, observation, query_time, time.monotonic() - t1)
        self._append_observation(response, call, observation)

    def _single_call(self, response: ModelResponse) -> ToolCall:
        calls = response.tool_calls
        if response.format_errors:
            raise FormatError(" ".join(response.format_errors))
        if not calls:
            raise FormatError("your reply contained no tool call.")
        if len(calls) > 1:
            names = ", ".join(c.name for c in calls)
            raise FormatError(
                f"your reply contained {len(calls)} tool calls ({names}); none was run. "
                "Make exactly one tool call per reply."
            )
        call = calls[0]
        if call.name not in self.tools:
            raise FormatError(f"there is no tool named {call.name!r}.")
        return call

    async def _execute(self, call: ToolCall) -> str:
        try:
            return await self.tools[call.name](call.arguments)
        except (AgentExit, FormatError):
            raise
        except Exception as exc:  # a tool crash is an observation, not the end of the run
            log.exception("tool %s failed", call.name)
            return f"The tool {call.name} failed: {type(exc).__name__}: {exc}"

    def _append_observation(self, response: ModelResponse, call: ToolCall, text: str) -> None:
        if self.config.tool_mode == "function" and response.message.get("tool_calls"):
            self.messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
        else:
            self.messages.append({"role": "user", "content": text})

    def _format_error(self, response: ModelResponse, error: str, query_time: float) -> None:
        self._format_errors += 1
        text = render("format_error", error=error, tools=", ".join(self.tools))
        # Every tool call of an assistant message needs an answer, or the next request is invalid.
        for raw in response.message.get("tool_calls") or []:
            self.messages.append(
                {"role": "tool", "tool_call_id": raw["id"], "content": "Not run: " + error}
            )
        self.messages.append({"role": "user", "content": text})
        self.trajectory.add_step(
            response=response.content,
            action="(format error)",
            observation=text,
            tool_call=None,
            query_time=query_time,
            execution_time=0.0,
        )
        if self._format_errors >= self.config.format_error_limit:
            raise LimitsExceeded(
                f"{self._format_errors} malformed replies in a row (last: {error})"
            )
        self._notify("(format error)")

    def _record(
        self,
        response: ModelResponse,
        call: ToolCall,
        action: str,
        observation: str,
        query_time: float,
        execution_time: float,
    ) -> None:
        self.trajectory.add_step(
            response=response.content,
            action=action,
            observation=observation,
            tool_call={"id": call.id, "name": call.name, "arguments": call.arguments},
            query_time=query_time,
            execution_time=execution_time,
        )
        self._notify(action)

    def _notify(self, action: str) -> None:
        if self.on_step is not None:
            self.on_step(self.steps, action, self.usage)
