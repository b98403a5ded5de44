"""Literal values for the normal form: one token per string or number, by its value.

Used by `kat_lsp.pipeline.normalize` for the languages where two spellings of one
literal mean the same thing (Python and JavaScript/TypeScript quotes, Python numbers,
JSX text). Anything not simple to decode exactly (f-strings, unusual escapes) is kept
as written, so that doubt never merges two different programs.
"""

from __future__ import annotations

import ast
import re

from tree_sitter import Node

_PY_STRING = re.compile(r"([A-Za-z]*)('''|\"\"\"|'|\")(.*)\2\Z", re.DOTALL)
# Escapes that literal_eval decodes without a warning; anything else stays verbatim.
_PY_ESCAPES = re.compile(
    r"\\(?:[\n\\'\"abfnrtv]|[0-3][0-7]{2}|[0-7]{1,2}(?![0-7])|x[0-9a-fA-F]{2})", re.DOTALL
)
_PY_STR_ESCAPES = re.compile(r"\\(?:u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{[^}]+\})")
_JS_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|\r\n|.)", re.DOTALL)
_JS_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0",
              "\n": "", "\r\n": "", "\u2028": "", "\u2029": ""}  # fmt: skip


def escape(text: str) -> str:
    """Make a token one line (tokens are joined by newlines), unambiguously."""
    if "\\" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _text(node: Node, src: bytes) -> str:
    return src[node.start_byte : node.end_byte].decode("utf-8", "surrogateescape")


def _py_value(text: str) -> tuple[str, str] | None:
    """("str"|"bytes", value) of a Python string literal; None when not simple."""
    match = _PY_STRING.match(text)
    if not match:
        return None
    prefix, _, content = match.group(1).lower(), match.group(2), match.group(3)
    if "f" in prefix or "t" in prefix:
        return None
    kind = "bytes" if "b" in prefix else "str"
    content = content.replace("\r\n", "\n")
    if "r" in prefix or "\\" not in content:
        return kind, content
    rest = _PY_ESCAPES.sub("", content)
    if kind == "str":
        rest = _PY_STR_ESCAPES.sub("", rest)
    if "\\" in rest:
        return None  # an invalid escape: literal_eval would warn; keep it verbatim
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return kind, value.decode("latin-1") if isinstance(value, bytes) else str(value)


def python_string(node: Node, src: bytes, parent: str) -> str:
    """`'a'`, `"a"`, `'''a'''`, `u'a'` and `r'a'` are one token; `b'a'` another.

    f-strings keep their text between the quotes and their (sorted) prefix letters."""
    text = _text(node, src)
    value = _py_value(text)
    if value is not None:
        return f"{value[0]} {escape(value[1])}"
    match = _PY_STRING.match(text)
    if not match:
        return f"string {escape(text)}"
    prefix = "".join(sorted(match.group(1).lower()))
    return f"string-{prefix} {escape(match.group(3))}"


def python_concatenation(node: Node, src: bytes, parent: str) -> str | None:
    """`"a" "b"` is `"ab"`: implicit concatenation of plain strings is one value."""
    values = []
    for child in node.children:
        if child.is_extra:
            continue
        value = _py_value(_text(child, src)) if child.type == "string" else None
        if value is None:
            return None
        values.append(value)
    kinds = {kind for kind, _ in values}
    if len(kinds) != 1:
        return None
    return f"{kinds.pop()} {escape(''.join(v for _, v in values))}"


def python_number(node: Node, src: bytes, parent: str) -> str:
    """`0xFF` is 255, `1_000` is 1000, `1E3` is `1e3`: numbers compare by value and type."""
    text = _text(node, src)
    try:
        return f"number {ast.literal_eval(text)!r}"
    except (ValueError, SyntaxError):
        return f"number {text}"


def _js_unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code in _JS_SIMPLE:
        return _JS_SIMPLE[code]
    if code[0] == "u":
        return chr(int(code[1:].strip("{}"), 16))
    if code[0] == "x":
        return chr(int(code[1:], 16))
    return code  # an identity escape: `\'` is `'`


def js_string(node: Node, src: bytes, parent: str) -> str:
    """`'a'` and `"a"` are one token (escapes decoded); JSX attributes have no escapes."""
    content = _text(node, src)[1:-1]
    if parent == "jsx_attribute" or "\\" not in content:
        return f"str {escape(content)}"
    for match in _JS_ESCAPE.finditer(content):
        code, after = match.group(1), content[match.end() : match.end() + 1]
        if code in "123456789" or (code == "0" and after.isdigit()):
            return f"string {escape(content)}"  # a legacy octal escape: keep it as written
    return f"str {escape(_JS_ESCAPE.sub(_js_unescape, content))}"


def jsx_text(node: Node, src: bytes, parent: str) -> str | None:
    """JSX text as React sees it: whitespace around line breaks disappears."""
    lines = _text(node, src).replace("\r\n", "\n").split("\n")
    kept = []
    for i, line in enumerate(lines):
        if i > 0:
            line = line.lstrip(" \t")
        if i < len(lines) - 1:
            line = line.rstrip(" \t")
        if line:
            kept.append(line)
    return f"jsx_text {escape(' '.join(kept))}" if kept else ""
