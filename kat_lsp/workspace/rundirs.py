"""Run directories under the cache dir: who owns them, removing them, pruning stale ones.

Layout: `cache_dir()/snapshots/<run_id>/` is a run's private repository and
`cache_dir()/checkouts/<run_id>/<name>/` its sample checkouts. Each run dir holds an
`owner.pid` file (pid and, on Linux, the process start time, so a recycled pid is not
mistaken for the owner). A run dir is stale when its owner is dead, or when it has no
owner file and is older than `max_age` (a crash between mkdir and writing the file).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def _force(func: Callable[..., Any], path: str, _exc: Any) -> None:
    """rmtree error hook: a sample may have left read-only dirs; make them writable."""
    parent = os.path.dirname(path)
    os.chmod(parent, os.stat(parent).st_mode | stat.S_IWUSR | stat.S_IXUSR)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, stat.S_IRWXU)
    func(path)


def remove_tree(path: Path) -> None:
    """Delete a folder tree, even one a sample made read-only; a missing path is fine."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=_force)


def remove_run_checkouts(run_id: str) -> None:
    """Delete every checkout of a run (call before removing its snapshot)."""
    remove_tree(run_dir("checkouts", run_id))


def remove_run(run_id: str) -> None:
    """Delete a run's checkouts and its snapshot repository."""
    for kind in KINDS:
        remove_tree(run_dir(kind, run_id))


def prune_stale(max_age: float = 300.0) -> list[Path]:
    """Remove the run dirs (checkouts and snapshots) no live process owns; return them.

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
            remove_tree(path)
            removed.append(path)
    return removed
