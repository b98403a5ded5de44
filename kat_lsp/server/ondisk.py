"""Creating and deleting on disk the files a client could not (`kat.lsp.applyFileOperations`),
confined beneath the workspace folder at the system-call level.

The repository's content is not trusted: a committed symlink (`docs -> ~/.ssh`) or a
dangling one (`new.py -> ~/.bashrc`) must not turn a creation into a write outside the
folder. Every path is walked from the folder's descriptor one component at a time with
`O_NOFOLLOW`; files are created with `O_CREAT|O_EXCL|O_NOFOLLOW` (never through a link,
never over an existing file) and deleted with `unlinkat` in their parent's descriptor.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from kat_lsp.server.edits import FileChange

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
DELETE_LIMIT = 32 * 1024 * 1024


class Outside(Exception):
    """The path leaves the folder, or goes through a symlink or a non-folder."""


def _parts(rel: str) -> list[str]:
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or rel.startswith("/") or any(p == ".." or "\x00" in p for p in parts):
        raise Outside(rel)
    return parts


@contextlib.contextmanager
def _parent(root: Path, parts: list[str], create: bool) -> Iterator[int]:
    """A descriptor of the folder holding `parts[-1]`, walked without following links."""
    fd = os.open(root, _DIR)
    try:
        for name in parts[:-1]:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=fd)
            try:
                child = os.open(name, _DIR, dir_fd=fd)
            except OSError as exc:  # ELOOP/ENOTDIR: a symlink or a file on the way
                raise Outside("/".join(parts)) from exc
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _create(root: Path, change: FileChange) -> str | None:
    parts = _parts(change.path)
    with _parent(root, parts, create=True) as parent:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(parts[-1], flags, 0o666, dir_fd=parent)
        except FileExistsError:
            return f"{change.path} exists already; not overwritten"
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(change.new_text)
    return None


def _delete(root: Path, change: FileChange) -> str | None:
    parts = _parts(change.path)
    try:
        with _parent(root, parts, create=False) as parent:
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            fd = os.open(parts[-1], flags, dir_fd=parent)
            with os.fdopen(fd, "rb") as f:
                info = os.fstat(f.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_size > DELETE_LIMIT:
                    return f"{change.path} is not a plain text file; not deleted"
                current = f.read().decode("utf-8", "replace")
            if current != change.old_text:
                return f"{change.path} changed on disk; not deleted"
            os.unlink(parts[-1], dir_fd=parent)
    except (FileNotFoundError, Outside):
        return None
    except OSError as exc:
        return f"{change.path}: {exc.strerror}; not deleted"
    return None


def apply_on_disk(root: Path, changes: list[FileChange]) -> list[str]:
    """Create or delete the files a client could not. Blocking: run it in a thread.
    Never overwrites a file that exists, never deletes one whose text changed, never
    writes through a symlink or outside `root`; returns a note per file it left alone."""
    notes: list[str] = []
    for c in changes:
        try:
            note = _create(root, c) if c.kind == "create" else _delete(root, c)
        except Outside:
            note = f"{c.path} leads outside the workspace folder; not written"
        except OSError as exc:
            note = f"{c.path}: {exc.strerror}; not written"
        if note:
            notes.append(note)
    return notes
