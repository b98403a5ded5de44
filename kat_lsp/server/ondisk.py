"""Creating and deleting on disk the files a client could not (`kat.lsp.applyFileOperations`),
confined beneath the workspace folder at the system-call level.

The repository's content is not trusted: a committed symlink (`docs -> ~/.ssh`) or a
dangling one (`new.py -> ~/.bashrc`) must not turn a creation into a write outside the
folder. Every operation goes through `kat_lsp.workspace.confined` (openat2 beneath the
folder, or a descriptor walk with `O_NOFOLLOW`): files are created exclusively (never
through a link, never over an existing file) and deleted in their parent's descriptor.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from kat_lsp.server.edits import FileChange
from kat_lsp.workspace import confined

DELETE_LIMIT = 32 * 1024 * 1024


def _create(root: Path, change: FileChange) -> str | None:
    rel = confined.relative(root, change.path)
    confined.mkdirs_beneath(root, posixpath.dirname(rel))
    try:
        confined.write_atomic(root, rel, change.new_text.encode("utf-8"), exclusive=True)
    except FileExistsError:
        return f"{change.path} exists already; not overwritten"
    return None


def _delete(root: Path, change: FileChange) -> str | None:
    rel = confined.relative(root, change.path)
    try:
        current, _ = confined.read_regular(root, rel, DELETE_LIMIT)
    except FileNotFoundError:
        return None
    except (confined.NotRegular, confined.TooLarge):
        return f"{change.path} is not a plain text file; not deleted"
    if current.decode("utf-8", "replace") != change.old_text:
        return f"{change.path} changed on disk; not deleted"
    confined.unlink_beneath(root, rel)
    return None


def apply_on_disk(root: Path, changes: list[FileChange]) -> list[str]:
    """Create or delete the files a client could not. Blocking: run it in a thread.
    Never overwrites a file that exists, never deletes one whose text changed, never
    writes through a symlink or outside `root`; returns a note per file it left alone."""
    notes: list[str] = []
    for c in changes:
        try:
            note = _create(root, c) if c.kind == "create" else _delete(root, c)
        except confined.ConfinedError:
            note = f"{c.path} leads outside the workspace folder; not written"
        except OSError as exc:
            note = f"{c.path}: {exc.strerror}; not written"
        if note:
            notes.append(note)
    return notes
