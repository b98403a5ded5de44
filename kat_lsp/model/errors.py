"""What a failed model request means for the user: one message per openai error, with the fix.

Raised as `ModelError` once the openai client's own retries are spent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kat_lsp.config import KatConfig

if TYPE_CHECKING:
    import openai


def explain_api_error(exc: openai.APIError, config: KatConfig, url: str) -> str:
    import openai

    attempts = config.max_retries + 1
    retried = f"after {attempts} attempt{'s' if attempts > 1 else ''}"
    if isinstance(exc, openai.APITimeoutError):
        return (
            f"the model endpoint {url} did not answer within request_timeout = "
            f"{config.request_timeout:g} s ({retried}): the server may be overloaded "
            "or the reply too long; raise request_timeout or lower model_concurrency"
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return (
            f"cannot reach the model endpoint {url} ({retried}: {cause}); check that "
            "the server is running and that base_url is right, with its /v1 suffix "
            "(e.g. http://localhost:8000/v1)"
        )
    if not isinstance(exc, openai.APIStatusError):
        return f"the model endpoint {url} failed: {exc}"
    status = exc.status_code
    body = exc.body
    detail = body.get("message") if isinstance(body, dict) else None
    detail = " ".join(str(detail or exc.message).split())[:400]
    # the openai client retries these statuses (and honours x-should-retry); others fail at once
    tries = f" {retried}" if status in (408, 409, 429) or status >= 500 else ""
    return (
        f"the model endpoint {url} answered HTTP {status}{tries} for model "
        f"'{config.model}': {detail} -- {_hint(status, config, url)}"
    )


def _hint(status: int, config: KatConfig, url: str) -> str:
    if status == 401:
        return "check the API key (OPENAI_API_KEY or the api_key setting)"
    if status == 403:
        return f"the API key is valid but may not have access to model '{config.model}'"
    if status == 404:
        return (
            f"check the model name '{config.model}' (GET {url.rstrip('/')}/models lists "
            "them) and that base_url ends with /v1"
        )
    if status == 429:
        return "rate limited: lower model_concurrency or samples, or raise max_retries"
    if status >= 500:
        return "the server failed; see its log (out of memory? prompt too long?)"
    if config.tool_mode == "function":
        return (
            "the endpoint rejected the request; if it does not support function calling, "
            'set tool_mode = "text" (see docs/howto/local-models.md)'
        )
    return "the endpoint rejected the request; check the message above"
