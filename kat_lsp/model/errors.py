"""What a failed model request means for the user: one line per failure, with the fix.

`status_error` sorts an HTTP error reply: 401/403/404 and "tools not supported" are an
`EndpointError` (the run stops), 400/413/422 a `RequestRejected`, the rest (408, 409, 429,
5xx) transient: retried, then a `ModelError` that ends one sample. Every message names
the endpoint, the status, the number of attempts really made, and what to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kat_lsp.config import KatConfig
from kat_lsp.exceptions import EndpointError, ModelError, RequestRejected

if TYPE_CHECKING:
    import openai

RETRIED_STATUSES = frozenset({408, 409, 429})
"""Besides 5xx: the statuses that are worth another attempt."""

RETRY_AFTER_MAX = 30.0
"""A server's `retry-after` is honoured up to this many seconds."""

_TOOLS_WORDS = ("tool", "function")
_UNSUPPORTED_WORDS = ("not support", "unsupported", "not enabled", "requires", "invalid")


def attempts_text(attempts: int) -> str:
    return f"after {attempts} attempt{'s' if attempts != 1 else ''}"


def is_transient(status: int) -> bool:
    return status in RETRIED_STATUSES or status >= 500


def _detail(exc: openai.APIStatusError) -> tuple[str, bool]:
    """The server's message (one line, at most 300 characters) and whether the reply was
    an HTML page rather than an API's JSON."""
    body: Any = exc.body
    html = isinstance(body, str) and body.lstrip()[:15].lower().startswith(("<!doctype", "<html"))
    if html:
        return "an HTML page, not an OpenAI API reply", True
    detail = body.get("message") if isinstance(body, dict) else body
    return " ".join(str(detail or exc.message).split())[:300], False


def status_error(
    exc: openai.APIStatusError, config: KatConfig, url: str, attempts: int, tools_sent: bool
) -> ModelError:
    status = exc.status_code
    detail, html = _detail(exc)
    head = f"the model endpoint {url} answered HTTP {status}"
    if is_transient(status):
        head += f" ({attempts_text(attempts)})"
    head += f" for model '{config.model}': {detail}"
    lowered = detail.lower()
    if status in (401, 403):
        hint = (
            "check the API key (OPENAI_API_KEY or the api_key setting)"
            if status == 401
            else f"the API key is valid but may not have access to model '{config.model}'"
        )
        return EndpointError(f"{head} -- {hint}")
    if status == 404:
        if html or "model" not in lowered:
            hint = "check that base_url ends with /v1 (e.g. http://localhost:8000/v1)"
        else:
            hint = (
                f"check the model name '{config.model}' (GET {url.rstrip('/')}/models lists "
                "them: set KAT_MODEL or --model)"
            )
        return EndpointError(f"{head} -- {hint}")
    if (
        tools_sent
        and any(w in lowered for w in _TOOLS_WORDS)
        and (any(w in lowered for w in _UNSUPPORTED_WORDS))
    ):
        return EndpointError(
            f"{head} -- the endpoint does not support function calling: set "
            'tool_mode = "text" (or --tool-mode text; see docs/howto/local-models.md)'
        )
    if status == 429:
        return ModelError(f"{head} -- rate limited: lower model_concurrency or samples")
    if status >= 500:
        return ModelError(f"{head} -- the server failed; see its log (out of memory?)")
    if "context" in lowered or "too long" in lowered or "maximum" in lowered or status == 413:
        hint = (
            "the conversation does not fit the model's context window: serve the model with "
            "a larger context (e.g. vLLM --max-model-len) or shorten the issue text"
        )
    elif tools_sent:
        hint = (
            "the endpoint rejected the request; if it does not support function calling, "
            'set tool_mode = "text" (see docs/howto/local-models.md)'
        )
    else:
        hint = "the endpoint rejected the request; check the message above"
    return RequestRejected(f"{head} -- {hint}")


def unreachable(url: str, attempts: int, cause: BaseException) -> EndpointError:
    return EndpointError(
        f"cannot reach the model endpoint {url} ({attempts_text(attempts)}: {cause}); check "
        "that the server is running and that base_url is right, with its /v1 suffix "
        "(e.g. http://localhost:8000/v1)"
    )


def not_an_api(url: str, what: str) -> EndpointError:
    return EndpointError(
        f"the model endpoint {url} answered HTTP 200 with {what}, not an OpenAI chat "
        "completion; check base_url: it must be the API's address with its /v1 suffix "
        "(e.g. http://localhost:8000/v1)"
    )


def timed_out(config: KatConfig, url: str, attempts: int, what: str) -> ModelError:
    return ModelError(
        f"the model endpoint {url} {what} ({attempts_text(attempts)}): the server may be "
        "overloaded or the reply too long; raise request_timeout or lower model_concurrency"
    )


def refused(cause: BaseException) -> bool:
    """A connection that could not be opened (refused, no route, unknown host)."""
    import httpx2

    return isinstance(cause, httpx2.ConnectError | ConnectionRefusedError) or (
        "connect" in type(cause).__name__.lower() and "timeout" not in type(cause).__name__.lower()
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks us to wait (`retry-after-ms`, `retry-after` in seconds),
    at most RETRY_AFTER_MAX; None when it does not say."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            seconds = float(headers[name]) * scale
        except (KeyError, ValueError):
            continue
        if seconds >= 0:
            return min(seconds, RETRY_AFTER_MAX)
    return None
