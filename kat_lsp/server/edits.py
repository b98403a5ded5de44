"""Apply a candidate's unified diff to the text the user has *now*, in pure Python.

The language server cannot use `git apply` for code actions: the base of an edit is the
editor's buffer (possibly unsaved), not the disk. `compute_changes` parses the patch
with `unidiff` and places every hunk the way `patch` does without fuzz: the context and
removed lines must match exactly (line endings included), at the line the hunk names
shifted by the offset of the file's previous hunks, else at the nearest line where they
do match (hunks stay in order and never overlap). A hunk that matches nowhere raises
`PatchConflict`: the document moved on since the snapshot in a way the candidate no
longer fits.

Each change block of a hunk (consecutive removed/added lines) becomes one `LineEdit`,
so the client's undo sees the real change, not a whole-file replacement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError
from unidiff.patch import Hunk, PatchedFile

ChangeKind = Literal["modify", "create", "delete"]


class PatchConflict(Exception):
    """The patch does not fit the current text. The message names the file and the line."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class LineEdit:
    """Replace lines [start, end) of the old text (0-based) with `text`."""

    start: int
    end: int
    text: str


@dataclass
class FileChange:
    """What a patch does to one file, against the text it was applied to."""

    path: str
    """Relative to the run's root (the source path for deletions)."""
    kind: ChangeKind
    old_text: str
    """The current text the patch was applied to ("" for a file that does not exist)."""
    new_text: str
    edits: list[LineEdit] = field(default_factory=list)


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split on "\\n" only (like git; `str.splitlines` also
    splits on form feeds and other separators a source file may contain)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _strip_path(name: str | None) -> str | None:
    if name is None or name == "/dev/null":
        return None
    return name[2:] if name.startswith(("a/", "b/")) else name


def _hunk_lines(hunk: Hunk) -> list[tuple[str, str]]:
    """(type, text) per line; a line followed by "\\ No newline at end of file" loses its
    newline (unidiff keeps the diff's own line separator in the value)."""
    out: list[tuple[str, str]] = []
    for line in hunk:
        if line.line_type == "\\":
            if out and out[-1][1].endswith("\n"):
                out[-1] = (out[-1][0], out[-1][1][:-1])
            continue
        out.append((line.line_type, line.value))
    return out


def _locate(lines: list[str], old: list[str], expected: int, floor: int) -> int | None:
    """The start index where `old` matches, nearest to `expected`, not before `floor`."""
    last = len(lines) - len(old)
    if last < floor:
        return None
    expected = min(max(expected, floor), last)
    for distance in range(max(expected - floor, last - expected) + 1):
        for pos in (expected - distance, expected + distance):
            if floor <= pos <= last and lines[pos : pos + len(old)] == old:
                return pos
    return None


def apply_hunks(path: str, text: str, hunks: list[Hunk]) -> tuple[str, list[LineEdit]]:
    """The new text and the line edits that turn `text` into it."""
    lines = split_lines(text)
    result: list[str] = []
    edits: list[LineEdit] = []
    cursor = 0  # first line of `lines` not yet copied to result
    offset = 0
    for hunk in hunks:
        body = _hunk_lines(hunk)
        old = [value for kind, value in body if kind in (" ", "-")]
        if old:
            expected = hunk.source_start - 1 + offset
            pos = _locate(lines, old, expected, cursor)
            if pos is None:
                raise PatchConflict(
                    path,
                    f"the hunk at line {hunk.source_start} no longer matches the file "
                    "(it changed since the run's snapshot)",
                )
        else:  # a pure insertion: source_start is the line it goes after
            pos = hunk.source_start + offset
            if not cursor <= pos <= len(lines):
                raise PatchConflict(path, f"the file is shorter than line {hunk.source_start}")
        offset = pos - (hunk.source_start - 1 if old else hunk.source_start)
        result.extend(lines[cursor:pos])
        index = pos
        block_start: int | None = None
        added: list[str] = []
        for kind, value in [*body, (" ", "")]:  # a sentinel context line closes the last block
            if kind == " ":
                if block_start is not None:
                    edits.append(LineEdit(block_start, index, "".join(added)))
                    block_start, added = None, []
                if value:
                    result.append(value)
                    index += 1
                continue
            if block_start is None:
                block_start = index
            if kind == "-":
                index += 1
            else:
                added.append(value)
                result.append(value)
        cursor = pos + len(old)
    result.extend(lines[cursor:])
    return "".join(result), edits


def _file_change(patched: PatchedFile, read_text: Callable[[str], str | None]) -> list[FileChange]:
    source, target = _strip_path(patched.source_file), _strip_path(patched.target_file)
    name = target or source or "?"
    if patched.is_binary_file:
        raise PatchConflict(name, "binary changes cannot be applied from the editor")
    hunks = list(patched)
    if source is None and target is not None:  # a new file
        current = read_text(target)
        new_text, _ = apply_hunks(target, "", hunks)
        if current is not None and current != new_text:
            raise PatchConflict(target, "the candidate creates this file, but it exists now")
        if current == new_text:
            return []
        return [FileChange(target, "create", "", new_text, [LineEdit(0, 0, new_text)])]
    assert source is not None
    current = read_text(source)
    if current is None:
        raise PatchConflict(source, "the file no longer exists")
    new_text, edits = apply_hunks(source, current, hunks)
    if target is None:
        if new_text:
            raise PatchConflict(source, "the candidate deletes this file, but its text changed")
        return [FileChange(source, "delete", current, "", edits)]
    if target != source:  # a rename: the source goes, the target comes with the new text
        if read_text(target) is not None:
            raise PatchConflict(
                target, "the candidate renames a file to this path, which exists now"
            )
        return [
            FileChange(source, "delete", current, "", [LineEdit(0, len(split_lines(current)), "")]),
            FileChange(target, "create", "", new_text, [LineEdit(0, 0, new_text)]),
        ]
    if not edits:  # a mode change or an empty diff: nothing for an editor to do
        return []
    return [FileChange(source, "modify", current, new_text, edits)]


def parse_patch(patch: str) -> PatchSet:
    try:
        return PatchSet(patch)
    except UnidiffParseError as exc:
        raise PatchConflict("(patch)", f"the candidate's diff cannot be parsed: {exc}") from exc


def compute_changes(
    patch: str, read_text: Callable[[str], str | None], *, resources_only: bool = False
) -> list[FileChange]:
    """The changes `patch` makes to the current texts. `read_text(relative_path)` returns a
    file's current text (the editor's buffer when open, else the disk) or None when the
    file does not exist. Raises PatchConflict when any hunk no longer fits.
    `resources_only`: only the files the patch creates, deletes or renames."""
    changes: list[FileChange] = []
    for patched in parse_patch(patch):
        if resources_only and _strip_path(patched.source_file) == _strip_path(patched.target_file):
            continue
        changes.extend(_file_change(patched, read_text))
    return changes
