"""Normal forms of source files: what semantic dedup compares instead of raw diffs.

A file of a known language (by extension) is parsed with tree-sitter and written out as
a token stream: one line per leaf (comments, whitespace and formatting left out) and
open/close markers for inner nodes, so that block nesting (Python indentation) stays.
On top of that each language drops what cannot change behaviour: quote style where
quotes mean the same, trailing commas, optional semicolons, redundant parentheses,
Python docstrings. Files of other languages, files that do not parse and binary files
fall back to whitespace-insensitive text or exact bytes. docs/architecture/dedup.md
says what each language ignores and why.

Speed: `form_digest` reparses a candidate incrementally from its snapshot file's tree,
and memoises the forms of large subtrees (definitions) by their text, so that 500
candidates touching the same few files cost little more than their changed regions.
"""

from __future__ import annotations

import hashlib
import logging
import threading

from tree_sitter import Node

from kat_lsp.pipeline import literals
from kat_lsp.pipeline.grammars import LangRules, clear_trees, content_digest, language_for, parse

log = logging.getLogger(__name__)

ABSENT = "absent"
"""The digest of a file that does not exist (deleted, or not yet created)."""
MEMO_MIN_BYTES = 64
MEMO_MAX_DEPTH = 5
"""Subtrees at least MEMO_MIN_BYTES long and at most MEMO_MAX_DEPTH deep (definitions,
methods in classes, impl blocks) have their normal form memoised by their text."""

_LOCK = threading.Lock()
_DIGESTS: dict[tuple[str, bytes], str] = {}
_DIGESTS_MAX = 50_000
_MEMO: dict[tuple[str, str, bool, bytes], str] = {}
_MEMO_CHARS = [0]
_MEMO_MAX_CHARS = 64_000_000


def clear_caches() -> None:
    """Forget every cached tree, subtree form and file digest (benchmarks, tests)."""
    clear_trees()
    with _LOCK:
        _DIGESTS.clear()
        _MEMO.clear()
        _MEMO_CHARS[0] = 0


def _memoise(key: tuple[str, str, bool, bytes], form: str) -> None:
    with _LOCK:
        if _MEMO_CHARS[0] > _MEMO_MAX_CHARS:
            _MEMO.clear()
            _MEMO_CHARS[0] = 0
        _MEMO[key] = form
        _MEMO_CHARS[0] += len(form) + len(key[3])


# --- the token stream --------------------------------------------------------------------

_CLOSERS = frozenset({")", "]", "}"})
_SPACE = frozenset(b" \t\n\r\f\v")
_BODY_OWNERS = frozenset({"function_definition", "class_definition"})


class _Frame:
    """A node being written out; `kind` is the parent type its children see."""

    __slots__ = ("children", "commas", "docs", "end", "i", "kind", "memo", "node", "start",
                 "transparent")  # fmt: skip

    def __init__(
        self,
        node: Node,
        kind: str,
        start: int,
        docs: bool = False,
        memo: tuple[str, str, bool, bytes] | None = None,
        transparent: bool = False,
    ) -> None:
        self.node, self.kind, self.start, self.docs = node, kind, start, docs
        self.memo, self.transparent = memo, transparent
        self.children = node.children
        self.i = self.commas = 0
        self.end = node.start_byte


def _gap(src: bytes, start: int, end: int, out: list[str]) -> None:
    """Text between children that no child covers: normally whitespace (ignored)."""
    if end - start == 1 and src[start] in _SPACE:
        return
    chunk = src[start:end]
    if chunk.isspace():
        return
    chunk = chunk.replace(b"\\\r\n", b"").replace(b"\\\n", b"")  # line continuations
    text = chunk.decode("utf-8", "surrogateescape").replace("\ufeff", "").strip()
    if text:
        out.append("gap " + literals.escape(text))


def _is_docstring(node: Node) -> bool:
    """An expression statement of a plain string (an f-string is evaluated: not a doc)."""
    if node.type != "expression_statement":
        return False
    parts = [c for c in node.children if not c.is_extra]
    if len(parts) != 1 or parts[0].type not in ("string", "concatenated_string"):
        return False
    strings = parts[0].children if parts[0].type == "concatenated_string" else parts
    return not any(c.type == "interpolation" for s in strings for c in s.children)


