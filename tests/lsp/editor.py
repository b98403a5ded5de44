"""A minimal editor on top of pytest-lsp's client: open buffers with versions, edits by
didChange, and a `workspace/applyEdit` handler that applies a WorkspaceEdit the way an
editor does (open buffers change and are saved; other files change on disk; files are
created and deleted)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path
from pytest_lsp import LanguageClient


def offset_of(text: str, pos: types.Position) -> int:
    """Offset of an LSP position (UTF-16 columns) in `text`."""
    lines = text.split("\n")
    before = sum(len(line) + 1 for line in lines[: pos.line])
    line = lines[pos.line] if pos.line < len(lines) else ""
    units, col = 0, 0
    while col < len(line) and units < pos.character:
        units += len(line[col].encode("utf-16-le")) // 2
        col += 1
    return min(before + col, len(text))


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    spans = sorted(
        ((offset_of(text, e.range.start), offset_of(text, e.range.end), e.new_text) for e in edits),
        reverse=True,
    )
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


class Editor:
    """Buffers of one pytest-lsp client; `accept` decides whether applyEdit is applied."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.buffers: dict[str, tuple[int, str]] = {}
        self.applied: list[types.WorkspaceEdit] = []
        self.accept: Callable[[types.WorkspaceEdit], bool] = lambda _: True
        self.updates: list[dict[str, Any]] = []
        # lsprotocol 2025.0.0 takes any result with a "command" key for a Command, so a
        # CodeAction that carries a command arrives mangled; real clients check the type.
        converter = client.protocol._converter

        def command_or_action(obj: Any, _: type) -> types.Command | types.CodeAction:
            kind = types.Command if isinstance(obj.get("command"), str) else types.CodeAction
            return converter.structure(obj, kind)

        converter.register_structure_hook(Union[types.Command, types.CodeAction], command_or_action)  # noqa: UP007

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def on_apply_edit(
            ls: LanguageClient, params: types.ApplyWorkspaceEditParams
        ) -> types.ApplyWorkspaceEditResult:
            return self._on_apply_edit(params)

        @client.feature("kat/runUpdate")
        def on_update(ls: LanguageClient, params: Any) -> None:
            self.updates.append(_plain(params))

    @staticmethod
    def uri(path: Path) -> str:
        return str(from_fs_path(str(path)))

    def open(self, path: Path, text: str | None = None) -> None:
        uri = self.uri(path)
        content = path.read_text() if text is None else text
        self.buffers[uri] = (1, content)
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=content
                )
            )
        )

    def change(self, path: Path, text: str) -> None:
        """Replace the buffer's text (unsaved)."""
        uri = self.uri(path)
        version = self.buffers[uri][0] + 1
        self.buffers[uri] = (version, text)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def text(self, path: Path) -> str:
        uri = self.uri(path)
        return self.buffers[uri][1] if uri in self.buffers else path.read_text()

    def _edit_file(self, uri: str, edits: list[types.TextEdit]) -> None:
        path = Path(to_fs_path(uri) or uri)
        if uri in self.buffers:
            new = apply_text_edits(self.buffers[uri][1], edits)
            self.change(path, new)
        else:
            new = apply_text_edits(path.read_text() if path.exists() else "", edits)
        path.write_text(new)  # the editor saves what it changed

    def _on_apply_edit(
        self, params: types.ApplyWorkspaceEditParams
    ) -> types.ApplyWorkspaceEditResult:
        edit = params.edit
        if not self.accept(edit):
            return types.ApplyWorkspaceEditResult(
                applied=False, failure_reason="rejected by the user"
            )
        self.apply(edit)
        return types.ApplyWorkspaceEditResult(applied=True)

    def apply(self, edit: types.WorkspaceEdit) -> None:
        self.applied.append(edit)
        for uri, edits in (edit.changes or {}).items():
            self._edit_file(uri, list(edits))
        for change in edit.document_changes or []:
            if isinstance(change, types.CreateFile):
                path = Path(to_fs_path(change.uri) or "")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            elif isinstance(change, types.DeleteFile):
                Path(to_fs_path(change.uri) or "").unlink()
            elif isinstance(change, types.TextDocumentEdit):
                uri = change.text_document.uri
                version = change.text_document.version
                if version is not None:
                    assert self.buffers[uri][0] == version, "edit against an old buffer version"
                self._edit_file(uri, [e for e in change.edits if isinstance(e, types.TextEdit)])

    async def wait_update(
        self, check: Callable[[dict[str, Any]], bool], timeout: float = 60.0
    ) -> dict[str, Any]:
        """The first run update (past or future) for which `check` holds."""
        async with asyncio.timeout(timeout):
            while True:
                for update in self.updates:
                    if check(update):
                        return update
                await asyncio.sleep(0.05)


def _plain(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
