"""Turn a candidate's `FileChange`s into the LSP `WorkspaceEdit` a given client can apply.

Clients that declare `workspace.workspaceEdit.documentChanges` get versioned
`TextDocumentEdit`s (so a buffer edited in the meantime rejects the edit) plus
`CreateFile`/`DeleteFile` where they declare those resource operations. Clients that
declare neither (Neovim 0.7) get a plain `changes` map; the files such a client cannot
create or delete are returned as `on_disk` for the server to write or remove itself
once the client has applied the text edits (`apply_on_disk`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path

from kat_lsp.server.edits import FileChange, split_lines


@dataclass(frozen=True)
class EditSupport:
    """What the client can do with a WorkspaceEdit."""

    document_changes: bool = False
    create: bool = False
    delete: bool = False
    encoding: str = "utf-16"
    """The negotiated position encoding (`utf-8`, `utf-16` or `utf-32`)."""

    @classmethod
    def of(cls, caps: types.ClientCapabilities | None, encoding: str = "utf-16") -> EditSupport:
        ws = caps.workspace.workspace_edit if caps and caps.workspace else None
        if ws is None:
            return cls(encoding=encoding)
        ops = {str(op.value if hasattr(op, "value") else op) for op in ws.resource_operations or []}
        documents = bool(ws.document_changes)
        return cls(
            documents, documents and "create" in ops, documents and "delete" in ops, encoding
        )


@dataclass
class BuiltEdit:
    edit: types.WorkspaceEdit
    on_disk: list[FileChange] = field(default_factory=list)
    """Creations and deletions the client cannot do: the server does them after applyEdit."""


def uri_of(root: Path, path: str) -> str:
    return str(from_fs_path(str(root / path)))


def _width(text: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def position_at(lines: list[str], index: int, encoding: str) -> types.Position:
    """The start of line `index`; past the last line of a text without a final newline,
    the end of that line (LSP positions cannot point below it)."""
    if index < len(lines) or not lines or lines[-1].endswith("\n"):
        return types.Position(line=index, character=0)
    last = lines[-1]
    return types.Position(line=len(lines) - 1, character=_width(last, encoding))


def text_edits(change: FileChange, encoding: str) -> list[types.TextEdit]:
    lines = split_lines(change.old_text)
    return [
        types.TextEdit(
            range=types.Range(
                start=position_at(lines, e.start, encoding), end=position_at(lines, e.end, encoding)
            ),
            new_text=e.text,
        )
        for e in change.edits
    ]


def build_workspace_edit(
    changes: list[FileChange],
    root: Path,
    support: EditSupport,
    open_docs: dict[str, tuple[str, int | None]] | None = None,
) -> BuiltEdit:
    """`open_docs` maps the relative path of every open document to the client's uri
    and version of it (edits then name the document exactly as the client does)."""
    open_docs = open_docs or {}

    def uri(path: str) -> str:
        return open_docs[path][0] if path in open_docs else uri_of(root, path)

    on_disk: list[FileChange] = []
    if not support.document_changes:
        plain: dict[str, list[types.TextEdit]] = {}
        for c in changes:
            if c.kind == "modify":
                plain[uri(c.path)] = text_edits(c, support.encoding)
            else:
                on_disk.append(c)
        return BuiltEdit(types.WorkspaceEdit(changes=plain), on_disk)
    document_changes: list[
        types.TextDocumentEdit | types.CreateFile | types.RenameFile | types.DeleteFile
    ] = []
    for c in changes:
        if c.kind == "delete":
            if support.delete:
                document_changes.append(types.DeleteFile(uri=uri(c.path)))
            else:
                on_disk.append(c)
            continue
        if c.kind == "create":
            if not support.create:
                on_disk.append(c)
                continue
            document_changes.append(
                types.CreateFile(
                    uri=uri(c.path), options=types.CreateFileOptions(ignore_if_exists=True)
                )
            )
        document_changes.append(
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=uri(c.path), version=open_docs.get(c.path, ("", None))[1]
                ),
                edits=list(text_edits(c, support.encoding)),
            )
        )
    return BuiltEdit(types.WorkspaceEdit(document_changes=document_changes), on_disk)


def apply_on_disk(root: Path, changes: list[FileChange]) -> list[str]:
    """Create or delete the files a client could not. Blocking: run it in a thread.
    Never overwrites a file that exists, never deletes one whose text changed; returns a
    note per file it left alone."""
    notes: list[str] = []
    for c in changes:
        target = root / c.path
        if c.kind == "create":
            if target.exists():
                notes.append(f"{c.path} exists already; not overwritten")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("w", encoding="utf-8", newline="") as f:
                f.write(c.new_text)
        elif c.kind == "delete":
            try:
                current = target.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if current != c.old_text:
                notes.append(f"{c.path} changed on disk; not deleted")
                continue
            target.unlink()
    return notes
