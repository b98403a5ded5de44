"""Run directories under the cache dir: who owns them, removing them, pruning stale ones.

Layout: `cache_dir()/snapshots/<run_id>/` is a run's private repository and
`cache_dir()/checkouts/<run_id>/<name>/` its sample checkouts. Each run dir holds an
`owner.pid` file (pid and, on Linux, the process start time, so a recycled pid is not
mistaken for the owner). A run dir is stale when its owner is dead, or when it has no
owner file and is older than `max_age` (a crash between mkdir and writing the file).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import time
import uuid
from pathlib import Path

from kat_lsp.paths import cache_dir

OWNER_FILE = "owner.pid"
# Checkouts borrow objects from snapshots: remove them first.
KINDS = ("checkouts", "snapshots")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def validate_name(value: str, what: str) -> str:
    """Run ids and checkout names become folder names: keep them plain."""
    if not _NAME.match(value) or ".." in value:
        raise ValueError(
            f"invalid {what} {value!r}: use letters, digits, '_', '-' and '.', "
            "starting with a letter, digit or '_'"
        )
    return value


def run_dir(kind: str, run_id: str) -> Path:
    return cache_dir() / kind / validate_name(run_id, "run id")


def start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), which tells a reused pid apart."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data.rsplit(")", 1)[-1].split()[19]


def process_alive(pid: int, started: str | None = None) -> bool:
    """Whether process `pid` exists and, when `started` is known, is still the same one."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    current = start_time(pid)
    return not (started and current and current != started)


def claim(path: Path) -> None:
    """Create `path` (and parents) and mark this process as its owner."""
    path.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    tmp = path / f".{OWNER_FILE}.{uuid.uuid4().hex}"
    tmp.write_text(f"{pid}\n{start_time(pid) or ''}\n")
    tmp.replace(path / OWNER_FILE)


def owner_alive(path: Path) -> bool | None:
    """True/False for a live/dead owner; None when there is no readable owner file."""
    try:
        pid_text, _, started = (path / OWNER_FILE).read_text().partition("\n")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return process_alive(pid, started.strip() or None)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_dir(name: str, dir_fd: int | None = None) -> int:
    """Open folder `name` (never through a symlink) for listing, first making it rwx for
    us through that very inode (a sample may leave read-only or chmod 000 folders)."""
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
    handle = os.open(name, flags, dir_fd=dir_fd)
    try:
        link = f"/proc/self/fd/{handle}"
        mode = os.stat(handle).st_mode
        if mode & stat.S_IRWXU != stat.S_IRWXU:
            os.chmod(link, stat.S_IMODE(mode) | stat.S_IRWXU)
        return os.open(link, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    finally:
        os.close(handle)


def _remove_dir(parent_fd: int, name: str) -> None:
    """Delete folder `name` of `parent_fd` and all below it, without recursion (a sample
    can nest thousands of folders) and holding two fds at most: descend into the first
    subfolder left, climb back through `..` once a folder is empty."""
    fd, names = _open_dir(name, parent_fd), [name]
    while True:
        sub = None
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    sub = entry.name
                    break
                os.unlink(entry.name, dir_fd=fd)
        if sub is not None:
            child = _open_dir(sub, fd)
            os.close(fd)
            fd = child
            names.append(sub)
            continue
        if len(names) == 1:
            os.close(fd)
            os.rmdir(name, dir_fd=parent_fd)
            return
        parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
        os.close(fd)
        os.rmdir(names.pop(), dir_fd=parent)
        fd = parent


def _open_below(top: int, rel: str) -> int | None:
    """The folder `rel` below fd `top`, walked component by component (no symlinks);
    None when it is not a folder any more."""
    fd = os.dup(top)
    try:
        for part in rel.split("/") if rel else ():
            child = _open_dir(part, fd)
            os.close(fd)
            fd = child
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise
    return fd


def remove_untracked(top: Path, keep: set[str]) -> None:
    """Delete every entry below `top` that is not a path of `keep` (relative, '/'-joined)
    or a folder leading to one: ignored files, nested repositories, `.git` included.
    Never follows a symlink; a symlink or file where `keep` needs a folder is removed.
    Raises OSError when something cannot be removed."""
    dirs = {p.rsplit("/", i)[0] for p in keep for i in range(1, p.count("/") + 1)}
    root = _open_dir(os.fspath(top))
    try:
        for rel in sorted(dirs | {""}):  # a folder comes before what it holds
            fd = _open_below(root, rel)
            if fd is None:
                continue
            prefix = rel + "/" if rel else ""
            try:
                with os.scandir(fd) as scan:
                    entries = list(scan)
                for entry in entries:
                    path = prefix + entry.name
                    if entry.is_dir(follow_symlinks=False):
                        if path not in dirs:
                            _remove_dir(fd, entry.name)
                            if path in keep:  # a submodule: its folder stays, empty
                                os.mkdir(entry.name, dir_fd=fd)
                    elif path not in keep:
                        os.unlink(entry.name, dir_fd=fd)
            finally:
                os.close(fd)
    finally:
        os.close(root)


def _inside_cache(path: Path) -> bool:
    base = os.path.realpath(cache_dir())
    parent = os.path.realpath(path.parent)
    return parent == base or parent.startswith(base + os.sep)


def remove_tree(path: Path) -> None:
    """Delete a folder tree below the cache dir, even one a sample made read-only,
    chmod 000 or thousands of folders deep; a missing path is fine. Symlinks inside are
    removed, never followed; a path outside the cache dir is refused."""
    path = Path(path)
    if not _inside_cache(path):
        raise ValueError(f"refusing to remove {path}: it is not inside {cache_dir()}")
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.exists():
        parent = os.open(path.parent, _DIR_FLAGS)
        try:
            _remove_dir(parent, path.name)
        finally:
            os.close(parent)


def remove_run_checkouts(run_id: str) -> None:
    """Delete every checkout of a run (call before removing its snapshot)."""
    remove_tree(run_dir("checkouts", run_id))


def remove_run(run_id: str) -> None:
    """Delete a run's checkouts and its snapshot repository."""
    for kind in KINDS:
        remove_tree(run_dir(kind, run_id))


def prune_stale(max_age: float = 300.0, *, dry_run: bool = False) -> list[Path]:
    """Remove the run dirs (checkouts and snapshots) no live process owns; return them
    (with `dry_run`, only return them).

    Meant for start-up: a dir whose owner is alive (another server, or this process)
    is kept whatever its age; one without an owner file only after `max_age` seconds."""
    removed: list[Path] = []
    now = time.time()
    for kind in KINDS:
        base = cache_dir() / kind
        if not base.is_dir():
            continue
        for path in sorted(base.iterdir()):
            if not path.is_dir() or path.is_symlink():
                continue
            alive = owner_alive(path)
            if alive or (alive is None and now - path.stat().st_mtime < max_age):
                continue
            if not dry_run:
                remove_tree(path)
            removed.append(path)
    return removed
