"""The small interfaces every part plugs into: Model, Executor, Tool and the data they pass.

One implementation per file elsewhere; this module holds only the contracts (the
shape of mini-swe-agent's `Model`/`Environment`/`Agent` split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

Phase = Literal["generate", "testgen", "judge", "reflect"]
PHASES: tuple[Phase, ...] = ("generate", "testgen", "judge", "reflect")


@dataclass(frozen=True)
class RequestContext:
    """Who is asking: becomes the `X-KAT-*` headers of every model request (DESIGN.md §2)."""

    phase: Phase
    run_id: str
    round: int = 0
    sample: int = 0

    def headers(self) -> dict[str, str]:
        return {
            "X-KAT-Phase": self.phase,
            "X-KAT-Run": self.run_id,
            "X-KAT-Round": str(self.round),
            "X-KAT-Sample": str(self.sample),
        }


@dataclass
class Usage:
    """Token usage and cost, summed over requests."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    cost: float | None = None
    """Money spent, when prices are configured; None when unknown."""
    model_seconds: float = 0.0
    """Wall time spent inside model HTTP calls."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.requests += other.requests
        self.model_seconds += other.model_seconds
        if other.cost is not None:
            self.cost = (self.cost or 0.0) + other.cost

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "requests": self.requests,
            "cost": self.cost,
            "model_seconds": round(self.model_seconds, 4),
        }


@dataclass
class ToolCall:
    """One tool call as the model asked for it (arguments already decoded)."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class ModelResponse:
    """One assistant turn.

    `message` is the assistant message exactly as it is appended to the conversation
    (OpenAI chat format), so that the next request extends this one byte for byte.
    `tool_calls` holds the calls that decoded; `format_errors` says what did not
    (invalid JSON arguments, no fenced block in text mode, ...).
    """

    message: dict[str, Any]
    content: str
    tool_calls: list[ToolCall]
    usage: Usage
    format_errors: list[str] = field(default_factory=list)


@runtime_checkable
class Model(Protocol):
    """A chat model behind an OpenAI-compatible endpoint."""

    async def query(
        self,
        messages: list[dict[str, Any]],
        *,
        ctx: RequestContext,
        tools: list[dict[str, Any]] | None = None,
        temperature: float | None = None,
    ) -> ModelResponse:
        """One chat completion. Raises `kat_lsp.exceptions.ModelError` once retries are spent."""
        ...


@dataclass
class CommandResult:
    """What a command left behind."""

    output: str
    """Combined stdout and stderr, already clipped to the output cap."""
    exit_code: int | None
    """None when the command was killed by its timeout."""
    timed_out: bool = False
    duration: float = 0.0
    clipped: bool = False


@runtime_checkable
class Executor(Protocol):
    """Runs shell commands in one tree, sandboxed (or not, when the user opted out)."""

    root: Path

    async def run(
        self, command: str, *, timeout: float | None = None, output_cap: int | None = None
    ) -> CommandResult:
        """Run `bash -c command` with cwd = root; kills the whole process tree on timeout."""
        ...

    async def start(self) -> None:
        """Get ready for the first command ahead of time (start the sandbox), so that its
        start-up overlaps other work such as the first model request. Optional to call."""
        ...

    async def aclose(self) -> None:
        """Stop whatever the executor keeps alive between commands (the bubblewrap
        sandbox of a sample) and wait for it to be gone. Idempotent; a later `run`
        starts afresh. Call it where the executor is made, in a `finally`, shielded."""
        ...


@runtime_checkable
class Tool(Protocol):
    """A tool the model can call. Errors are returned as text, never raised
    (except the loop-control exceptions of `kat_lsp.exceptions`)."""

    name: str

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-tool definition."""
        ...

    async def __call__(self, arguments: dict[str, Any]) -> str: ...
