"""`OpenAIModel`: the `Model` behind any OpenAI-compatible Chat Completions endpoint.

Owns one request: headers, temperature per phase, tools (function or text mode),
streaming or not, the deterministic assistant message, decoding tool-call arguments,
usage and cost. Retries (429, 408, 409, 5xx, timeouts, connection errors, with
exponential backoff and jitter, honouring `retry-after`) are the openai client's own,
bounded by `max_retries`; when they are spent, `ModelError` says what to check.
`openai` is imported on first use: it costs about half a second.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kat_lsp.config import KatConfig
from kat_lsp.exceptions import FormatError, ModelError
from kat_lsp.interfaces import ModelResponse, RequestContext, ToolCall, Usage
from kat_lsp.model.errors import explain_api_error
from kat_lsp.model.text_mode import parse_action

if TYPE_CHECKING:
    import openai


@dataclass
class _Reply:
    """The parts of a completion we keep, whether it was streamed or not."""

    content: str | None = None
    calls: list[dict[str, str]] = field(default_factory=list)
    """id, name and the raw arguments string of each tool call."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


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
            import openai

            self._client = openai.AsyncOpenAI(
                base_url=self.config.base_url,
                api_key=self.config.api_key or "not-needed",
                max_retries=self.config.max_retries,
                timeout=self.config.request_timeout,
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
        import openai

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
        try:
            reply = await (self._stream(request) if config.stream else self._complete(request))
        except openai.APIError as exc:
            raise ModelError(explain_api_error(exc, config, self._url)) from exc
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

    async def _complete(self, request: dict[str, Any]) -> _Reply:
        completion = await self.client.chat.completions.create(**request)
        if not completion.choices:
            raise ModelError(f"the model endpoint {self._url} answered without any choices")
        choice = completion.choices[0]
        reply = _Reply(content=choice.message.content, finish_reason=choice.finish_reason)
        for n, call in enumerate(choice.message.tool_calls or []):
            function = getattr(call, "function", None)
            if function is not None:
                reply.calls.append(_call(call.id, n, function.name, function.arguments))
        _read_usage(reply, completion.usage)
        return reply

    async def _stream(self, request: dict[str, Any]) -> _Reply:
        import openai

        stream = await self.client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
        reply = _Reply()
        parts: list[str] = []
        slots: dict[int, dict[str, str]] = {}
        try:
            async for chunk in stream:
                _read_usage(reply, chunk.usage)
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta.content:
                        parts.append(delta.content)
                    for piece in delta.tool_calls or []:
                        _merge_call_delta(slots, piece)
                    reply.finish_reason = choice.finish_reason or reply.finish_reason
        except (ModelError, openai.APIError):
            raise
        except Exception as exc:  # the HTTP library's read errors; not retried mid-stream
            raise ModelError(
                f"the stream from the model endpoint {self._url} broke off "
                f"({type(exc).__name__}: {exc}); the request was not retried mid-stream. "
                "If this repeats, set stream = false."
            ) from exc
        reply.content = "".join(parts) if parts else None
        reply.calls = [
            _call(s["id"], n, s["name"], s["arguments"]) for n, s in enumerate(slots.values())
        ]
        return reply

    def _text_response(
        self,
        reply: _Reply,
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


def _call(call_id: str | None, n: int, name: str | None, arguments: Any) -> dict[str, str]:
    # Some local servers send no id, or the arguments as an object: normalize deterministically.
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {"id": call_id or f"call-{n}", "name": name or "", "arguments": arguments}


def _merge_call_delta(slots: dict[int, dict[str, str]], piece: Any) -> None:
    index = piece.index
    if index is None:  # servers without indices: a delta with an id starts a new call
        index = len(slots) if piece.id or not slots else max(slots)
    slot = slots.setdefault(index, {"id": "", "name": "", "arguments": ""})
    slot["id"] = slot["id"] or piece.id or ""
    function = piece.function
    if function is not None:
        slot["name"] = slot["name"] or function.name or ""
        if function.arguments:
            slot["arguments"] += (
                function.arguments
                if isinstance(function.arguments, str)
                else json.dumps(function.arguments)
            )


def _read_usage(reply: _Reply, usage: Any) -> None:
    if usage is not None:
        reply.prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        reply.completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)


def _function_response(reply: _Reply, usage: Usage) -> ModelResponse:
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
        value = json.loads(raw, strict=False)
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
