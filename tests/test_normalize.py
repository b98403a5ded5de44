"""Per-language normal forms: formatting-only variants are equal, real changes are not."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kat_lsp.pipeline.normalize import clear_caches, form_digest, normal_form

# (file name, a, b): a and b differ only in formatting and must share a normal form.
SAME = [
    # --- Python ---
    ("reformat", "m.py", "def f(a,b):\n    return a+b*2\n", "def f( a, b ):\n  return a + b * 2\n"),
    (
        "rewrap-args",
        "m.py",
        "result = compute(alpha, beta, gamma, delta)\n",
        "result = compute(\n    alpha,\n    beta,\n    gamma,\n    delta,\n)\n",
    ),
    ("indent-in-brackets", "m.py", "x = [1, 2,\n        3]\n", "x = [\n  1,\n  2,\n  3\n]\n"),
    ("comments", "m.py", "x = 1\ny = x\n", "# set up\nx = 1  # one\n\n\ny = x  # copy\n"),
    ("quotes", "m.py", "s = 'a' + 'it\\'s'\n", 's = "a" + "it\'s"\n'),
    ("triple-quotes", "m.py", "s = '''a\nb'''\n", 's = "a\\nb"\n'),
    ("unicode-prefix", "m.py", "s = u'x'\n", 's = "x"\n'),
    ("raw-same-value", "m.py", "p = r'\\d+'\n", "p = '\\\\d+'\n"),
    ("implicit-concat", "m.py", "s = 'ab'\n", 's = (\n    "a"\n    "b"\n)\n'),
    ("trailing-comma", "m.py", "f(a, b)\nx = {1: 2}\n", "f(a, b,)\nx = {1: 2,}\n"),
    (
        "docstrings",
        "m.py",
        '"""Module."""\nclass A:\n    """A."""\n    def f(self):\n        """Do."""\n        return 1\n',
        "class A:\n    def f(self):\n        '''Does it, differently.'''\n        return 1\n",
    ),
    ("blank-lines", "m.py", "a = 1\nb = 2\n", "\n\na = 1\n\n\n\nb = 2\n\n"),
    ("redundant-parens", "m.py", "if x:\n    return y\n", "if (x):\n    return (\n        y\n    )\n"),
    ("semicolons", "m.py", "a = 1\nb = 2\n", "a = 1; b = 2;\n"),
    ("line-continuation", "m.py", "x = a + b\n", "x = a + \\\n    b\n"),
    ("number-spelling", "m.py", "n = 255 + 1000\n", "n = 0xFF + 1_000\n"),
    # --- JavaScript ---
    ("reformat", "m.js", "function f(a,b){return a+b}", "function f(a, b) {\n  return a + b;\n}\n"),
    ("asi", "m.js", "let a = 1\nlet b = a\n", "let a = 1;\nlet b = a;\n"),
    ("quotes", "m.js", "const s = 'a' + 'it\\'s'", 'const s = "a" + "it\'s";'),
    ("escapes", "m.js", 'const s = "\\x41\\u0042\\u{43}"', "const s = 'ABC'"),
    ("trailing-comma", "m.js", "f(a, b); const o = {a: 1}; const l = [1]", "f(a, b,); const o = {a: 1,}; const l = [1,]"),
    ("comments", "m.js", "x = 1", "/* head */ x = 1 // tail"),
    ("rewrap-args", "m.js", "call(alpha, beta, gamma)", "call(\n  alpha,\n  beta,\n  gamma,\n)"),
    ("jsx-parens", "m.jsx", "function A() { return <div>hi</div> }", "function A() {\n  return (\n    <div>\n      hi\n    </div>\n  );\n}\n"),
    ("jsx-attr-quotes", "m.jsx", "x = <a id='q' />", 'x = <a id="q" />'),
    ("redundant-parens", "m.js", "const x = a + b", "const x = (a + b)"),
    # --- TypeScript ---
    ("reformat", "m.ts", "function f(a:number,b:string):void{g(a,b)}", "function f(a: number, b: string): void {\n  g(a, b);\n}\n"),
    ("literal-types", "m.ts", "type T = 'a' | 'b'", 'type T = "a" | "b";'),
    ("interface-layout", "m.ts", "interface I { a: string; b: number }", "interface I {\n  a: string;\n  b: number;\n}\n"),
    ("trailing-comma", "m.ts", "const t: [number, string] = [1, 'x']", "const t: [number, string,] = [1, 'x',];"),
    ("tsx", "m.tsx", "const e = <A b='x'>{y}</A>", 'const e = (\n  <A b="x">\n    {y}\n  </A>\n);'),
    # --- Go ---
    ("gofmt", "m.go", "package m\nfunc f(a int,b int) int {return a+b}\n", "package m\n\nfunc f(a int, b int) int {\n\treturn a + b\n}\n"),
    ("semicolons", "m.go", "package m\nfunc f() { a := 1; b := a; _ = b }\n", "package m\nfunc f() {\n\ta := 1\n\tb := a\n\t_ = b\n}\n"),
    ("rewrap-args", "m.go", "package m\nfunc f() { g(alpha, beta) }\n", "package m\nfunc f() {\n\tg(\n\t\talpha,\n\t\tbeta,\n\t)\n}\n"),
    ("comments", "m.go", "package m\nvar x = 1\n", "// Package m.\npackage m\n\n// x is one.\nvar x = 1 /* really */\n"),
    ("composite", "m.go", "package m\nvar x = []int{1, 2}\n", "package m\nvar x = []int{\n\t1,\n\t2,\n}\n"),
    # --- Rust ---
    ("rustfmt", "m.rs", "fn f(a:i32,b:i32)->i32{a+b}", "fn f(a: i32, b: i32) -> i32 {\n    a + b\n}\n"),
    ("trailing-comma", "m.rs", "fn f() { g(a, b); let p = P { x: 1 }; }", "fn f() {\n    g(\n        a,\n        b,\n    );\n    let p = P { x: 1, };\n}"),
    ("doc-comments", "m.rs", "fn f() {}", "/// Does nothing.\n// plain\nfn f() { /* inside */ }"),
    ("macro-comma", "m.rs", "fn f() { let v = vec![1, 2]; println!(\"{}\", v.len()); }", "fn f() { let v = vec![1, 2,]; println!(\"{}\", v.len(),); }"),
    # --- Java ---
    ("reformat", "M.java", "class M{int f(int a){return a+1;}}", "class M {\n    int f(int a) {\n        return a + 1;\n    }\n}\n"),
    ("javadoc", "M.java", "class M { void f() {} }", "/** M. */\nclass M {\n    /** Does nothing. */\n    void f() { // nothing\n    }\n}\n"),
    ("array-init", "M.java", "class M { int[] x = {1, 2}; }", "class M {\n    int[] x = {\n        1,\n        2,\n    };\n}\n"),
    ("rewrap-args", "M.java", "class M { void f() { g(alpha, beta); } }", "class M {\n    void f() {\n        g(\n            alpha,\n            beta);\n    }\n}\n"),
]  # fmt: skip

# (file name, a, b): a real difference in behaviour; the forms must differ.
DIFFERENT = [
    # --- Python ---
    ("compare", "m.py", "if a < b:\n    pass\n", "if a <= b:\n    pass\n"),
    ("plus-minus", "m.py", "x = n + 1\n", "x = n - 1\n"),
    ("constant", "m.py", "x = 1\n", "x = 2\n"),
    ("identifier", "m.py", "x = a\n", "x = b\n"),
    ("string-content", "m.py", "s = 'a'\n", "s = 'b'\n"),
    ("string-whitespace", "m.py", "s = 'a b'\n", "s = 'a  b'\n"),
    ("dedent", "m.py", "if x:\n    a()\n    b()\n", "if x:\n    a()\nb()\n"),
    ("bytes-vs-str", "m.py", "s = b'a'\n", "s = 'a'\n"),
    ("fstring-vs-str", "m.py", "s = f'{x}'\n", "s = '{x}'\n"),
    ("raw-escape", "m.py", "s = r'\\n'\n", "s = '\\n'\n"),
    ("one-tuple", "m.py", "x = (a,)\n", "x = (a)\n"),
    ("tuple-index", "m.py", "x = a[1,]\n", "x = a[1]\n"),
    ("not-a-docstring", "m.py", "def f():\n    x = 1\n    'a'\n", "def f():\n    x = 1\n    'b'\n"),
    ("string-in-if", "m.py", "if x:\n    'a'\n", "if x:\n    'b'\n"),
    ("int-vs-float", "m.py", "x = 1\n", "x = 1.0\n"),
    ("precedence", "m.py", "x = (a + b) * c\n", "x = a + b * c\n"),
    # --- JavaScript ---
    ("compare", "m.js", "if (a < b) f()", "if (a <= b) f()"),
    ("equality", "m.js", "if (a == b) f()", "if (a === b) f()"),
    ("template-vs-string", "m.js", "const s = `a`", "const s = 'a'"),
    ("optional-chain-parens", "m.js", "x = (a?.b).c", "x = a?.b.c"),
    ("array-holes", "m.js", "x = [1,,]", "x = [1,]"),
    ("string-content", "m.js", "x = 'a'", "x = 'b'"),
    ("for-header", "m.js", "for (let i = 0; i < n;) {}", "for (let i = 0;; i < n) {}"),
    ("asi-hazard", "m.js", "a = b\n(c)", "a = b;\n(c)"),
    # --- TypeScript ---
    ("type", "m.ts", "let x: number = 1", "let x: string = 1"),
    ("optional", "m.ts", "interface I { a: string }", "interface I { a?: string }"),
    ("literal-type", "m.ts", "type T = 'a'", "type T = 'b'"),
    # --- Go ---
    ("rune-vs-string", "m.go", "package m\nvar x = 'a'\n", 'package m\nvar x = "a"\n'),
    ("raw-vs-interpreted", "m.go", "package m\nvar x = `a`\n", 'package m\nvar x = "a"\n'),
    ("compare", "m.go", "package m\nfunc f() { for i := 0; i < n; i++ {} }\n", "package m\nfunc f() { for i := 0; i <= n; i++ {} }\n"),
    ("inc-dec", "m.go", "package m\nfunc f() { i++ }\n", "package m\nfunc f() { i-- }\n"),
    # --- Rust ---
    ("char-vs-str", "m.rs", "fn f() { let c = 'a'; }", 'fn f() { let c = "a"; }'),
    ("tail-semicolon", "m.rs", "fn f() -> i32 { x }", "fn f() -> i32 { x; }"),
    ("one-tuple-type", "m.rs", "fn f(x: (i32,)) {}", "fn f(x: (i32)) {}"),
    ("one-tuple-pattern", "m.rs", "fn f() { let (a,) = b; }", "fn f() { let (a) = b; }"),
    ("macro-tuple", "m.rs", "fn f() { m!((a,)); }", "fn f() { m!((a)); }"),
    ("compare", "m.rs", "fn f() -> bool { a < b }", "fn f() -> bool { a <= b }"),
    # --- Java ---
    ("char-vs-string", "M.java", "class M { Object c = 'a'; }", 'class M { Object c = "a"; }'),
    ("compare", "M.java", "class M { boolean f() { return a < b; } }", "class M { boolean f() { return a <= b; } }"),
    ("constant", "M.java", "class M { int x = 1; }", "class M { int x = 2; }"),
    ("string-whitespace", "M.java", 'class M { String s = "a b"; }', 'class M { String s = "a  b"; }'),
]  # fmt: skip


@pytest.mark.parametrize(("case", "path", "a", "b"), SAME, ids=[f"{c[1]}-{c[0]}" for c in SAME])
def test_formatting_variants_share_a_normal_form(case: str, path: str, a: str, b: str) -> None:
    form_a, form_b = normal_form(path, a.encode()), normal_form(path, b.encode())
    assert form_a.startswith("tree "), f"{case}: {path} did not parse:\n{form_a}"
    assert form_a == form_b


@pytest.mark.parametrize(
    ("case", "path", "a", "b"), DIFFERENT, ids=[f"{c[1]}-{c[0]}" for c in DIFFERENT]
)
def test_real_changes_keep_distinct_normal_forms(case: str, path: str, a: str, b: str) -> None:
    form_a, form_b = normal_form(path, a.encode()), normal_form(path, b.encode())
    assert form_a.startswith("tree ") and form_b.startswith("tree "), f"{case}: did not parse"
    assert form_a != form_b


def test_language_is_chosen_by_extension() -> None:
    py = "def f(a,b):\n    return a+b\n"
    assert normal_form("x.py", py.encode()).splitlines()[0] == "tree python"
    assert normal_form("x.pyi", py.encode()).splitlines()[0] == "tree python"
    assert normal_form("X.TS", b"let x = 1").splitlines()[0] == "tree typescript"
    assert normal_form("x.tsx", b"let x = <a/>").splitlines()[0] == "tree tsx"
    assert normal_form("notes.txt", py.encode()).splitlines()[0] == "text"


def test_syntax_error_falls_back_to_whitespace_comparison() -> None:
    broken = b"def f(:\n    return  1\n"
    assert normal_form("m.py", broken).splitlines()[0] == "text"
    assert normal_form("m.py", broken) == normal_form("m.py", b"def f(:   \n\n    return 1\n")
    # a comment is not recognised without a parse: it counts
    assert normal_form("m.py", broken) != normal_form("m.py", b"def f(:\n    return 1  # x\n")
    # indentation may be meaningful in an unknown language: it counts
    assert normal_form("m.py", broken) != normal_form("m.py", b"def f(:\n  return 1\n")


def test_binary_content_compares_by_exact_bytes() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00"
    assert normal_form("a.png", png) == normal_form("b.bin", png)
    assert normal_form("a.png", png) != normal_form("a.png", png + b" ")
    assert normal_form("m.py", b"x = '\xff'\n").startswith("binary ")


def test_python_docstring_only_dropped_in_docstring_position() -> None:
    # A string that starts a function body is its docstring; one that starts an `if`
    # body is an expression whose change is (in principle) observable.
    def_a = normal_form("m.py", b"def f():\n    'a'\n    return 1\n")
    def_b = normal_form("m.py", b"def f():\n    'b'\n    return 1\n")
    assert def_a == def_b
    if_a = normal_form("m.py", b"if x:\n    'a'\n    y = 1\n")
    assert if_a != normal_form("m.py", b"if x:\n    'b'\n    y = 1\n")


def test_memoised_subtrees_keep_their_context() -> None:
    # The same large block text under `def` (docstring dropped) and under `if` (kept):
    # the memo of one must not answer for the other.
    body = "".join(f"    value_{i} = compute_{i}(argument_{i})\n" for i in range(12))
    under_def = f"def f():\n    'doc one'\n{body}"
    normal_form("m.py", under_def.encode())
    if_a = normal_form("m.py", f"if x:\n    'doc one'\n{body}".encode())
    if_b = normal_form("m.py", f"if x:\n    'doc two'\n{body}".encode())
    assert if_a != if_b
    assert normal_form("m.py", f"def f():\n    'doc two'\n{body}".encode()) == normal_form(
        "m.py", under_def.encode()
    )


# --- properties: random formatting never changes the form, a changed constant always does

NAMES = ("alpha", "beta", "gamma", "total")
OPS = ("+", "-", "*", "<")


def _exprs() -> st.SearchStrategy[tuple]:
    leaves = st.one_of(
        st.tuples(st.just("name"), st.sampled_from(NAMES)),
        st.tuples(st.just("int"), st.integers(0, 99)),
        st.tuples(st.just("str"), st.text("abc xyz_", max_size=6)),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.tuples(st.just("bin"), st.sampled_from(OPS), inner, inner),
            st.tuples(st.just("call"), st.sampled_from(NAMES), st.lists(inner, max_size=3)),
        ),
        max_leaves=6,
    )


def _statements(depth: int = 0) -> st.SearchStrategy[list[tuple]]:
    simple = st.one_of(
        st.tuples(st.just("assign"), st.sampled_from(NAMES), _exprs()),
        st.tuples(st.just("return"), _exprs()),
    )
    if depth < 2:
        block = st.tuples(st.just("if"), _exprs(), st.deferred(lambda: _statements(depth + 1)))
        simple = st.one_of(simple, block)
    return st.lists(simple, min_size=1, max_size=4)


class Style:
    """Formatting decisions: canonical (fixed) or drawn at random."""

    def __init__(self, draw: Callable[[st.SearchStrategy[str]], str] | None = None) -> None:
        self.draw = draw
        self.unit = draw(st.sampled_from(["  ", "    ", "\t", " "])) if draw else "    "

    def pick(self, canonical: str, *others: str) -> str:
        return self.draw(st.sampled_from((canonical, *others))) if self.draw else canonical


def _render_expr(e: tuple, s: Style, indent: str) -> str:
    kind = e[0]
    if kind == "name":
        return e[1]
    if kind == "int":
        return s.pick(str(e[1]), f"{e[1]:_}", hex(e[1]))
    if kind == "str":
        return s.pick(repr(e[1]), '"' + e[1] + '"', "'''" + e[1] + "'''")
    if kind == "bin":
        gap = s.pick(" ", "", "  ")
        left, right = _render_expr(e[2], s, indent), _render_expr(e[3], s, indent)
        return f"({left}{gap}{e[1]}{gap}{right})"
    args = [_render_expr(a, s, indent) for a in e[2]]
    if s.pick("inline", "wrapped") == "wrapped" and args:
        inner = indent + s.pick("    ", "  ", "        ")
        comma = s.pick("", ",")
        lines = [f"{inner}{a}," + s.pick("", "  # arg") for a in args[:-1]]
        lines.append(f"{inner}{args[-1]}{comma}")
        return f"{e[1]}(\n" + "\n".join(lines) + f"\n{indent})"
    return f"{e[1]}(" + s.pick(", ", ",", " , ").join(args) + s.pick("", ",") * bool(args) + ")"


def _render(stmts: list[tuple], s: Style, indent: str = "") -> str:
    out = []
    for stmt in stmts:
        out.append(s.pick("", "\n", f"{indent}# a comment\n"))
        tail = s.pick("", "  # why", ";")
        if stmt[0] == "assign":
            eq = s.pick(" = ", "=", "  =  ")
            out.append(f"{indent}{stmt[1]}{eq}{_render_expr(stmt[2], s, indent)}{tail}\n")
        elif stmt[0] == "return":
            out.append(f"{indent}return {_render_expr(stmt[1], s, indent)}{tail}\n")
        else:
            cond = _render_expr(stmt[1], s, indent)
            out.append(f"{indent}if {s.pick(cond, f'({cond})')}:" + s.pick("", "  # branch") + "\n")
            out.append(_render(stmt[2], s, indent + s.unit))
    return "".join(out)


def _program(stmts: list[tuple], s: Style) -> bytes:
    body = _render(stmts, s, s.unit)
    doc = s.pick("", f'{s.unit}"""Docstring."""\n', f"{s.unit}'Other docstring.'\n")
    return f"def main(alpha, beta):\n{doc}{body}".encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stmts=_statements(), data=st.data())
def test_random_formatting_keeps_the_normal_form(stmts: list[tuple], data: st.DataObject) -> None:
    canonical = _program(stmts, Style())
    noisy = _program(stmts, Style(data.draw))
    form = normal_form("m.py", canonical)
    assert form.startswith("tree python"), canonical.decode()
    assert normal_form("m.py", noisy) == form, noisy.decode()


def _bump_constant(stmts: list[tuple], target: int) -> tuple[list[tuple], int]:
    """Copy of stmts with the target-th integer literal increased by one."""
    count = 0

    def expr(e: tuple) -> tuple:
        nonlocal count
        if e[0] == "int":
            count += 1
            return ("int", e[1] + 1) if count - 1 == target else e
        if e[0] == "bin":
            return ("bin", e[1], expr(e[2]), expr(e[3]))
        if e[0] == "call":
            return ("call", e[1], [expr(a) for a in e[2]])
        return e

    def stmt(s: tuple) -> tuple:
        if s[0] == "assign":
            return ("assign", s[1], expr(s[2]))
        if s[0] == "return":
            return ("return", expr(s[1]))
        return ("if", expr(s[1]), [stmt(x) for x in s[2]])

    return [stmt(s) for s in stmts], count


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stmts=_statements(), target=st.integers(0, 5), data=st.data())
def test_a_changed_constant_always_changes_the_form(
    stmts: list[tuple], target: int, data: st.DataObject
) -> None:
    stmts = [*stmts, ("assign", "total", ("int", 7))]
    _, count = _bump_constant(stmts, 0)
    changed, _ = _bump_constant(stmts, target % count)
    before = normal_form("m.py", _program(stmts, Style(data.draw)))
    after = normal_form("m.py", _program(changed, Style(data.draw)))
    assert before != after


# --- incremental reparsing from the snapshot's tree gives exactly the fresh result

BASES = {
    "m.py": "import os\n\n\nclass A:\n    def f(self, x):\n        if x < 1:\n            return os.sep\n        return [x, 2]\n\n\ndef g(y):\n    return A().f(y)\n",
    "m.ts": "export function f(x: number): string {\n  if (x < 1) {\n    return 'a';\n  }\n  return `b${x}`;\n}\nconst o = { a: 1, b: [2, 3] };\n",
    "m.go": "package m\n\nimport \"fmt\"\n\nfunc f(x int) string {\n\tif x < 1 {\n\t\treturn \"a\"\n\t}\n\treturn fmt.Sprint(x)\n}\n",
    "m.rs": "fn f(x: i32) -> String {\n    if x < 1 {\n        return \"a\".into();\n    }\n    format!(\"{}\", x)\n}\n",
    "M.java": "class M {\n    String f(int x) {\n        if (x < 1) {\n            return \"a\";\n        }\n        return String.valueOf(x);\n    }\n}\n",
}  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(sorted(BASES)),
    start=st.integers(0, 400),
    length=st.integers(0, 12),
    insert=st.one_of(
        st.text(" \n\t#/*x1(),;:{}'\"", max_size=6),
        st.sampled_from(["    return 0\n", "\n", "  // c\n", "x", "1", ", ", "# c\n"]),
    ),
)
def test_incremental_parse_matches_a_fresh_parse(
    path: str, start: int, length: int, insert: str
) -> None:
    base = BASES[path].encode()
    start = min(start, len(base))
    edited = base[:start] + insert.encode() + base[start + length :]
    clear_caches()
    fresh = form_digest(path, edited)
    clear_caches()
    form_digest(path, base)
    assert form_digest(path, edited, base) == fresh


def test_an_fstring_statement_is_not_a_docstring() -> None:
    # f"{x()}" runs x(): removing it changes behaviour, so it is compared like code.
    with_call = normal_form("m.py", b'def f():\n    f"{audit()}"\n    return 1\n')
    assert with_call != normal_form("m.py", b"def f():\n    return 1\n")
