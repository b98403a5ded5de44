"""str_replace_editor on real files: every command, every refusal, byte-exact round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from kat_lsp.agent.tools import editor as editor_module
from kat_lsp.agent.tools.editor import EditorTool
from kat_lsp.exceptions import FormatError


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src" / "pkg" / "deep").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def main():\n    return 1\n")
    (root / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "src" / "pkg" / "deep" / "hidden_by_depth.py").write_text("")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / ".env").write_text("SECRET=1\n")
    (root / "src" / ".cache").mkdir()
    (root / "README.md").write_text("hello\n")
    return root


@pytest.fixture
def editor(repo: Path) -> EditorTool:
    return EditorTool(repo)


async def edit(tool: EditorTool, **arguments: object) -> str:
    return await tool(dict(arguments))


# --- view ---------------------------------------------------------------------------


async def test_view_file_is_numbered_like_cat_n(editor: EditorTool) -> None:
    out = await edit(editor, command="view", path="src/app.py")
    assert out.endswith("     1\tdef main():\n     2\t    return 1")
    assert "src/app.py" in out.splitlines()[0]


async def test_view_range_inclusive_and_to_end(editor: EditorTool, repo: Path) -> None:
    (repo / "n.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    out = await edit(editor, command="view", path="n.txt", view_range=[3, 4])
    assert out.splitlines()[1:] == ["     3\tline 3", "     4\tline 4"]
    out = await edit(editor, command="view", path="n.txt", view_range=[9, -1])
    assert out.splitlines()[1:] == ["     9\tline 9", "    10\tline 10"]


async def test_view_range_out_of_range_names_line_count(editor: EditorTool, repo: Path) -> None:
    (repo / "n.txt").write_text("a\nb\nc\n")
    out = await edit(editor, command="view", path="n.txt", view_range=[5, 6])
    assert "Invalid view_range" in out and "has 3 lines" in out
    out = await edit(editor, command="view", path="n.txt", view_range=[3, 2])
    assert "end must be at least start" in out
    out = await edit(editor, command="view", path="n.txt", view_range=[2, 99])
    assert "     3\tc" in out and "only 3 lines" in out


async def test_view_directory_two_levels_without_hidden(editor: EditorTool) -> None:
    out = await edit(editor, command="view", path=".")
    listing = out.splitlines()[1:]
    assert listing == [
        "README.md",
        "src/",
        "src/app.py",
        "src/pkg/",
    ]
    out = await edit(editor, command="view", path="src")
    assert out.splitlines()[1:] == ["src/app.py", "src/pkg/", "src/pkg/deep/", "src/pkg/mod.py"]


async def test_view_large_file_is_clipped_with_hint(repo: Path) -> None:
    (repo / "big.txt").write_text("".join(f"row {i:05d} " + "x" * 60 + "\n" for i in range(2000)))
    tool = EditorTool(repo)
    out = await edit(tool, command="view", path="big.txt")
    assert len(out) < 17_000
    assert "row 00000" in out and "row 01999" not in out
    assert "view_range" in out and "grep -n" in out
    later = await edit(tool, command="view", path="big.txt", view_range=[1990, -1])
    assert "  2000\trow 01999" in later


async def test_view_binary_file_says_so(editor: EditorTool, repo: Path) -> None:
    (repo / "blob.bin").write_bytes(b"\x89PNG\x00\x01\x02")
    out = await edit(editor, command="view", path="blob.bin")
    assert "binary" in out and "\x00" not in out


async def test_view_missing_file(editor: EditorTool) -> None:
    out = await edit(editor, command="view", path="nope.py")
    assert "nope.py does not exist" in out


# --- create -------------------------------------------------------------------------


async def test_create_writes_exact_text(editor: EditorTool, repo: Path) -> None:
    out = await edit(editor, command="create", path="src/new.py", file_text="a\r\n\tb")
    assert "File created: src/new.py" in out
    assert (repo / "src" / "new.py").read_bytes() == b"a\r\n\tb"


async def test_create_refuses_to_overwrite(editor: EditorTool, repo: Path) -> None:
    out = await edit(editor, command="create", path="README.md", file_text="gone")
    assert "already exists" in out and "str_replace" in out
    assert (repo / "README.md").read_text() == "hello\n"


async def test_create_with_missing_folder_says_mkdir(editor: EditorTool, repo: Path) -> None:
    out = await edit(editor, command="create", path="new/dir/f.py", file_text="x\n")
    assert "mkdir -p new/dir" in out
    assert not (repo / "new").exists()


# --- str_replace --------------------------------------------------------------------


async def test_str_replace_edits_and_shows_snippet(editor: EditorTool, repo: Path) -> None:
    out = await edit(
        editor, command="str_replace", path="src/app.py", old_str="return 1", new_str="return 2"
    )
    assert (repo / "src" / "app.py").read_text() == "def main():\n    return 2\n"
    assert "     2\t    return 2" in out and "Review" in out


async def test_str_replace_multiline_and_deletion(editor: EditorTool, repo: Path) -> None:
    path = repo / "m.py"
    path.write_text("a = 1\nb = 2\nc = 3\nd = 4\n")
    await edit(
        editor, command="str_replace", path="m.py", old_str="b = 2\nc = 3\n", new_str="bc = 23\n"
    )
    assert path.read_text() == "a = 1\nbc = 23\nd = 4\n"
    await edit(editor, command="str_replace", path="m.py", old_str="bc = 23\n")
    assert path.read_text() == "a = 1\nd = 4\n"


async def test_str_replace_not_found_hints_whitespace(editor: EditorTool, repo: Path) -> None:
    (repo / "t.py").write_text("def f():\n\tif x:\n\t\treturn 1\n")
    out = await edit(
        editor, command="str_replace", path="t.py", old_str="    if x:\n        return 1"
    )
    assert "does not occur verbatim" in out
    assert "lines 2-3" in out
    out = await edit(editor, command="str_replace", path="t.py", old_str="return 42")
    assert "does not occur verbatim" in out and "whitespace" not in out
    assert (repo / "t.py").read_text() == "def f():\n\tif x:\n\t\treturn 1\n"


async def test_str_replace_ambiguous_names_lines(editor: EditorTool, repo: Path) -> None:
    (repo / "d.py").write_text("x = 0\ny = 1\nx = 0\ny = 1\nz\nx = 0\n")
    out = await edit(editor, command="str_replace", path="d.py", old_str="x = 0", new_str="x = 9")
    assert "3 times" in out and "lines 1, 3, 6" in out
    out = await edit(editor, command="str_replace", path="d.py", old_str="0\ny = 1", new_str="")
    assert "2 times" in out and "lines 1, 3" in out
    assert (repo / "d.py").read_text() == "x = 0\ny = 1\nx = 0\ny = 1\nz\nx = 0\n"


# --- insert -------------------------------------------------------------------------


async def test_insert_at_top_and_at_end(editor: EditorTool, repo: Path) -> None:
    path = repo / "i.txt"
    path.write_text("one\ntwo\n")
    out = await edit(editor, command="insert", path="i.txt", insert_line=0, new_str="zero")
    assert path.read_text() == "zero\none\ntwo\n"
    assert "     1\tzero" in out
    await edit(editor, command="insert", path="i.txt", insert_line=3, new_str="three\nfour\n")
    assert path.read_text() == "zero\none\ntwo\nthree\nfour\n"


async def test_insert_out_of_range_names_valid_range(editor: EditorTool, repo: Path) -> None:
    (repo / "i.txt").write_text("one\ntwo\n")
    out = await edit(editor, command="insert", path="i.txt", insert_line=3, new_str="x")
    assert "between 0" in out and "and 2" in out
    assert (repo / "i.txt").read_text() == "one\ntwo\n"


# --- undo_edit ----------------------------------------------------------------------


async def test_undo_create_removes_file(editor: EditorTool, repo: Path) -> None:
    await edit(editor, command="create", path="made.py", file_text="x\n")
    out = await edit(editor, command="undo_edit", path="made.py")
    assert "removed" in out
    assert not (repo / "made.py").exists()


async def test_undo_twice_goes_back_two_edits(editor: EditorTool, repo: Path) -> None:
    path = repo / "src" / "app.py"
    original = path.read_bytes()
    await edit(editor, command="str_replace", path="src/app.py", old_str="1", new_str="2")
    after_first = path.read_bytes()
    await edit(editor, command="insert", path="src/app.py", insert_line=2, new_str="# end")
    out = await edit(editor, command="undo_edit", path="src/app.py")
    assert path.read_bytes() == after_first
    assert "1 earlier edit(s)" in out
    await edit(editor, command="undo_edit", path="src/app.py")
    assert path.read_bytes() == original
    out = await edit(editor, command="undo_edit", path="src/app.py")
    assert "Nothing to undo" in out and path.read_bytes() == original


async def test_undo_without_history(editor: EditorTool) -> None:
    out = await edit(editor, command="undo_edit", path="README.md")
    assert "Nothing to undo for README.md" in out


# --- paths --------------------------------------------------------------------------


async def test_path_escapes_are_refused(editor: EditorTool, repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    (repo / "link.txt").symlink_to(outside)
    (repo / "linkdir").symlink_to(tmp_path)
    for path in ("../outside.txt", str(outside), "link.txt", "linkdir/outside.txt"):
        out = await edit(editor, command="view", path=path)
        assert out.startswith("Refused") and "secret" not in out, path
        out = await edit(editor, command="str_replace", path=path, old_str="secret", new_str="x")
        assert out.startswith("Refused"), path
    assert "symbolic link" in await edit(editor, command="view", path="link.txt")
    assert outside.read_text() == "secret\n"


async def test_link_inside_the_repo_is_refused_naming_the_real_path(
    editor: EditorTool, repo: Path
) -> None:
    """Links are never followed, even inside: the model is told the path to use."""
    (repo / "docs").symlink_to("src")
    (repo / "src" / "main.py").symlink_to("app.py")
    out = await edit(editor, command="view", path="docs/pkg/mod.py")
    assert out == (
        "Refused: docs is a symbolic link (to src); the editor does not follow symbolic "
        "links. Use the path it points to instead: src/pkg/mod.py"
    )
    out = await edit(editor, command="str_replace", path="src/main.py", old_str="1", new_str="2")
    assert out.endswith("Use the path it points to instead: src/app.py")
    assert (repo / "src" / "app.py").read_text() == "def main():\n    return 1\n"
    out = await edit(editor, command="view", path="src/app.py")
    assert "return 1" in out


async def test_listing_marks_links_without_following_them(editor: EditorTool, repo: Path) -> None:
    (repo / "src" / "pkg2").symlink_to("pkg")
    out = await edit(editor, command="view", path="src")
    assert out.splitlines()[1:] == [
        "src/app.py",
        "src/pkg/",
        "src/pkg/deep/",
        "src/pkg/mod.py",
        "src/pkg2@",
        "(name@ is a symbolic link: the editor does not follow links, use the real path.)",
    ]


async def test_file_over_the_read_limit_is_refused_with_a_bash_hint(repo: Path) -> None:
    (repo / "big.log").write_text("x" * 3000)
    tool = EditorTool(repo, read_limit=2048)
    for command in ("view", "str_replace", "insert"):
        out = await edit(tool, command=command, path="big.log", old_str="x", insert_line=0,
                         new_str="y")  # fmt: skip
        assert "more than the 0.00195312 MB the editor reads" in out and "grep -n" in out
    assert (repo / "big.log").read_text() == "x" * 3000


async def test_edits_keep_the_file_mode(editor: EditorTool, repo: Path) -> None:
    script = repo / "run.sh"
    script.write_text("echo one\n")
    script.chmod(0o755)
    await edit(editor, command="str_replace", path="run.sh", old_str="one", new_str="two")
    await edit(editor, command="undo_edit", path="run.sh")
    assert script.read_text() == "echo one\n" and script.stat().st_mode & 0o777 == 0o755


async def test_undo_history_is_bounded(
    editor: EditorTool, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(editor_module, "HISTORY_LIMIT", 100)
    (repo / "h.txt").write_text("a" * 60)
    await edit(editor, command="str_replace", path="h.txt", old_str="a" * 60, new_str="b" * 60)
    await edit(editor, command="str_replace", path="h.txt", old_str="b" * 60, new_str="c" * 60)
    assert "0 earlier edit(s)" in await edit(editor, command="undo_edit", path="h.txt")
    assert (repo / "h.txt").read_text() == "b" * 60
    assert "Nothing to undo" in await edit(editor, command="undo_edit", path="h.txt")


async def test_nul_in_path_is_refused(editor: EditorTool) -> None:
    out = await edit(editor, command="view", path="src\0app.py")
    assert "NUL character" in out


async def test_absolute_path_inside_root_works(editor: EditorTool, repo: Path) -> None:
    out = await edit(editor, command="view", path=str(repo / "README.md"))
    assert "     1\thello" in out


async def test_git_metadata_cannot_be_written(editor: EditorTool, repo: Path) -> None:
    out = await edit(editor, command="create", path=".git/hooks-evil", file_text="x")
    assert "inside .git" in out and not (repo / ".git" / "hooks-evil").exists()
    out = await edit(editor, command="str_replace", path=".git/config", old_str="core", new_str="x")
    assert "inside .git" in out and (repo / ".git" / "config").read_text() == "[core]\n"


# --- byte-exact round trips ---------------------------------------------------------


async def test_tabs_crlf_and_missing_final_newline_survive(editor: EditorTool, repo: Path) -> None:
    path = repo / "w.c"
    path.write_bytes(b"int f() {\r\n\tint a = 1;\r\n\treturn a;\r\n}")
    await edit(
        editor,
        command="str_replace",
        path="w.c",
        old_str="\tint a = 1;\n",
        new_str="\tint a = 2;\n",
    )
    assert path.read_bytes() == b"int f() {\r\n\tint a = 2;\r\n\treturn a;\r\n}"
    await edit(editor, command="insert", path="w.c", insert_line=4, new_str="// end")
    assert path.read_bytes() == b"int f() {\r\n\tint a = 2;\r\n\treturn a;\r\n}\r\n// end"
    await edit(editor, command="insert", path="w.c", insert_line=1, new_str="\t/* a */\n")
    assert (
        path.read_bytes() == b"int f() {\r\n\t/* a */\r\n\tint a = 2;\r\n\treturn a;\r\n}\r\n// end"
    )


async def test_undecodable_bytes_survive_an_edit(editor: EditorTool, repo: Path) -> None:
    path = repo / "latin1.txt"
    path.write_bytes(b"caf\xe9\nname = old\n")
    await edit(editor, command="str_replace", path="latin1.txt", old_str="old", new_str="new")
    assert path.read_bytes() == b"caf\xe9\nname = new\n"


# --- arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"path": "a.py"}, "`command` is missing"),
        ({"command": "delete", "path": "a.py"}, "must be one of view, create"),
        ({"command": "insert", "path": "a.py", "insert_line": "3", "new_str": "x"}, "integer"),
        ({"command": "view", "path": "a.py", "view_range": [1]}, "2 items"),
        ({"command": "view", "path": "a.py", "lines": [1, 2]}, "unknown parameter(s) lines"),
    ],
)
async def test_arguments_outside_the_schema_are_format_errors(
    editor: EditorTool, arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(FormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        await editor(arguments)


async def test_missing_parameter_for_a_command_is_an_observation(editor: EditorTool) -> None:
    out = await edit(editor, command="create", path="x.py")
    assert "`file_text` is required" in out
