"""`str_replace_editor`: view, create, str_replace, insert, undo_edit — SWE-agent's editor
with its defects fixed (working per-file undo, tabs and line endings kept, ambiguous
matches reported by line, paths confined to the checkout).

Every problem is answered as an observation for the model; only arguments that do not
fit the schema raise FormatError.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio

from kat_lsp.agent.tools.args import check_arguments
from kat_lsp.agent.tools.textfile import (
    TextFile,
    join_lines,
    line_of,
    loose_match,
    numbered,
    occurrences,
    split_lines,
)
from kat_lsp.agent.tools.views import binary_note, is_binary, view_dir, view_file
from kat_lsp.config import KatConfig

COMMANDS = ("view", "create", "str_replace", "insert", "undo_edit")
VIEW_CAP = 16_000
CONTEXT = 4
REVIEW = "Review the change and make sure it is as expected (undo_edit reverts it)."

DESCRIPTION = """\
View, create and edit files in the repository.
* `path`: relative to the repository root, or absolute inside the repository. Paths outside it (also through `..` or symlinks) are refused, and nothing in `.git` can be written.
* `view`: a file is shown with numbered lines like `cat -n` (long files are clipped: use `view_range` [start, end], 1-based and inclusive, end -1 = to the end); a directory lists its files and folders up to 2 levels deep, hidden ones excluded.
* `create`: writes `file_text` to a new file. It never overwrites an existing file, and the folder must already exist (make it with `mkdir -p` through bash).
* `str_replace`: replaces `old_str` with `new_str` (omitted = delete). `old_str` must match EXACTLY ONE place in the file, character for character including indentation; add surrounding lines to make it unique.
* `insert`: inserts `new_str` as new lines after line `insert_line` (0 = at the top).
* `undo_edit`: reverts the last edit this tool made to `path`; repeat to go further back (undoing a `create` deletes the file).
Tabs, CRLF line endings and a missing final newline are kept as they are in the file."""


def _param(kind: str, description: str) -> dict[str, Any]:
    return {"type": kind, "description": description}


PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {"type": "string", "enum": list(COMMANDS)},
        "path": _param("string", "File or folder in the repository."),
        "file_text": _param("string", "create: the new file's content."),
        "old_str": _param("string", "str_replace: the exact text to replace."),
        "new_str": _param("string", "str_replace: the replacement. insert: the lines to insert."),
        "insert_line": _param("integer", "insert: insert after this line (0 = at the top)."),
        "view_range": {
            **_param("array", "view: [start, end], 1-based, inclusive; end -1 = to the end."),
            "items": {"type": "integer"},
            "minItems": 2,
            "maxItems": 2,
        },
    },
    "required": ["command", "path"],
}


class Refused(Exception):
    """The command cannot be done; the message says why and what to do instead."""


class EditorTool:
    """The `str_replace_editor` tool over one checkout, with a per-file undo history."""

    name = "str_replace_editor"

    def __init__(self, root: Path, config: KatConfig | None = None, *, view_cap: int = VIEW_CAP):
        self.root = Path(root).resolve()
        self.config = config
        self.view_cap = view_cap
        self.history: dict[Path, list[bytes | None]] = {}
        """Per file, the contents before each edit (None: the file did not exist)."""

    def schema(self) -> dict[str, Any]:
        function = {"name": self.name, "description": DESCRIPTION, "parameters": PARAMETERS}
        return {"type": "function", "function": function}

    async def __call__(self, arguments: dict[str, Any]) -> str:
        args = check_arguments(self.schema(), arguments)
        return await anyio.to_thread.run_sync(self._run, args)

    def _run(self, args: dict[str, Any]) -> str:
        command = args["command"]
        try:
            target = self._resolve(args["path"])
            if command == "view":
                return self._view(target, args.get("view_range"))
            if ".git" in target.relative_to(self.root).parts:
                raise Refused(
                    f"Refused: {self._show(target)} is inside .git; the repository's metadata "
                    "is not edited with this tool (use git commands through bash)."
                )
            if command == "undo_edit":
                return self._undo(target)
            if command == "create":
                return self._create(target, self._need(args, "file_text"))
            if command == "str_replace":
                return self._str_replace(
                    target, self._need(args, "old_str"), args.get("new_str", "")
                )
            return self._insert(
                target, self._need(args, "insert_line"), self._need(args, "new_str")
            )
        except Refused as refusal:
            return str(refusal)
        except OSError as exc:
            return f"Could not {command} {args['path']}: {exc.strerror or exc}."

    @staticmethod
    def _need(args: dict[str, Any], key: str) -> Any:
        if key not in args:
            raise Refused(f"Parameter `{key}` is required for command {args['command']}.")
        return args[key]

    def _show(self, target: Path) -> str:
        rel = target.relative_to(self.root).as_posix()
        return rel if rel != "." else ". (the repository root)"

    def _resolve(self, raw: str) -> Path:
        if not raw.strip():
            raise Refused("`path` is empty: give a file or folder in the repository.")
        given = Path(raw)
        candidate = given if given.is_absolute() else self.root / given
        resolved = candidate.resolve()
        if resolved.is_relative_to(self.root):
            return resolved
        if Path(os.path.normpath(candidate)).is_relative_to(self.root):
            raise Refused(
                f"Refused: {raw} is (or passes through) a symbolic link that points outside "
                f"the repository, to {resolved}. Only files inside {self.root} can be opened."
            )
        raise Refused(
            f"Refused: {raw} is outside the repository ({self.root}). Use a path relative to "
            "the repository root, or an absolute path inside it."
        )

    def _must_exist(self, target: Path) -> None:
        if not target.exists():
            raise Refused(
                f"{self._show(target)} does not exist. Check the path (view a folder to list "
                "it), or make the file with the create command."
            )

    def _read(self, target: Path) -> tuple[bytes, TextFile]:
        if target.is_dir():
            raise Refused(f"{self._show(target)} is a folder; this command needs a file.")
        self._must_exist(target)
        raw = target.read_bytes()
        if is_binary(raw):
            raise Refused(binary_note(self._show(target), raw))
        return raw, TextFile.decode(raw)

    def _write(self, target: Path, content: TextFile, before: bytes | None) -> None:
        target.write_bytes(content.encode())
        self.history.setdefault(target, []).append(before)

    def _snippet(self, target: Path, text: str, first: int, last: int) -> str:
        lines = split_lines(text)
        start, end = max(1, first - CONTEXT), min(len(lines), last + CONTEXT)
        body, _ = numbered(lines[start - 1 : end], start)
        return f"Snippet of {self._show(target)}, lines {start}-{end}:\n{body}\n{REVIEW}"

    def _view(self, target: Path, view_range: list[int] | None) -> str:
        shown = self._show(target)
        if target.is_dir():
            if view_range is not None:
                return f"view_range works on files only; {shown} is a folder."
            return view_dir(self.root, target, shown, self.view_cap)
        self._must_exist(target)
        return view_file(shown, target.read_bytes(), view_range, self.view_cap)

    def _create(self, target: Path, text: str) -> str:
        shown = self._show(target)
        if target.exists() or target.is_symlink():
            raise Refused(
                f"{shown} already exists; create never overwrites a file. Change it with "
                "str_replace or insert, or remove it first (rm through bash)."
            )
        folder = target.parent
        if not folder.is_dir():
            rel = folder.relative_to(self.root).as_posix()
            raise Refused(
                f"The folder {rel} does not exist, so {shown} was not created. Make the folder "
                f"first through bash (`mkdir -p {rel}`), then call create again."
            )
        self._write(target, TextFile(text, crlf=False), None)
        return f"File created: {shown} ({len(split_lines(text))} lines)."

    def _str_replace(self, target: Path, old_str: str, new_str: str) -> str:
        raw, content = self._read(target)
        shown = self._show(target)
        old, new = content.normalise(old_str), content.normalise(new_str)
        if not old:
            raise Refused("old_str is empty; to add text without replacing any, use insert.")
        starts = occurrences(content.text, old)
        if not starts:
            hint = ""
            if near := loose_match(content.text, old):
                hint = (
                    f" It would match lines {near[0]}-{near[1]} if whitespace were ignored: "
                    f"compare indentation (tabs/spaces) and spacing with view_range {list(near)}."
                )
            raise Refused(
                f"No replacement was made: old_str does not occur verbatim in {shown}.{hint}"
            )
        if len(starts) > 1:
            lines = ", ".join(str(line_of(content.text, s)) for s in starts)
            raise Refused(
                f"No replacement was made: old_str occurs {len(starts)} times in {shown}, "
                f"starting at lines {lines}. Include more surrounding lines to make it unique."
            )
        if old == new:
            raise Refused("No replacement was made: new_str is identical to old_str.")
        start = starts[0]
        content.text = content.text[:start] + new + content.text[start + len(old) :]
        self._write(target, content, raw)
        first = line_of(content.text, start)
        last = first + max(new.count("\n") - new.endswith("\n"), 0)
        return f"Edited {shown}. " + self._snippet(target, content.text, first, last)

    def _insert(self, target: Path, after: int, new_str: str) -> str:
        raw, content = self._read(target)
        lines = content.lines
        if not 0 <= after <= len(lines):
            raise Refused(
                f"Invalid insert_line {after}: it must be between 0 (the top) and {len(lines)} "
                f"(after the last line) for {self._show(target)}."
            )
        added = split_lines(content.normalise(new_str)) or [""]
        final_newline = content.text.endswith("\n") or not content.text
        content.text = join_lines(lines[:after] + added + lines[after:], final_newline)
        self._write(target, content, raw)
        first = after + 1
        return f"Inserted {len(added)} line(s) into {self._show(target)}. " + self._snippet(
            target, content.text, first, after + len(added)
        )

    def _undo(self, target: Path) -> str:
        shown = self._show(target)
        stack = self.history.get(target)
        if not stack:
            return (
                f"Nothing to undo for {shown}: no edit made with str_replace_editor "
                "(create, str_replace, insert) is left in its history."
            )
        before = stack.pop()
        left = f"{len(stack)} earlier edit(s) of it can still be undone."
        if before is None:
            target.unlink(missing_ok=True)
            return f"Undid the creation of {shown}: the file was removed. {left}"
        target.write_bytes(before)
        return f"Undid the last edit of {shown}. {left}\n" + view_file(
            shown, before, None, self.view_cap
        )
