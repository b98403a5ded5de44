"""Retention of run folders under `<state>/runs/`: old runs go by age and by total size.

A run is removed when it is older than the age limit, then the oldest go until the
runs left fit the size limit. A run's age is the time since its folder or run.json last
changed (file times, not what run.json says). A run whose process is alive (run.json's
`pid` and `pid_started`, checked against /proc) is never removed, whatever its age; so
is anything under `runs/` that is not a plain folder with a run id for a name (symlinks
are left alone, never followed). `kat-lsp fix` prunes with the defaults at start;
`kat-lsp prune` does it on demand and says what it removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from kat_lsp.paths import runs_dir
from kat_lsp.safefile import NotRegular, TooLarge, read_bounded
from kat_lsp.workspace.rundirs import process_alive, validate_name

log = logging.getLogger(__name__)

RETENTION_DAYS = 30.0
"""Runs older than this many days are removed."""
RETENTION_MB = 1024
"""Total size of the kept runs, in MiB."""
RECORD_LIMIT = 1 << 20
"""run.json bytes read to find its process (the pid sits near the end)."""


@dataclass(frozen=True)
class RunFolder:
    path: Path
    mtime: float
    size: int
    alive: bool


@dataclass(frozen=True)
class Pruned:
    path: Path
    size: int
    reason: str


def folder_size(path: Path) -> int:
    """Bytes of the files below `path` (lstat: links are not followed)."""
    total, stack = 0, [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total


def _alive(path: Path) -> bool:
    """Whether the process that writes this run still runs (unreadable record: no)."""
    try:
        record = json.loads(read_bounded(path / "run.json", RECORD_LIMIT, follow=False)[0])
    except (OSError, NotRegular, TooLarge, ValueError):
        return False
    if not isinstance(record, dict) or record.get("status") != "running":
        return False
    pid, started = record.get("pid"), record.get("pid_started")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    return process_alive(pid, started if isinstance(started, str) else None)


def list_runs(base: Path | None = None) -> list[RunFolder]:
    """The run folders under `base` (default: the state dir's), oldest first."""
    base = base or runs_dir()
    found = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return []
    for entry in entries:
        try:
            validate_name(entry.name, "run id")
        except ValueError:
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        times = [entry.stat(follow_symlinks=False).st_mtime]
        with contextlib.suppress(OSError):
            times.append((path / "run.json").lstat().st_mtime)
        found.append(RunFolder(path, max(times), folder_size(path), _alive(path)))
    return sorted(found, key=lambda r: (r.mtime, r.path.name))


def prune_runs(
    older_than_days: float | None = RETENTION_DAYS,
    max_mb: float | None = RETENTION_MB,
    *,
    dry_run: bool = False,
    base: Path | None = None,
    now: float | None = None,
) -> list[Pruned]:
    """Remove (or with `dry_run` only name) the runs past the limits; None: no limit."""
    now = time.time() if now is None else now
    runs = list_runs(base)
    pruned: list[Pruned] = []
    kept = []
    for run in runs:
        age_days = (now - run.mtime) / 86400
        if not run.alive and older_than_days is not None and age_days > older_than_days:
            pruned.append(Pruned(run.path, run.size, f"{age_days:.1f} days old"))
        else:
            kept.append(run)
    if max_mb is not None:
        total, limit = sum(r.size for r in kept), int(max_mb * (1 << 20))
        for run in list(kept):  # oldest first
            if total <= limit:
                break
            if run.alive:
                continue
            pruned.append(Pruned(run.path, run.size, f"runs over {max_mb:g} MB"))
            total -= run.size
    if not dry_run:
        for item in pruned:
            shutil.rmtree(item.path, onerror=_log_error)
    return pruned


def _log_error(func: object, path: str, exc_info: object) -> None:
    log.warning("could not remove %s while pruning runs", path)


def describe(pruned: list[Pruned], *, dry_run: bool = False) -> str:
    """One line: how many runs and MB were (or would be) removed."""
    size = sum(p.size for p in pruned) / (1 << 20)
    verb = "would remove" if dry_run else "removed"
    return f"{verb} {len(pruned)} run(s), {size:.1f} MB"
