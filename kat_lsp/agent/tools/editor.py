"""`str_replace_editor`: view, create, str_replace, insert, undo_edit — SWE-agent's editor
with its defects fixed (working per-file undo, tabs and line endings kept, ambiguous
matches reported by line, paths confined to the checkout).

Every file operation goes through `kat_lsp.workspace.confined`: confined beneath the
checkout at the system-call level, no symbolic link followed, no FIFO or device opened
for reading, reads bounded. The checkout is written by sandboxed processes, so nothing
read from it is trusted to stay as it was between two calls.

Every problem is answered as an observation for the model; only arguments that do not
fit the schema raise FormatError.
"""

from __future__ import annotations

import contextlib
import posixpath
import stat
from collections import deque
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
from kat_lsp.workspace import confined
from kat_lsp.workspace.confined import NotRegular, OutsideRoot, SymlinkInPath, TooLarge

COMMANDS = ("view", "create", "str_replace", "insert", "undo_edit")
VIEW_CAP = 16_000
READ_LIMIT = 4 << 20
"""Bytes: larger files are refused before being read (view them in parts through bash)."""
LIST_LIMIT = 5_000
"""Directory entries read for one folder listing."""
HISTORY_LIMIT = 64 << 20
"""Bytes of undo history kept; the oldest entries are dropped beyond it."""
CONTEXT = 4
REVIEW = "Review the change and make sure it is as expected (undo_edit reverts it)."

