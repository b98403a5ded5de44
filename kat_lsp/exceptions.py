"""Loop control and error types, caught in one place (the agent loop, the CLI, the server)."""

from __future__ import annotations

from typing import Any


class KatError(Exception):
    """Base of kat-lsp's own errors."""


class ConfigError(KatError):
    """Bad or missing configuration. The message says what to do about it."""


class SandboxUnavailable(ConfigError):
    """bubblewrap is missing and the user did not opt out of the sandbox."""


class ModelError(KatError):
    """A model call failed for good (after the retries); ends the sample, the run goes on."""


class EndpointError(ModelError):
    """The endpoint is misconfigured (bad key, wrong URL or model, no tool support, not an
    OpenAI API): no sample can succeed, so the first one that meets it stops the run."""


class RequestRejected(ModelError):
    """The endpoint refused the request itself (HTTP 400, 413, 422: context too long, bad
    parameter). At a sample's first request, which every sample sends alike, it is an
    EndpointError; later it ends only that sample."""


class AgentExit(Exception):
    """Ends a sample. `exit_status` is recorded in the trajectory."""

    exit_status = "exit"

    def __init__(self, message: str = "", **payload: Any) -> None:
        super().__init__(message)
        self.message = message
        self.payload = payload


class Submitted(AgentExit):
    """The model called `submit`. payload: `command` in phase testgen."""

    exit_status = "submitted"


class LimitsExceeded(AgentExit):
    """A per-sample limit (steps, wall time, tokens, cost, format errors) was hit."""

    exit_status = "limits_exceeded"


class ModelFailed(AgentExit):
    """The model endpoint kept failing; the sample ends, the run goes on."""

    exit_status = "model_error"


class FormatError(Exception):
    """The model's turn could not be executed (no tool call, two calls, bad arguments).

    The message is shown to the model, which is asked again."""


def find_endpoint_error(exc: BaseException) -> EndpointError | None:
    """The EndpointError in `exc`, also inside (nested) exception groups of task groups."""
    if isinstance(exc, EndpointError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := find_endpoint_error(inner)) is not None:
                return found
    return None