def _leaf(node: Node, src: bytes, rules: LangRules, frame: _Frame, out: list[str]) -> None:
    kind = node.type
    if kind == ";" and rules.semicolon_parents is not None:
        if frame.kind not in rules.semicolon_parents:
            return
    elif kind == ",":
        frame.commas += 1
    elif kind in _CLOSERS:
        if frame.transparent:
            return
        if out and out[-1] == "'," and (frame.kind not in rules.tuple_brackets or frame.commas > 1):
            out.pop()  # a trailing comma
    elif kind == "(" and frame.transparent:
        return
    rule = rules.special.get(kind)
    token = rule(node, src, frame.kind) if rule is not None else None
    if token is None:
        text = literals.escape(
            src[node.start_byte : node.end_byte].decode("utf-8", "surrogateescape")
        )
        token = f"{kind} {text}" if node.is_named else "'" + text
    if token:
        out.append(token)


def _walk(root: Node, src: bytes, rules: LangRules) -> list[str]:
    out = ["(" + root.type]
    stack = [_Frame(root, root.type, 0, docs=rules.docstrings)]
    while stack:
        frame = stack[-1]
        if frame.i == len(frame.children):
            stack.pop()
            if frame.node.end_byte > frame.end:
                _gap(src, frame.end, frame.node.end_byte, out)
            if not frame.transparent:
                out.append(")")
            if frame.memo is not None:
                out[frame.start :] = ["\n".join(out[frame.start :])]
                _memoise(frame.memo, out[-1])
            continue
        child = frame.children[frame.i]
        frame.i += 1
        if child.start_byte > frame.end:
            _gap(src, frame.end, child.start_byte, out)
        frame.end = child.end_byte
        if child.is_extra:
            continue
        if frame.docs:
            frame.docs = False
            if _is_docstring(child):
                continue
        if child.child_count == 0:
            _leaf(child, src, rules, frame, out)
            continue
        kind = child.type
        if kind in rules.atomic:
            text = src[child.start_byte : child.end_byte].decode("utf-8", "surrogateescape")
            out.append(f"{kind} {literals.escape(text)}")
            continue
        rule = rules.special.get(kind)
        if rule is not None and (token := rule(child, src, frame.kind)) is not None:
            if token:
                out.append(token)
            continue
        if (
            kind == "parenthesized_expression"
            and rules.paren_parents is not None
            and frame.kind not in rules.paren_parents
        ):
            stack.append(_Frame(child, frame.kind, len(out), transparent=True))
            continue
        docs = rules.docstrings and kind == "block" and frame.node.type in _BODY_OWNERS
        memo = None
        if len(stack) <= MEMO_MAX_DEPTH and child.end_byte - child.start_byte >= MEMO_MIN_BYTES:
            memo = (rules.name, kind, docs, src[child.start_byte : child.end_byte])
            if (form := _MEMO.get(memo)) is not None:
                out.append(form)
                continue
        out.append("(" + kind)
        stack.append(_Frame(child, kind, len(out) - 1, docs=docs, memo=memo))
    return out


# --- public API --------------------------------------------------------------------------


def whitespace_form(text: str) -> str:
    """The fallback: trailing whitespace and blank lines dropped, runs of blanks inside a
    line collapsed to one space; indentation is kept (it may be meaningful)."""
    lines = []
    for line in text.splitlines():
        body = line.strip()
        if body:
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(indent + " ".join(body.split()))
    return "\n".join(lines)


def _form(path: str, content: bytes, base: bytes | None) -> str:
    if b"\0" in content:
        return "binary " + content_digest(content).hex()
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return "binary " + content_digest(content).hex()
    rules = language_for(path)
    if rules is not None:
        try:
            tree = parse(rules, content, base)
            if not tree.root_node.has_error:
                return f"tree {rules.name}\n" + "\n".join(_walk(tree.root_node, content, rules))
        except Exception:  # a grammar bug must not lose the candidate: compare as text
            log.warning("normal form of %s failed; comparing it as text", path, exc_info=True)
    return "text\n" + whitespace_form(text)


def normal_form(path: str, content: bytes) -> str:
    """The normal form of one file; two files with equal forms behave the same.

    The first line names the scheme: `tree <language>`, `text` (no grammar for the
    extension, or a syntax error) or `binary <digest>` (not UTF-8 text)."""
    return _form(path, content, None)


def form_digest(path: str, content: bytes | None, base: bytes | None = None) -> str:
    """A hex digest of `normal_form(path, content)`; `ABSENT` for None (no such file).

    `base` (the snapshot's content of the same path) only makes it faster: the content
    is reparsed incrementally from the base's tree. Cached by (language, content)."""
    if content is None:
        return ABSENT
    rules = language_for(path)
    key = (rules.name if rules else "text", content_digest(content))
    if (digest := _DIGESTS.get(key)) is None:
        form = _form(path, content, base).encode("utf-8", "surrogateescape")
        digest = hashlib.blake2b(form, digest_size=16).hexdigest()
        with _LOCK:
            if len(_DIGESTS) >= _DIGESTS_MAX:
                _DIGESTS.clear()
            _DIGESTS[key] = digest
    return digest