DESCRIPTION = """\
View, create and edit files in the repository.
* `path`: relative to the repository root, or absolute inside the repository. Paths outside it are refused, and nothing in `.git` can be written. Symbolic links are never followed (not even inside the repository): use the path of the real file. Only regular files up to 4 MB are opened.
* `view`: a file is shown with numbered lines like `cat -n` (long files are clipped: use `view_range` [start, end], 1-based and inclusive, end -1 = to the end); a directory lists its files and folders up to 2 levels deep, hidden ones excluded (symbolic links end in @).
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

    def __init__(
        self,
        root: Path,
        config: KatConfig | None = None,
        *,
        view_cap: int = VIEW_CAP,
        read_limit: int = READ_LIMIT,
    ):
        self.root = Path(root).resolve()
        self.config = config
        self.view_cap = view_cap
        self.read_limit = read_limit
        self.history: dict[str, list[bytes | None]] = {}
        """Per file (relative path), the contents before each edit (None: did not exist)."""
        self._order: deque[str] = deque()
        self._kept = 0

    def schema(self) -> dict[str, Any]:
        function = {"name": self.name, "description": DESCRIPTION, "parameters": PARAMETERS}
        return {"type": "function", "function": function}

    async def __call__(self, arguments: dict[str, Any]) -> str:
        args = check_arguments(self.schema(), arguments)
        return await anyio.to_thread.run_sync(self._run, args)

    def _run(self, args: dict[str, Any]) -> str:
        command = args["command"]
        rel = ""
        try:
            rel = self._relative(args["path"])
            if command == "view":
                return self._view(rel, args.get("view_range"))
            if ".git" in rel.split("/"):
                raise Refused(
                    f"Refused: {rel} is inside .git; the repository's metadata "
                    "is not edited with this tool (use git commands through bash)."
                )
            if command == "undo_edit":
                return self._undo(rel)
            if command == "create":
                return self._create(rel, self._need(args, "file_text"))
            if command == "str_replace":
                return self._str_replace(rel, self._need(args, "old_str"), args.get("new_str", ""))
            return self._insert(rel, self._need(args, "insert_line"), self._need(args, "new_str"))
        except Refused as refusal:
            return str(refusal)
        except SymlinkInPath as link:
            return self._link_note(rel, link)
        except NotRegular as odd:
            if odd.kind == "folder":
                return f"{self._show(rel)} is a folder; this command needs a file."
            return (
                f"Refused: {self._show(rel)} is a {odd.kind}, not a regular file; the editor "
                "opens only regular files and folders. Inspect it through bash if needed."
            )
        except TooLarge as big:
            shown = self._show(rel)
            return (
                f"{shown} is {big.size / 2**20:.1f} MB, more than the {big.limit / 2**20:g} MB "
                f"the editor reads. See parts of it through bash (`sed -n 1,100p {shown}`, "
                f"`grep -n PATTERN {shown}`) and change it with `sed -i` or a script."
            )
        except FileNotFoundError:
            return (
                f"{self._show(rel)} does not exist. Check the path (view a folder to list it), "
                "or make the file with the create command."
            )
        except NotADirectoryError:
            return f"{args['path']}: a part of the path is a file, not a folder."
        except OSError as exc:
            return f"Could not {command} {args['path']}: {exc.strerror or exc}."

    @staticmethod
    def _need(args: dict[str, Any], key: str) -> Any:
        if key not in args:
            raise Refused(f"Parameter `{key}` is required for command {args['command']}.")
        return args[key]

    @staticmethod
    def _show(rel: str) -> str:
        return rel or ". (the repository root)"

    def _relative(self, raw: str) -> str:
        if not raw.strip():
            raise Refused("`path` is empty: give a file or folder in the repository.")
        if "\0" in raw:
            raise Refused("`path` contains a NUL character: give a file or folder name without it.")
        try:
            return confined.relative(self.root, raw)
        except OutsideRoot:
            raise Refused(
                f"Refused: {raw} is outside the repository ({self.root}). Use a path relative "
                "to the repository root, or an absolute path inside it."
            ) from None

    def _link_note(self, rel: str, link: SymlinkInPath) -> str:
        target = link.target if len(link.target) <= 200 else link.target[:200] + "..."
        note = (
            f"Refused: {link.rel} is a symbolic link (to {target}); the editor does not "
            "follow symbolic links."
        )
        try:
            real = confined.relative(
                self.root, posixpath.join(posixpath.dirname(link.rel), link.target)
            )
        except OutsideRoot:
            return f"{note} It points outside the repository: only files inside it can be opened."
        real = "/".join(part for part in (real, rel[len(link.rel) :].strip("/")) if part)
        return f"{note} Use the path it points to instead: {real or '.'}"

    def _read(self, rel: str) -> tuple[bytes, TextFile, int]:
        raw, info = confined.read_regular(self.root, rel, self.read_limit)
        if is_binary(raw):
            raise Refused(binary_note(rel, raw))
        return raw, TextFile.decode(raw), info.st_mode

    def _remember(self, rel: str, before: bytes | None) -> None:
        self.history.setdefault(rel, []).append(before)
        self._order.append(rel)
        self._kept += len(before or b"")
        while self._kept > HISTORY_LIMIT and self._order:
            stack = self.history.get(self._order.popleft())
            if stack:
                self._kept -= len(stack.pop(0) or b"")

    def _snippet(self, rel: str, text: str, first: int, last: int) -> str:
        lines = split_lines(text)
        start, end = max(1, first - CONTEXT), min(len(lines), last + CONTEXT)
        body, _ = numbered(lines[start - 1 : end], start)
        return f"Snippet of {rel}, lines {start}-{end}:\n{body}\n{REVIEW}"

    def _view(self, rel: str, view_range: list[int] | None) -> str:
        shown = self._show(rel)
        try:
            raw, _ = confined.read_regular(self.root, rel, self.read_limit)
        except NotRegular as odd:
            if odd.kind != "folder":
                raise
            if view_range is not None:
                return f"view_range works on files only; {shown} is a folder."
            entries, complete = confined.list_dir_beneath(self.root, rel, depth=2, limit=LIST_LIMIT)
            return view_dir(entries, complete, shown, self.view_cap)
        return view_file(shown, raw, view_range, self.view_cap)

    def _create(self, rel: str, text: str) -> str:
        try:
            confined.write_atomic(
                self.root, rel, TextFile(text, crlf=False).encode(), exclusive=True
            )
        except FileExistsError:
            raise Refused(
                f"{rel} already exists; create never overwrites a file. Change it with "
                "str_replace or insert, or remove it first (rm through bash)."
            ) from None
        except FileNotFoundError:
            folder = posixpath.dirname(rel)
            raise Refused(
                f"The folder {folder} does not exist, so {rel} was not created. Make the folder "
                f"first through bash (`mkdir -p {folder}`), then call create again."
            ) from None
        self._remember(rel, None)
        return f"File created: {rel} ({len(split_lines(text))} lines)."

    def _str_replace(self, rel: str, old_str: str, new_str: str) -> str:
        raw, content, mode = self._read(rel)
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
                f"No replacement was made: old_str does not occur verbatim in {rel}.{hint}"
            )
        if len(starts) > 1:
            lines = ", ".join(str(line_of(content.text, s)) for s in starts)
            raise Refused(
                f"No replacement was made: old_str occurs {len(starts)} times in {rel}, "
                f"starting at lines {lines}. Include more surrounding lines to make it unique."
            )
        if old == new:
            raise Refused("No replacement was made: new_str is identical to old_str.")
        start = starts[0]
        content.text = content.text[:start] + new + content.text[start + len(old) :]
        confined.write_atomic(self.root, rel, content.encode(), mode=mode)
        self._remember(rel, raw)
        first = line_of(content.text, start)
        last = first + max(new.count("\n") - new.endswith("\n"), 0)
        return f"Edited {rel}. " + self._snippet(rel, content.text, first, last)

    def _insert(self, rel: str, after: int, new_str: str) -> str:
        raw, content, mode = self._read(rel)
        lines = content.lines
        if not 0 <= after <= len(lines):
            raise Refused(
                f"Invalid insert_line {after}: it must be between 0 (the top) and {len(lines)} "
                f"(after the last line) for {rel}."
            )
        added = split_lines(content.normalise(new_str)) or [""]
        final_newline = content.text.endswith("\n") or not content.text
        content.text = join_lines(lines[:after] + added + lines[after:], final_newline)
        confined.write_atomic(self.root, rel, content.encode(), mode=mode)
        self._remember(rel, raw)
        return f"Inserted {len(added)} line(s) into {rel}. " + self._snippet(
            rel, content.text, after + 1, after + len(added)
        )

    def _undo(self, rel: str) -> str:
        stack = self.history.get(rel)
        if not stack:
            return (
                f"Nothing to undo for {self._show(rel)}: no edit made with str_replace_editor "
                "(create, str_replace, insert) is left in its history."
            )
        before = stack[-1]
        left = f"{len(stack) - 1} earlier edit(s) of it can still be undone."
        if before is None:
            with contextlib.suppress(FileNotFoundError):
                confined.unlink_beneath(self.root, rel)
            stack.pop()
            return f"Undid the creation of {rel}: the file was removed. {left}"
        now = confined.lstat_beneath(self.root, rel)
        mode = now.st_mode if now is not None and stat.S_ISREG(now.st_mode) else None
        confined.write_atomic(self.root, rel, before, mode=mode)
        stack.pop()
        self._kept -= len(before)
        return f"Undid the last edit of {rel}. {left}\n" + view_file(
            rel, before, None, self.view_cap
        )
