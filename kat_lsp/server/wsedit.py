"""Turn a candidate's `FileChange`s into the LSP `WorkspaceEdit` a given client can apply.

Clients that declare `workspace.workspaceEdit.documentChanges` get versioned
`TextDocumentEdit`s (so a buffer edited in the meantime rejects the edit) plus
`CreateFile`/`DeleteFile` where they declare those resource operations. Clients that
declare neither (Neovim 0.7) get a plain `changes` map; the files such a client cannot
create or delete are returned as `on_disk` for the server to write or remove itself
once the client has applied the text edits (`ondisk.apply_on_disk`). Files the review
flagged carry a `needsConfirmation` change annotation where the client supports them.
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
    annotations: bool = False
    """Change annotations (`needsConfirmation`): the client asks the user before applying."""

    @classmethod
    def of(cls, caps: types.ClientCapabilities | None, encoding: str = "utf-16") -> EditSupport:
        ws = caps.workspace.workspace_edit if caps and caps.workspace else None
        if ws is None:
            return cls(encoding=encoding)
        ops = {str(op.value if hasattr(op, "value") else op) for op in ws.resource_operations or []}
        documents = bool(ws.document_changes)
        annotations = documents and ws.change_annotation_support is not None
        return cls(
            documents,
            documents and "create" in ops,
            documents and "delete" in ops,
            encoding,
            annotations,
        )


@dataclass
class BuiltEdit:
    edit: types.WorkspaceEdit
    on_disk: list[FileChange] = field(default_factory=list)
    """Creations and deletions the client cannot do: the server does them after applyEdit."""
    flagged: dict[str, str] = field(default_factory=dict)
    """Files the review flagged (path → why) that this edit changes."""
    annotated: bool = False
    """The flagged files' changes carry a `needsConfirmation` annotation."""

    @property
    def needs_confirmation(self) -> bool:
        """Flagged files the client will not ask the user about."""
        return bool(self.flagged) and not self.annotated


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


def text_edits(
    change: FileChange, encoding: str, annotation: str | None = None
) -> list[types.TextEdit | types.AnnotatedTextEdit]:
    lines = split_lines(change.old_text)
    out: list[types.TextEdit | types.AnnotatedTextEdit] = []
    for e in change.edits:
        where = types.Range(
            start=position_at(lines, e.start, encoding), end=position_at(lines, e.end, encoding)
        )
        if annotation is None:
            out.append(types.TextEdit(range=where, new_text=e.text))
        else:
            out.append(
                types.AnnotatedTextEdit(annotation_id=annotation, range=where, new_text=e.text)
            )
    return out


def _annotations(
    changes: list[FileChange], flagged: dict[str, str]
) -> dict[str, types.ChangeAnnotation]:
    return {
        f"kat-flagged:{c.path}": types.ChangeAnnotation(
            label=f"KAT: {c.path} needs your confirmation",
            needs_confirmation=True,
            description=flagged[c.path],
        )
        for c in changes
        if c.path in flagged
    }


def build_workspace_edit(
    changes: list[FileChange],
    root: Path,
    support: EditSupport,
    open_docs: dict[str, tuple[str, int | None]] | None = None,
    flagged: dict[str, str] | None = None,
) -> BuiltEdit:
    """`open_docs` maps the relative path of every open document to the client's uri
    and version of it (edits then name the document exactly as the client does).
    `flagged` (path → why): files the user must confirm; their changes are annotated
    `needsConfirmation` where the client supports it."""
    open_docs = open_docs or {}
    flagged = {p: why for p, why in (flagged or {}).items() if any(c.path == p for c in changes)}
    annotated = support.annotations and bool(flagged)

    def note(path: str) -> str | None:
        return f"kat-flagged:{path}" if annotated and path in flagged else None

    def uri(path: str) -> str:
        return open_docs[path][0] if path in open_docs else uri_of(root, path)

    on_disk: list[FileChange] = []
    if not support.document_changes:
        plain: dict[str, list[types.TextEdit]] = {}
        for c in changes:
            if c.kind == "modify":
                plain[uri(c.path)] = [
                    e for e in text_edits(c, support.encoding) if isinstance(e, types.TextEdit)
                ]
            else:
                on_disk.append(c)
        return BuiltEdit(types.WorkspaceEdit(changes=plain), on_disk, flagged)
    document_changes: list[
        types.TextDocumentEdit | types.CreateFile | types.RenameFile | types.DeleteFile
    ] = []
    for c in changes:
        if c.kind == "delete":
            if support.delete:
                document_changes.append(
                    types.DeleteFile(uri=uri(c.path), annotation_id=note(c.path))
                )
            else:
                on_disk.append(c)
            continue
        if c.kind == "create":
            if not support.create:
                on_disk.append(c)
                continue
            document_changes.append(
                types.CreateFile(
                    uri=uri(c.path),
                    options=types.CreateFileOptions(ignore_if_exists=True),
                    annotation_id=note(c.path),
                )
            )
        document_changes.append(
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=uri(c.path), version=open_docs.get(c.path, ("", None))[1]
                ),
                edits=list(text_edits(c, support.encoding, note(c.path))),
            )
        )
    edit = types.WorkspaceEdit(
        document_changes=document_changes,
        change_annotations=_annotations(changes, flagged) if annotated else None,
    )
    return BuiltEdit(edit, on_disk, flagged, annotated)
