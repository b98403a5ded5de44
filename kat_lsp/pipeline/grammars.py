"""Which tree-sitter grammar reads which file, each language's normal-form rules, and
parsing, incrementally from the snapshot's tree of the same file when there is one.

Grammars and parsers are created lazily, once per process (parsers once per thread:
a tree-sitter Parser must not be used by two threads at once), so importing is cheap.
"""

from __future__ import annotations

import hashlib
import importlib
import posixpath
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tree_sitter import Language, Node, Parser, Tree

from kat_lsp.pipeline import literals

SpecialRule = Callable[[Node, bytes, str], "str | None"]


@dataclass(frozen=True)
class LangRules:
    """What one language's normal form ignores (see docs/architecture/dedup.md)."""

    name: str
    load: Callable[[], object]
    """Returns the grammar's language pointer (called once per process)."""
    atomic: frozenset[str] = frozenset()
    """Node types written verbatim as one token (string literals whose quotes matter)."""
    special: dict[str, SpecialRule] = field(default_factory=dict)
    """Node type -> one token from (node, source, parent type); None: walk it as usual."""
    semicolon_parents: frozenset[str] | None = None
    """None: `;` is kept. Otherwise `;` is dropped except directly inside these types."""
    paren_parents: frozenset[str] | None = None
    """None: parentheses are kept. Otherwise `parenthesized_expression` is unwrapped
    except directly inside these types."""
    tuple_brackets: frozenset[str] = frozenset()
    """Where a lone trailing comma makes a 1-tuple: kept there unless another comma is."""
    docstrings: bool = False


def grammar(module: str, function: str = "language") -> Callable[[], object]:
    """A loader of a grammar wheel's language (imported on first use only)."""
    return lambda: getattr(importlib.import_module(module), function)()


_PYTHON = LangRules(
    "python",
    grammar("tree_sitter_python"),
    special={
        "string": literals.python_string,
        "concatenated_string": literals.python_concatenation,
        "integer": literals.python_number,
        "float": literals.python_number,
    },
    semicolon_parents=frozenset(),
    paren_parents=frozenset(),
    tuple_brackets=frozenset({"subscript", "tuple", "tuple_pattern"}),
    docstrings=True,
)


def _js_family(name: str, load: Callable[[], object]) -> LangRules:
    # `(a?.b).c` is not `a?.b.c`: parentheses stay where they close an optional chain or
    # delimit a callee.
    keep_parens = {"member_expression", "subscript_expression", "call_expression",
                   "new_expression", "non_null_expression", "decorator"}  # fmt: skip
    return LangRules(
        name,
        load,
        atomic=frozenset({"template_string", "template_literal_type"}),
        special={"string": literals.js_string, "jsx_text": literals.jsx_text},
        semicolon_parents=frozenset({"for_statement"}),
        paren_parents=frozenset(keep_parens),
    )


_GO = LangRules(
    "go",
    grammar("tree_sitter_go"),
    atomic=frozenset({"interpreted_string_literal", "raw_string_literal"}),
    semicolon_parents=frozenset(
        {"for_clause", "if_statement", "expression_switch_statement", "type_switch_statement"}
    ),
)
_RUST = LangRules(
    "rust",
    grammar("tree_sitter_rust"),
    atomic=frozenset({"string_literal", "raw_string_literal"}),
    tuple_brackets=frozenset({"tuple_type", "tuple_pattern", "tuple_expression", "token_tree"}),
)
_JAVA = LangRules("java", grammar("tree_sitter_java"), atomic=frozenset({"string_literal"}))

LANGUAGES: dict[str, LangRules] = {
    rules.name: rules
    for rules in (
        _PYTHON,
        _js_family("javascript", grammar("tree_sitter_javascript")),
        _js_family("typescript", grammar("tree_sitter_typescript", "language_typescript")),
        _js_family("tsx", grammar("tree_sitter_typescript", "language_tsx")),
        _GO,
        _RUST,
        _JAVA,
    )
}
EXTENSIONS = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java",
}  # fmt: skip


def language_for(path: str) -> LangRules | None:
    """The rules for a path by its extension; None for languages without a grammar here."""
    name = EXTENSIONS.get(posixpath.splitext(path)[1].lower())
    return LANGUAGES[name] if name else None


_LANG_OBJECTS: dict[str, Language] = {}
_LOCAL = threading.local()
_LOCK = threading.Lock()
_BASE_TREES: dict[tuple[str, bytes], Tree] = {}
_BASE_TREES_MAX = 256


def content_digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def clear_trees() -> None:
    """Forget the cached snapshot trees."""
    with _LOCK:
        _BASE_TREES.clear()


def _parser(rules: LangRules) -> Parser:
    parsers: dict[str, Parser] = _LOCAL.__dict__.setdefault("parsers", {})
    if (parser := parsers.get(rules.name)) is None:
        with _LOCK:
            if (language := _LANG_OBJECTS.get(rules.name)) is None:
                language = _LANG_OBJECTS[rules.name] = Language(rules.load())
        parser = parsers[rules.name] = Parser(language)
    return parser


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix, by comparing slices (memcmp) rather than bytes."""
    n, lo, step = min(len(a), len(b)), 0, 4096
    while lo + step <= n and a[lo : lo + step] == b[lo : lo + step]:
        lo += step
    hi = min(lo + step, n)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _point(src: bytes, offset: int) -> tuple[int, int]:
    return src.count(b"\n", 0, offset), offset - (src.rfind(b"\n", 0, offset) + 1)


def parse(rules: LangRules, content: bytes, base: bytes | None) -> Tree:
    """Parse `content`; from an edited copy of the base's tree when a base is given
    (tree-sitter then reuses every subtree outside the changed span: same tree, faster)."""
    parser = _parser(rules)
    if (tree := _BASE_TREES.get((rules.name, content_digest(content)))) is not None:
        return tree
    if base is None:
        return parser.parse(content)
    key = (rules.name, content_digest(base))
    if (old := _BASE_TREES.get(key)) is None:
        old = parser.parse(base)
        with _LOCK:
            if len(_BASE_TREES) >= _BASE_TREES_MAX:
                _BASE_TREES.pop(next(iter(_BASE_TREES)))  # the oldest
            _BASE_TREES[key] = old
    start = _common_prefix(base, content)
    tail = min(_common_prefix(base[::-1], content[::-1]), min(len(base), len(content)) - start)
    old_end, new_end = len(base) - tail, len(content) - tail
    edited = old.copy()
    edited.edit(
        start,
        old_end,
        new_end,
        _point(base, start),
        _point(base, old_end),
        _point(content, new_end),
    )
    return parser.parse(content, edited)
