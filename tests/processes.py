"""Finding live processes from the host, for tests that check nothing outlives a command."""

from __future__ import annotations

import asyncio
from pathlib import Path


def live(entry: Path) -> bool:
    """A process (/proc/PID) with a running thread: a leader that exited shows as a zombie
    while its other threads go on, so every task counts."""
    try:
        tasks = list((entry / "task").iterdir())
    except OSError:
        return False
    for task in tasks:
        try:
            if (task / "stat").read_text().rsplit(") ", 1)[1][0] not in "ZX":
                return True
        except (OSError, IndexError):
            continue
    return False


def processes_with(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and live(entry):
            found.append(cmdline)
    return found


async def until_gone(marker: str, within: float = 10.0) -> list[str]:
    """Wait (bounded) until no live process mentions `marker`; those still there."""
    for _ in range(int(within / 0.05)):
        if not (left := processes_with(marker)):
            return left
        await asyncio.sleep(0.05)
    return processes_with(marker)


async def until_running(marker: str, within: float = 10.0) -> None:
    """Wait (bounded) until a live process mentions `marker`."""
    for _ in range(int(within / 0.05)):
        if processes_with(marker):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no process with {marker} started")


def marked_sleep(marker: str, seconds: int = 1000) -> str:
    """A shell snippet starting a sleep whose argv[0] is `marker` (findable in /proc)."""
    return f"bash -c 'exec -a {marker} sleep {seconds}'"


def descendants(pid: int) -> dict[int, str]:
    """Live processes below `pid` on the host, with their command lines."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            if live(entry):
                parents[int(entry.name)] = int(fields[1])
    found: dict[int, str] = {}
    for child, parent in parents.items():
        ancestor = parent
        while ancestor not in (0, pid) and ancestor in parents:
            ancestor = parents[ancestor]
        if ancestor == pid:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            found[child] = cmdline.decode(errors="replace")
    return found
