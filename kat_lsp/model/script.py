"""The scripted model's script: which turn answers a request, and turns into reply bodies.

Pure functions over the script JSON (format in `kat_lsp.model.scripted`'s docstring and
docs/reference/scripted-server.md); the HTTP side lives in `scripted.py`. Also turns
recorded conversations back into a script (`script_from_conversations`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

EXHAUSTED: dict[str, Any] = {"content": "(script exhausted)"}


class ScriptError(ValueError):
    """The request cannot be answered from the script (answered with HTTP 400)."""


def load_script(source: dict[str, Any] | str | Path) -> dict[str, Any]:
    """A script from a dict or a JSON file, checked for its outer shape."""
    where = "script"
    if not isinstance(source, dict):
        where = str(source)
        source = json.loads(Path(source).read_text(encoding="utf-8"))
    if not isinstance(source, dict) or not isinstance(source.get("phases"), dict):
        raise ScriptError(
            f'{where}: a script is a JSON object with a "phases" object, '
            'e.g. {"phases": {"generate": {"default": [{"content": "hi"}]}}}'
        )
    return source


def message_text(messages: list[dict[str, Any]]) -> str:
    """Every content string and tool-call text of a conversation, for `match` rules."""
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            parts.append(f"{function.get('name', '')} {function.get('arguments', '')}")
    return "\n".join(parts)


def turn_index(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages if m.get("role") == "assistant")


def _pick_turns(spec: Any, messages: list[dict[str, Any]]) -> list[Any]:
    """A list of turns from a list, or from a `match` object."""
    if isinstance(spec, list):
        return spec
    if isinstance(spec, dict) and ("match" in spec or "turns" in spec):
        text = message_text(messages)
        for rule in spec.get("match", []):
            if rule.get("contains", "") in text:
                return list(rule.get("turns", []))
        return list(spec.get("turns", []))
    raise ScriptError(f"bad script entry (want a list of turns or a match object): {spec!r:.200}")


def choose_turn(
    script: dict[str, Any], phase: str, sample: str, messages: list[dict[str, Any]]
) -> dict[str, Any]:
    """The turn that answers this request, before `times`/`then` are applied."""
    phases: dict[str, Any] = script.get("phases", {})
    if phase not in phases:
        known = ", ".join(sorted(phases)) or "none"
        raise ScriptError(
            f"the script has no phase {phase!r} (X-KAT-Phase header); phases in the script: {known}"
        )
    spec = phases[phase]
    if isinstance(spec, dict) and "match" not in spec and "turns" not in spec:
        spec = spec.get(sample, spec.get("default"))
        if spec is None:
            return EXHAUSTED
    turns = _pick_turns(spec, messages)
    index = turn_index(messages)
    turn = turns[index] if index < len(turns) else EXHAUSTED
    if not isinstance(turn, dict):
        raise ScriptError(f"turn {index} of phase {phase!r} is not an object: {turn!r:.200}")
    return turn


def tool_calls_of(turn: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """The OpenAI `tool_calls` of a turn; arguments given as objects are serialized."""
    if "tool" in turn:
        specs = [{"name": turn["tool"], "arguments": turn.get("args", {})}]
    else:
        specs = list(turn.get("tool_calls", []))
    calls = []
    for n, spec in enumerate(specs):
        arguments = spec.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        calls.append(
            {
                "id": spec.get("id", f"{prefix}_{n}"),
                "type": "function",
                "function": {"name": spec["name"], "arguments": arguments},
            }
        )
    return calls


def approx_tokens(text: str) -> int:
    return len(text) // 4


def completion_body(
    turn: dict[str, Any], *, model: str, call_prefix: str, prompt_tokens: int, usage: bool
) -> dict[str, Any]:
    """A non-streaming chat.completion body for a turn."""
    calls = tool_calls_of(turn, call_prefix)
    content = turn.get("content")
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    body: dict[str, Any] = {
        "id": f"chatcmpl-{call_prefix}",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": turn.get("finish_reason", "tool_calls" if calls else "stop"),
            }
        ],
    }
    if usage:
        completion = approx_tokens(
            (content or "") + "".join(c["function"]["arguments"] for c in calls)
        )
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }
    return body


def _pieces(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def stream_chunks(body: dict[str, Any], *, include_usage: bool) -> list[dict[str, Any]]:
    """The chat.completion.chunk objects that stream the same answer as `body`."""
    choice = body["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": body["id"],
            "object": "chat.completion.chunk",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in _pieces(message.get("content") or "")]
    for index, call in enumerate(message.get("tool_calls", [])):
        head = {"name": call["function"]["name"], "arguments": ""}
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {"index": index, "id": call["id"], "type": "function", "function": head}
                    ]
                }
            )
        )
        for piece in _pieces(call["function"]["arguments"]):
            chunks.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    chunks.append(chunk({}, choice["finish_reason"]))
    if include_usage and "usage" in body:
        chunks.append({**chunk({}), "choices": [], "usage": body["usage"]})
    return chunks


def turn_from_message(message: dict[str, Any]) -> dict[str, Any]:
    """The script turn that replays an assistant message."""
    turn: dict[str, Any] = {}
    if message.get("content"):
        turn["content"] = message["content"]
    calls = message.get("tool_calls") or []
    if calls:
        turn["tool_calls"] = [
            {"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in calls
        ]
    return turn or {"content": ""}


def script_from_conversations(
    conversations: Iterable[tuple[str, int, list[dict[str, Any]]]], *, latency: float = 0.0
) -> dict[str, Any]:
    """A script replaying recorded trajectories: (phase, sample, messages) triples, e.g. the
    `messages` of saved `<sample>.traj.json` files or the requests of a `--log` JSONL."""
    phases: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for phase, sample, messages in conversations:
        turns = [turn_from_message(m) for m in messages if m.get("role") == "assistant"]
        current = phases.setdefault(phase, {}).get(str(sample), [])
        if len(turns) > len(current):  # a longer recording of the same trajectory wins
            phases[phase][str(sample)] = turns
    return {"latency": latency, "phases": phases}


def conversations_from_log(
    records: Iterable[dict[str, Any]],
) -> Iterator[tuple[str, int, list[dict[str, Any]]]]:
    """(phase, sample, messages) of each logged chat request, its logged answer appended."""
    for record in records:
        body = record.get("body")
        if not isinstance(body, dict) or "messages" not in body:
            continue
        headers = record.get("headers", {})
        messages = list(body["messages"])
        response = record.get("response") or {}
        if response.get("choices"):
            messages.append(response["choices"][0]["message"])
        yield headers.get("x-kat-phase", ""), int(headers.get("x-kat-sample", 0)), messages
