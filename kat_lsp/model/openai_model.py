"""`OpenAIModel`: the `Model` behind any OpenAI-compatible Chat Completions endpoint.

Owns one request: headers, temperature per phase, tools (function or text mode),
streaming or not, the deterministic assistant message, decoding tool-call arguments,
usage and cost. The openai client builds the request and sorts HTTP errors; the reply
is read here (kat_lsp.model.wire: size cap, stall timeout, `[DONE]`), and the retries
are ours, so that every wait is bounded and every message counts the attempts made:

- each attempt has a whole-request deadline of `request_timeout` (a reply dripping one
  byte a second ends there), its connection CONNECT_TIMEOUT;
- 408/409/429/5xx, timeouts, dropped connections and cut or stalled streams are
  retried up to `max_retries` times, with exponential backoff and jitter, honouring
  `retry-after` (up to errors.RETRY_AFTER_MAX); then `ModelError` ends the sample;
- configuration errors (kat_lsp.model.errors) raise `EndpointError` at once, or after
  the retries for a refused connection: the run stops.
`openai` is imported on first use: it costs about half a second.
"""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any

import anyio

from kat_lsp.config import KatConfig
from kat_lsp.exceptions import FormatError, ModelError
from kat_lsp.interfaces import ModelResponse, RequestContext, ToolCall, Usage
from kat_lsp.model import errors
from kat_lsp.model.arguments import loads_arguments
from kat_lsp.model.text_mode import parse_action
from kat_lsp.model.wire import (
    CutStream,
    Reply,
    cap_hook,
    parse_completion,
    read_capped,
    read_stream,
    stall_timeout,
)

if TYPE_CHECKING:
    import openai

CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection (never more than request_timeout)."""
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 8.0
"""Seconds before the first retry, doubling per retry up to BACKOFF_MAX (jitter: -25%)."""


class OpenAIModel:
    """One endpoint and model. `usage` sums every request made through this object."""

    def __init__(self, config: KatConfig, *, client: openai.AsyncOpenAI | None = None) -> None:
        if client is None:
            config.require_endpoint()
        self.config = config
        self.usage = Usage()
        self._client = client

    @property
    def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            import httpx2
            import openai

            limit = self.config.request_timeout
            timeout = httpx2.Timeout(limit, connect=min(CONNECT_TIMEOUT, limit))
            self._client = openai.AsyncOpenAI(
                base_url=self.config.base_url,
                api_key=self.config.api_key or "not-needed",
                max_retries=0,  # ours (query): they count attempts and cover the reply too
                timeout=timeout,
                http_client=openai.DefaultAsyncHttpxClient(  # its defaults, proxies included
                    timeout=timeout, event_hooks={"response": [cap_hook(str(self.config.base_url))]}
                ),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def query(
        self,
        messages: list[dict[str, Any]],
        *,
        ctx: RequestContext,
        tools: list[dict[str, Any]] | None = None,
        temperature: float | None = None,
    ) -> ModelResponse:
        config = self.config
        request: dict[str, Any] = {
            "model": config.model,
            "messages": messages,
            "temperature": config.temperature(ctx.phase) if temperature is None else temperature,
            "extra_headers": ctx.headers(),
        }
        if config.max_tokens is not None:
            request["max_tokens"] = config.max_tokens
        if tools and config.tool_mode == "function":
            request["tools"] = tools
        started = time.monotonic()
        reply = await self._with_retries(request)
        seconds = time.monotonic() - started
        usage = Usage(
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            requests=1,
            model_seconds=seconds,
            cost=self._cost(reply.prompt_tokens, reply.completion_tokens),
        )
        self.usage.add(usage)
        if config.tool_mode == "text":
            return self._text_response(reply, messages, tools, usage)
        return _function_response(reply, usage)

    async def _with_retries(self, request: dict[str, Any]) -> Reply:
        import openai

        config, url = self.config, self._url
        attempts = 0
        while True:
            attempts += 1
            wait: float | None = None
            try:
                with anyio.fail_after(config.request_timeout):
                    return await self._attempt(request)
            except (TimeoutError, openai.APITimeoutError):
                what = f"did not answer within request_timeout = {config.request_timeout:g} s"
                failure: ModelError = errors.timed_out(config, url, attempts, what)
            except CutStream as exc:
                failure = ModelError(
                    f"{exc} ({errors.attempts_text(attempts)}); if this repeats, set stream = false"
                )
            except openai.APIStatusError as exc:
                failure = errors.status_error(exc, config, url, attempts, "tools" in request)
                if not errors.is_transient(exc.status_code):
                    raise failure from exc
                wait = errors.retry_after(exc.response.headers)
            except openai.APIConnectionError as exc:
                cause = exc.__cause__ or exc
                if errors.refused(cause) and not self.usage.requests:
                    failure = errors.unreachable(url, attempts, cause)  # a wrong address
                elif errors.refused(cause):  # it answered before: the server went down
                    failure = ModelError(
                        f"cannot reach the model endpoint {url} any more "
                        f"({errors.attempts_text(attempts)}: {cause}); is the server still up?"
                    )
                else:
                    failure = ModelError(
                        f"the connection to the model endpoint {url} broke off "
                        f"({errors.attempts_text(attempts)}: {type(cause).__name__}: {cause})"
                    )
            if attempts > config.max_retries:
                raise failure
            backoff = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempts - 1))
            await anyio.sleep(wait if wait is not None else backoff * (1 - 0.25 * random.random()))

    async def _attempt(self, request: dict[str, Any]) -> Reply:
        api = self.client.chat.completions.with_streaming_response
        stream = self.config.stream
        extra: dict[str, Any] = (
            {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
        )
        async with api.create(**request, **extra) as response:
            content_type = response.headers.get("content-type", "")
            if stream and "event-stream" in content_type:
                return await read_stream(
                    response.iter_bytes(), self._url, stall_timeout(self.config)
                )
            body = await read_capped(response.iter_bytes(), self._url)
        return parse_completion(body, content_type, self._url)

    def _text_response(
        self,
        reply: Reply,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        usage: Usage,
    ) -> ModelResponse:
        content = reply.content or ""
        response = ModelResponse(
            message={"role": "assistant", "content": content},
            content=content,
            tool_calls=[],
            usage=usage,
        )
        if tools:
            names = [t.get("function", t)["name"] for t in tools]
            turn = sum(1 for m in messages if m.get("role") == "assistant")
            try:
                response.tool_calls.append(parse_action(content, names, call_id=f"text-{turn}"))
            except FormatError as exc:
                response.format_errors.append(str(exc))
        return response

    def _cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        price_in, price_out = self.config.price_input_per_mtok, self.config.price_output_per_mtok
        if price_in is None or price_out is None:
            return None
        return (prompt_tokens * price_in + completion_tokens * price_out) / 1_000_000

    @property
    def _url(self) -> str:
        return str(self.config.base_url or self.client.base_url)


def _function_response(reply: Reply, usage: Usage) -> ModelResponse:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.calls:
        message["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in reply.calls
        ]
    elif reply.content is None:
        message["content"] = ""
    response = ModelResponse(
        message=message, content=reply.content or "", tool_calls=[], usage=usage
    )
    for call in reply.calls:
        try:
            response.tool_calls.append(
                ToolCall(call["id"], call["name"], _decode(call["name"], call["arguments"]))
            )
        except FormatError as exc:
            note = ""
            if reply.finish_reason == "length":
                note = " The reply was cut off at the token limit (max_tokens): send shorter arguments, e.g. create a large file in parts."
            response.format_errors.append(str(exc) + note)
    return response


def _decode(name: str, raw: str) -> dict[str, Any]:
    if not raw.strip():
        return {}  # some servers send "" for a call without arguments
    try:
        value = loads_arguments(name, raw)
    except json.JSONDecodeError as exc:
        start = raw[:80] + ("..." if len(raw) > 80 else "")
        raise FormatError(
            f"The arguments of your '{name}' call are not valid JSON ({exc.msg} at character "
            f"{exc.pos}); they start with: {start!r}. Send them as one JSON object, e.g. "
            '{"command": "ls"}.'
        ) from None
    if not isinstance(value, dict):
        raise FormatError(
            f"The arguments of your '{name}' call must be a JSON object of named arguments, "
            f"not a {type(value).__name__} ({raw[:80]!r})."
        )
    return value
