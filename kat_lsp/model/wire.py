"""Reading a model reply off the wire, bounded: size, stalls, completeness, shape.

Every byte of a reply counts against MAX_REPLY_BYTES (streamed or not): a larger reply
fails the request with a `ReplyTooLarge` instead of growing the process. Once its first
chunk came (that one is bounded by request_timeout: the prompt may take long to read),
a stream must send one at least every `stall_timeout` seconds and end with
`data: [DONE]`; a stall or a stream that closes early is a `CutStream`, retried like any
transient failure. A 200 reply that is not a chat completion (an HTML page, other JSON)
is an EndpointError.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from kat_lsp.config import KatConfig
from kat_lsp.exceptions import ModelError
from kat_lsp.model.errors import not_an_api

MAX_REPLY_BYTES = 16 * 1024 * 1024
"""Bytes one reply may take on the wire (a model's longest useful reply is far below)."""


def stall_timeout(config: KatConfig) -> float:
    """The `stream_stall_timeout` setting, never more than request_timeout."""
    return max(0.1, min(config.stream_stall_timeout, config.request_timeout))


class ReplyTooLarge(ModelError):
    """The reply went past MAX_REPLY_BYTES; the request is not retried."""


class CutStream(Exception):
    """The stream stalled or closed before `[DONE]`: a transient failure, retried."""


@dataclass
class Reply:
    """The parts of a completion we keep, whether it was streamed or not."""

    content: str | None = None
    calls: list[dict[str, str]] = field(default_factory=list)
    """id, name and the raw arguments string of each tool call."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


def _too_large(url: str) -> ReplyTooLarge:
    return ReplyTooLarge(
        f"the model endpoint {url} sent a reply larger than {MAX_REPLY_BYTES >> 20} MiB; "
        "the request was stopped there and not retried (set max_tokens to bound replies)"
    )


def cap_hook(url: str) -> Callable[[Any], Awaitable[None]]:
    """An httpx2 response hook that counts every reply's bytes against MAX_REPLY_BYTES,
    error replies included (the openai client reads those itself)."""
    import httpx2

    class Capped(httpx2.AsyncByteStream):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __aiter__(self) -> AsyncIterator[bytes]:
            size = 0
            async for chunk in self.inner:
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    raise _too_large(url)
                yield chunk

        async def aclose(self) -> None:
            await self.inner.aclose()

    async def hook(response: Any) -> None:
        response.stream = Capped(response.stream)

    return hook


async def read_capped(chunks: AsyncIterator[bytes], url: str) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise _too_large(url)
        parts.append(chunk)
    return b"".join(parts)


def _loads(data: bytes, url: str) -> Any:
    """The JSON value, None when it is not JSON; a ModelError when nested too deeply."""
    try:
        return json.loads(data)
    except ValueError:
        return None
    except RecursionError:
        raise ModelError(f"the model endpoint {url} sent a reply nested too deeply") from None


def parse_completion(body: bytes, content_type: str, url: str) -> Reply:
    """A non-streamed reply; EndpointError when it is no chat completion at all."""
    data = _loads(body, url)
    if data is None:
        start = body.lstrip()[:15].lower()
        what = (
            "an HTML page"
            if start.startswith((b"<!doctype", b"<html"))
            else f"a reply that is not JSON ({content_type or 'no content type'})"
        )
        raise not_an_api(url, what)
    if isinstance(data, dict) and "error" in data and "choices" not in data:
        error = data["error"]
        detail = error.get("message") if isinstance(error, dict) else error
        raise ModelError(f"the model endpoint {url} answered with an error: {detail}"[:500])
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise not_an_api(url, "JSON that is not a chat completion")
    if not data["choices"] or not isinstance(data["choices"][0], dict):
        raise ModelError(f"the model endpoint {url} answered without any choices")
    choice = data["choices"][0]
    message: dict[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
    content = message.get("content")
    reply = Reply(content=content if isinstance(content, str) else None)
    reply.finish_reason = _text(choice.get("finish_reason"))
    for n, call in enumerate(_list(message.get("tool_calls"))):
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            reply.calls.append(_call(call.get("id"), n, function.get("name"), function))
    read_usage(reply, data.get("usage"))
    return reply


async def read_stream(chunks: AsyncIterator[bytes], url: str, stall: float) -> Reply:
    """A streamed reply, up to `data: [DONE]`; CutStream when it stalls or ends before."""
    reply = Reply()
    parts: list[str] = []
    slots: dict[int, dict[str, str]] = {}
    buffer, size, done = b"", 0, False
    iterator = chunks.__aiter__()
    while not done:
        try:  # the first chunk may wait for the prompt's prefill: request_timeout bounds it
            with anyio.fail_after(stall if size else math.inf):
                chunk = await iterator.__anext__()
        except StopAsyncIteration:
            raise CutStream(f"the stream from {url} closed before its end (no [DONE])") from None
        except TimeoutError:
            raise CutStream(f"the stream from {url} stalled for {stall:g} s") from None
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise _too_large(url)
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                done = True
                break
            event = _loads(payload, url)
            if not isinstance(event, dict):
                raise CutStream(f"the stream from {url} sent an event that is not JSON")
            if "error" in event and not event.get("choices"):
                raise ModelError(f"the model endpoint {url} failed mid-stream: {event['error']}")
            read_usage(reply, event.get("usage"))
            for choice in _list(event.get("choices")):
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if not isinstance(delta, dict):
                    continue
                if isinstance(delta.get("content"), str) and delta["content"]:
                    parts.append(delta["content"])
                for piece in _list(delta.get("tool_calls")):
                    if isinstance(piece, dict):
                        _merge_call_delta(slots, piece)
                reply.finish_reason = _text(choice.get("finish_reason")) or reply.finish_reason
    reply.content = "".join(parts) if parts else None
    reply.calls = [
        {"id": s["id"] or f"call-{n}", "name": s["name"], "arguments": s["arguments"]}
        for n, s in enumerate(slots.values())
    ]
    return reply


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _call(call_id: Any, n: int, name: Any, function: dict[str, Any]) -> dict[str, str]:
    # Some local servers send no id, or the arguments as an object: normalize deterministically.
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = "" if arguments is None else json.dumps(arguments)
    return {"id": _text(call_id) or f"call-{n}", "name": _text(name) or "", "arguments": arguments}


def _merge_call_delta(slots: dict[int, dict[str, str]], piece: dict[str, Any]) -> None:
    index = piece.get("index")
    if not isinstance(index, int):  # servers without indices: a delta with an id starts a call
        index = len(slots) if piece.get("id") or not slots else max(slots)
    slot = slots.setdefault(index, {"id": "", "name": "", "arguments": ""})
    slot["id"] = slot["id"] or _text(piece.get("id")) or ""
    function = piece.get("function")
    if isinstance(function, dict):
        slot["name"] = slot["name"] or _text(function.get("name")) or ""
        arguments = function.get("arguments")
        if arguments:
            slot["arguments"] += arguments if isinstance(arguments, str) else json.dumps(arguments)


def read_usage(reply: Reply, usage: Any) -> None:
    if isinstance(usage, dict):
        reply.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        reply.completion_tokens = int(usage.get("completion_tokens") or 0)
