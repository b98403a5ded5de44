"""The server's own diff applier (kat_lsp.server.edits) and the WorkspaceEdits built from it:
edits against the text the editor has now must give exactly what `git apply` gives."""

from __future__ import annotations

import difflib
import subprocess
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lsprotocol import types

from kat_lsp.server.edits import PatchConflict, compute_changes, split_lines
from kat_lsp.server.ondisk import apply_on_disk
from kat_lsp.server.wsedit import EditSupport, build_workspace_edit, text_edits
from tests.lsp.editor import apply_text_edits


def git_diff(tmp_path: Path, files: dict[str, tuple[str | None, str | None]]) -> str:
    """The patch `git diff` makes for (old, new) texts per path (None: absent)."""
    repo = tmp_path / "diffrepo"
    repo.mkdir(exist_ok=True)
    run = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    for name, (old, _) in files.items():
        if old is not None:
            (repo / name).write_bytes(old.encode())
    run("add", "-A")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base", "--allow-empty")
    for name, (_, new) in files.items():
        if new is None:
            (repo / name).unlink()
        else:
            (repo / name).write_bytes(new.encode())
    run("add", "-A")
    return subprocess.run(
        ["git", "-C", str(repo), "diff", "--cached", "--no-renames"],
        check=True,
        capture_output=True,
    ).stdout.decode()


def apply_all(patch: str, texts: dict[str, str]) -> dict[str, str]:
    """Apply via compute_changes + the LSP text edits, as a client would."""
    result = dict(texts)
    for change in compute_changes(patch, texts.get):
        if change.kind == "delete":
            del result[change.path]
        else:
            result[change.path] = apply_text_edits(
                texts.get(change.path, ""), text_edits(change, "utf-16")
            )
    return result


def test_split_lines_splits_on_newlines_only() -> None:
    assert split_lines("a\r\nb\x0cc\nlast") == ["a\r\n", "b\x0cc\n", "last"]
    assert split_lines("") == [] and split_lines("x\n") == ["x\n"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("a\nb\nc", "a\nB\nc"),  # no newline at the end, kept
        ("a\nb\nc", "a\nb\nc\n"),  # the final newline added
        ("a\nb\nc\n", "a\nb\nc"),  # and removed
        ("x\r\ny\r\nz\r\n", "x\r\nY\r\nz\r\n"),  # CRLF kept
        ("\tindent\n\x0cform feed\n", "\tindent\n\x0cform feed\nmore\n"),
        ("é😀 line\nb\n", "é😀 line\nB\n"),
    ],
)
def test_edits_give_what_git_gives(tmp_path: Path, old: str, new: str) -> None:
    patch = git_diff(tmp_path, {"f.txt": (old, new)})
    assert apply_all(patch, {"f.txt": old}) == {"f.txt": new}


def test_hunks_are_found_at_an_offset_when_lines_were_added_above(tmp_path: Path) -> None:
    old = "".join(f"line {i}\n" for i in range(40))
    new = old.replace("line 5\n", "line five\n").replace("line 30\n", "line thirty\n")
    patch = git_diff(tmp_path, {"f.py": (old, new)})
    header = "# a header the user typed since the snapshot\n" * 3
    [change] = compute_changes(patch, {"f.py": header + old}.get)
    assert change.new_text == header + new
    assert [(e.start, e.end) for e in change.edits] == [(8, 9), (33, 34)], (
        "one edit per changed line"
    )


def test_a_hunk_whose_context_changed_is_a_conflict_naming_file_and_line(tmp_path: Path) -> None:
    old = "".join(f"line {i}\n" for i in range(20))
    patch = git_diff(tmp_path, {"f.py": (old, old.replace("line 10\n", "line ten\n"))})
    with pytest.raises(PatchConflict) as conflict:
        compute_changes(patch, {"f.py": old.replace("line 9\n", "line nine\n")}.get)
    assert str(conflict.value).startswith("f.py: the hunk at line 8 no longer matches")
    with pytest.raises(PatchConflict, match="no longer exists"):
        compute_changes(patch, {}.get)


