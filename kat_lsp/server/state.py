"""`KatServer`: the one `LanguageServer` subclass, owner of the server's state.

It holds the client's settings, the runs of this session (in flight and finished) and
answers the questions every handler asks: which folder is the workspace, what the
client has open (text, version, unsaved or not), what the client can apply. Handlers
live in `features.py`, `runs.py`, `actions.py` and `commands.py`; they stay thin.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from kat_lsp import __version__
from kat_lsp.safefile import NotRegular, TooLarge, read_bounded
from kat_lsp.server.params import invalid
from kat_lsp.server.progress import RunHandle
from kat_lsp.server.protocol import KatProtocol
from kat_lsp.server.wsedit import EditSupport

log = logging.getLogger("kat_lsp.server")


@dataclass(frozen=True)
class OpenDocument:
    uri: str
    path: Path
    version: int | None
    text: str


TEXT_LIMIT = 32 * 1024 * 1024
"""Largest file an edit is computed against (bigger ones count as unreadable)."""


def read_disk_text(path: Path) -> str | None:
    """A regular file's text exactly as stored (no newline translation); None when absent,
    unreadable, not a regular file (a FIFO must not block us) or above TEXT_LIMIT."""
    try:
        return read_bounded(path, TEXT_LIMIT)[0].decode("utf-8")
    except (OSError, NotRegular, TooLarge, UnicodeDecodeError):
        return None


def path_of(value: str) -> Path:
    """An absolute filesystem path from an absolute path or a `file://` uri."""
    if "://" in value or value.startswith("file:"):
        fs = to_fs_path(value) if value.startswith("file://") else None
        if not fs:
            raise invalid(f"root {value[:80]!r}: only well-formed file:// uris are supported")
        path = Path(fs)
    else:
        path = Path(value)
    if not path.is_absolute():
        raise invalid(f"root {value[:80]!r}: pass an absolute path or a file:// uri")
    return path


class KatServer(LanguageServer):
    """The kat-lsp language server."""

    protocol: KatProtocol

    def __init__(self, *, update_interval: float = 0.2) -> None:
        super().__init__("kat-lsp", __version__, protocol_cls=KatProtocol)
        self.settings: dict[str, Any] = {}
        """Configuration overrides from initializationOptions and didChangeConfiguration."""
        self.runs: dict[str, RunHandle] = {}
        self.update_interval = update_interval
        """Seconds between two `kat/runUpdate` notifications of a run (phase changes go at once)."""
        self.trusted: bool | None = None
        """Whether the client trusts the workspace (VS Code's workspace trust, or the user's
        `trustedWorkspace` option); None: the user's trusted-folders list decides."""
        self.warned_ignored: set[tuple[str, ...]] = set()

    # ----- the client ---------------------------------------------------------------
    @property
    def edit_support(self) -> EditSupport:
        encoding = str(getattr(self.workspace.position_encoding, "value", None) or "utf-16")
        return EditSupport.of(self.client_capabilities, encoding)

    def client_supports_progress(self) -> bool:
        window = self.client_capabilities.window
        return bool(window and window.work_done_progress)

    def code_action_caps(self) -> types.CodeActionClientCapabilities | None:
        text = self.client_capabilities.text_document
        return text.code_action if text else None

    def show(self, kind: types.MessageType, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def log_client(self, kind: types.MessageType, message: str) -> None:
        """A line in the client's log (window/logMessage) and in ours."""
        log.log(
            logging.WARNING if kind <= types.MessageType.Warning else logging.INFO, "%s", message
        )
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    # ----- the workspace ------------------------------------------------------------
    def folders(self) -> list[Path]:
        paths = [p for f in self.workspace.folders.values() if (p := to_fs_path(f.uri))]
        if not paths and self.workspace.root_path:
            paths = [self.workspace.root_path]
        return [Path(p) for p in paths]

    def resolve_root(self, value: str | None) -> Path:
        """`root` of a request (inside a workspace folder), else the workspace folder."""
        folders = self.folders()
        if not folders:
            raise invalid(
                "no workspace folder is open: open a folder in the editor (runs only start "
                "inside the folders the editor opened)"
            )
        root = path_of(value) if value else folders[0]
        try:
            root = root.resolve(strict=True)
            is_dir = root.is_dir()
        except (OSError, RuntimeError):  # missing, a name too long, a symlink loop
            is_dir = False
        if not is_dir:
            raise invalid(f"root {str(root)[:200]}: no such folder; pass the project's folder")
        if not self.inside_folders(root):
            raise invalid(f"root {root} is outside the workspace folders the editor opened")
        return root

    def inside_folders(self, path: Path) -> bool:
        """Whether `path` (resolved) lies in one of the workspace folders."""
        return any(path.is_relative_to(f.resolve()) for f in self.folders())

    def root_for(self, path: Path) -> Path | None:
        """The workspace folder holding `path` (the deepest), if any."""
        holders = [f for f in self.folders() if path.is_relative_to(f)]
        return max(holders, key=lambda f: len(f.parts)) if holders else None

    def open_documents(self) -> dict[Path, OpenDocument]:
        docs = {}
        for uri, doc in list(self.workspace.text_documents.items()):
            if (fs := to_fs_path(uri)) is not None:
                path = Path(fs)
                docs[path] = OpenDocument(uri, path, doc.version, doc.source)
        return docs

    async def unsaved_overrides(self, root: Path) -> dict[str, str]:
        """Open documents under `root` whose text differs from the disk: path → text."""
        texts = {p: d.text for p, d in self.open_documents().items()}

        def differing() -> dict[str, str]:
            return {
                str(p): t
                for p, t in texts.items()
                if p.resolve().is_relative_to(root) and read_disk_text(p) != t
            }

        return await asyncio.to_thread(differing)

    # ----- runs ---------------------------------------------------------------------
    def finished_runs(self) -> list[RunHandle]:
        """Runs of this session that ended with candidates, newest first."""
        done = [h for h in self.runs.values() if h.result is not None and h.result.status == "done"]
        return sorted(done, key=lambda h: h.created, reverse=True)
