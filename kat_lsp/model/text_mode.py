"""Text tool mode: tools described in the prompt, one fenced action block parsed per reply.

For endpoints without function calling (`tool_mode = "text"`). The format is documented
in docs/reference/text-tool-mode.md: exactly one fenced block whose info string is a tool
name and whose body is a JSON object of arguments; a `bash` body that is not a JSON object
is the command itself; `submit` may have an empty body. Other fenced blocks (```python,
```diff, ...) are ignored, so the model can still show code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kat_lsp.exceptions import FormatError
from kat_lsp.interfaces import ToolCall
from kat_lsp.model.arguments import loads_arguments

_FENCE = re.compile(r"^ {0,3}(`{3,})\s*([^`\s]*)[^`]*$")


@dataclass
class Block:
    """A fenced code block of a reply."""

    info: str
    body: str


def fenced_blocks(text: str) -> list[Block]:
    """The fenced blocks of `text`, CommonMark-style: a block opened by N backticks is closed
    by a line of at least N backticks (an unclosed block runs to the end of the text)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, info = opening.group(1), opening.group(2)
        body: list[str] = []
        i += 1
        while i < len(lines) and not _closes(lines[i], fence):
            body.append(lines[i])
            i += 1
        blocks.append(Block(info=info, body="\n".join(body)))
        i += 1
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= len(fence) and set(stripped) == {"`"}


def _format_reminder(tool_names: list[str]) -> str:
    names = ", ".join(tool_names)
    return (
        "Reply with exactly one action block: a fenced code block whose info string is the "
        'tool name and whose body is a JSON object of its arguments, e.g. ```bash\\n{"command": '
        f'"ls"}}\\n```. Available tools: {names}.'
    )


def _clip(text: str, limit: int = 80) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."


def parse_action(text: str, tool_names: Iterable[str], *, call_id: str = "text-0") -> ToolCall:
    """The one tool call of a text-mode reply. Raises FormatError telling the model the format."""
    names = list(tool_names)
    blocks = fenced_blocks(text)
    actions = [b for b in blocks if b.info in names]
    if not actions:
        others = sorted({b.info for b in blocks if b.info})
        if others:
            listed = ", ".join(f"```{o}" for o in others)
            raise FormatError(
                f"No action block: {listed} is not a tool, so it was not run. "
                + _format_reminder(names)
            )
        raise FormatError("No action block found in your reply. " + _format_reminder(names))
    if len(actions) > 1:
        found = ", ".join(f"```{a.info}" for a in actions)
        raise FormatError(
            f"Your reply has {len(actions)} action blocks ({found}); send exactly one per "
            "reply and wait for its result. " + _format_reminder(names)
        )
    block = actions[0]
    return ToolCall(id=call_id, name=block.info, arguments=_arguments(block, names))


def _arguments(block: Block, names: list[str]) -> dict[str, Any]:
    body = block.body.strip()
    if not body:
        if block.info == "submit":
            return {}
        raise FormatError(
            f"The ```{block.info} block is empty: put its arguments in it as a JSON object. "
            + _format_reminder(names)
        )
    try:
        # strict=False: models often write multi-line strings (file_text) with raw newlines
        value = loads_arguments(block.info, body)
    except json.JSONDecodeError as exc:
        if block.info == "bash" and not body.startswith('{"'):
            return {"command": body}
        raise FormatError(
            f"The ```{block.info} block is not valid JSON ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno}); it starts with: {_clip(body)!r}. " + _format_reminder(names)
        ) from None
    if isinstance(value, dict):
        return value
    if block.info == "bash":
        return {"command": body}
    raise FormatError(
        f"The body of the ```{block.info} block must be a JSON object of arguments, "
        f"not {type(value).__name__}: {_clip(body)!r}. " + _format_reminder(names)
    )


def _parameter_lines(parameters: dict[str, Any]) -> list[str]:
    props: dict[str, Any] = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])
    if not props:
        return ["Arguments: none (an empty block body is fine)."]
    lines = ["Arguments:"]
    for name, spec in props.items():
        kind = spec.get("type", "any")
        if isinstance(kind, list):
            kind = " or ".join(str(k) for k in kind)
        flags = [str(kind), "required" if name in required else "optional"]
        if "enum" in spec:
            flags.append("one of " + ", ".join(json.dumps(v) for v in spec["enum"]))
        description = " ".join(str(spec.get("description", "")).split())
        lines.append(f"- {name} ({'; '.join(flags)})" + (f": {description}" if description else ""))
    return lines


def render_tool_instructions(tools: list[dict[str, Any]]) -> str:
    """The tool list and reply format, to append to the system prompt (deterministic)."""
    functions = [t.get("function", t) for t in tools]
    names = [f["name"] for f in functions]
    parts = [
        "## How to act",
        "",
        "You act by calling tools. In every reply, write your reasoning (optional), then "
        "exactly ONE action block: a fenced code block whose info string is the tool name "
        "and whose body is a JSON object with the tool's arguments. You get the result in "
        "the next message. Fenced blocks with other info strings (```python, ```diff) are "
        "not run. If an argument contains a line of three backticks, open and close the "
        "action block with four backticks (````).",
        "",
        "Example:",
        "```str_replace_editor" if "str_replace_editor" in names else f"```{names[0]}",
        '{"command": "view", "path": "src/app.py"}'
        if "str_replace_editor" in names
        else json.dumps(_example_arguments(functions[0])),
        "```",
    ]
    if "bash" in names:
        parts += [
            "",
            "For bash, the body may also be the command itself:",
            "```bash",
            "ls -la",
            "```",
        ]
    parts += ["", "## Tools", ""]
    for function in functions:
        parts.append(f"### {function['name']}")
        description = str(function.get("description", "")).strip()
        if description:
            parts.append(description)
        parts += [*_parameter_lines(function.get("parameters") or {}), ""]
    return "\n".join(parts).rstrip() + "\n"


def _example_arguments(function: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = (function.get("parameters") or {}).get("properties") or {}
    return {name: "..." for name in list(props)[:2]}