def test_created_deleted_and_binary_files(tmp_path: Path) -> None:
    patch = git_diff(tmp_path, {"new.py": (None, "print(1)\n"), "old.py": ("x = 1\n", None)})
    changes = compute_changes(patch, {"old.py": "x = 1\n"}.get)
    assert [(c.path, c.kind) for c in changes] == [("new.py", "create"), ("old.py", "delete")]
    with pytest.raises(PatchConflict, match="exists now"):
        compute_changes(patch, {"old.py": "x = 1\n", "new.py": "other\n"}.get)
    with pytest.raises(PatchConflict, match=r"old\.py: the hunk at line 1 no longer matches"):
        compute_changes(patch, {"old.py": "x = 2\n"}.get)
    # Already created with the same text: nothing left to do for that file.
    assert [
        c.path for c in compute_changes(patch, {"old.py": "x = 1\n", "new.py": "print(1)\n"}.get)
    ] == ["old.py"]
    binary = (
        "diff --git a/b.bin b/b.bin\nindex 1..2 100644\nBinary files a/b.bin and b/b.bin differ\n"
    )
    with pytest.raises(PatchConflict, match="binary"):
        compute_changes(binary, {"b.bin": "?"}.get)


def test_workspace_edit_shapes_follow_the_client_capabilities(tmp_path: Path) -> None:
    patch = git_diff(
        tmp_path,
        {"a.py": ("a\n", "A\n"), "new.py": (None, "n\n"), "gone.py": ("g\n", None)},
    )
    changes = compute_changes(patch, {"a.py": "a\n", "gone.py": "g\n"}.get)
    root = tmp_path / "ws"
    full = build_workspace_edit(
        changes, root, EditSupport(True, True, True), {"a.py": ("file:///custom/a.py", 7)}
    )
    kinds = [type(c).__name__ for c in full.edit.document_changes or []]
    assert kinds == ["TextDocumentEdit", "DeleteFile", "CreateFile", "TextDocumentEdit"]
    first = full.edit.document_changes[0]  # type: ignore[index]
    assert isinstance(first, types.TextDocumentEdit)
    assert (first.text_document.uri, first.text_document.version) == ("file:///custom/a.py", 7)
    assert full.on_disk == []
    plain = build_workspace_edit(changes, root, EditSupport())
    assert list(plain.edit.changes or {}) == [(root / "a.py").as_uri()]
    assert [c.path for c in plain.on_disk] == ["gone.py", "new.py"]
    root.mkdir()
    (root / "gone.py").write_text("g\n")
    assert apply_on_disk(root, plain.on_disk) == []
    assert (root / "new.py").read_text() == "n\n" and not (root / "gone.py").exists()
    assert apply_on_disk(root, plain.on_disk) == ["new.py exists already; not overwritten"]


def test_positions_past_a_last_line_without_newline_use_utf16_columns() -> None:
    patch = "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-😀x\n\\ No newline at end of file\n+y\n"
    [change] = compute_changes(patch, {"f": "a\n😀x"}.get)
    [edit] = text_edits(change, "utf-16")
    assert (edit.range.start.line, edit.range.start.character) == (1, 0)
    assert (edit.range.end.line, edit.range.end.character) == (1, 3)
    [edit8] = text_edits(change, "utf-8")
    assert edit8.range.end.character == 5


lines = st.lists(
    st.sampled_from(["a\n", "b\n", "c\n", "def f():\n", "    return 1\n", "\n", "x = 'é'\n"]),
    max_size=25,
)


@settings(max_examples=150, deadline=None, database=None)
@given(old=lines, new=lines, prefix=st.lists(st.just("# typed above\n"), max_size=3))
def test_any_unified_diff_applies_like_patch(
    old: list[str], new: list[str], prefix: list[str]
) -> None:
    assume(old or not prefix)  # a hunk without context lines has no place to shift to
    patch = "".join(difflib.unified_diff(old, new, "a/f.py", "b/f.py"))
    if not patch:
        return
    current = "".join(prefix + old)
    [change] = compute_changes(patch, {"f.py": current}.get) or [None]
    expected = "".join(prefix + new)
    if change is None:
        assert current == expected
        return
    assert change.new_text == expected
    assert apply_text_edits(current, text_edits(change, "utf-16")) == expected
