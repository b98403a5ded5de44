"""`SandboxSession`: one running sandbox, seen from the host.

Owns the bwrap process (its own process group) with `supervisor.py` inside, the
JSON-lines pipe to it (see the supervisor's docstring for the protocol), and killing
it. Killing is synchronous (`kill`), so that it also works from a cancelled task;
reaping is left to asyncio's child watcher or to `wait_closed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kat_lsp.interfaces import CommandResult
from kat_lsp.sandbox.cgroups import SandboxCgroup
from kat_lsp.sandbox.limits import SandboxLimits, limit_note, observed_hits
from kat_lsp.sandbox.process import kill_group, spawn
from kat_lsp.sandbox.supervisor import DRAIN_SECONDS

REPLY_LIMIT = 1 << 26
"""Longest reply line accepted: output is clipped by the cap before it is sent, but
JSON escapes can make a line several times the cap."""
STDERR_TAIL = 1500
"""How much of bwrap's stderr (its own errors, a supervisor traceback) a report quotes."""

RESTARTED = (
    "[kat-lsp: the sandbox had stopped since the previous command ({reason}); this command "
    "ran in a fresh one, where /tmp and $HOME start empty again]\n"
)
NOT_STARTED = (
    "kat-lsp: the sandbox could not start ({reason}), so the command did not run. "
    "The next command tries again; if this repeats, bubblewrap cannot sandbox this "
    "checkout: tell the user.\n"
)
DIED = (
    "kat-lsp: the sandbox stopped while this command ran ({reason}), so its output is lost "
    "and whether it finished is unknown: check its effects in the repository. The next "
    "command gets a fresh sandbox (/tmp and $HOME empty again; the repository keeps its "
    "files). Do not kill processes the command did not start (kill -1, pkill, killall).\n"
)
LEFTOVER = (
    "[kat-lsp: {count} process(es) this command started could not be killed within "
    "{seconds:g} seconds (stuck in the kernel, or forking faster than they died), so the "
    "sandbox was killed with everything in it. The next command gets a fresh sandbox "
    "(/tmp and $HOME empty again; the repository keeps its files).]\n"
)
LEFTOVER_REASON = "it was killed because processes of the previous command could not be"
HUNG = (
    "kat-lsp: the sandbox stopped answering ({reason}; was its supervisor stopped with "
    "SIGSTOP?) and was killed with everything in it. The next command gets a fresh "
    "sandbox (/tmp and $HOME empty again; the repository keeps its files).\n"
)


class SandboxDied(Exception):
    """The sandbox stopped, or stopped answering, before replying to a command."""

    def __init__(self, reason: str, *, hung: bool = False, started: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hung = hung
        self.started = started
        """False when bubblewrap itself failed to set the sandbox up."""


def died_result(died: SandboxDied, duration: float) -> CommandResult:
    """The command's result when the sandbox died under it: it says what happened."""
    if died.hung:
        return CommandResult(HUNG.format(reason=died.reason), None, True, duration)
    if not died.started:
        return CommandResult(NOT_STARTED.format(reason=died.reason), None, False, duration)
    return CommandResult(DIED.format(reason=died.reason), -9, False, duration)


def _kill_if_running(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        kill_group(proc.pid)


def _teardown(proc: asyncio.subprocess.Process, cgroup: SandboxCgroup | None) -> None:
    """Kill bwrap's process group and everything in the sandbox's cgroups (no waiting)."""
    _kill_if_running(proc)
    if cgroup is not None:
        cgroup.kill()


_reapers: set[asyncio.Task[None]] = set()


async def _reap(proc: asyncio.subprocess.Process, cgroup: SandboxCgroup | None) -> None:
    """Lives as long as the sandbox. When its event loop shuts down first (asyncio.run and
    asyncio.Runner cancel every task), kill the sandbox and wait until its pipes are closed,
    while the loop can still close them: a sandbox forgotten without `aclose` leaves
    neither processes nor half-closed transports behind. Once bwrap is gone, however it
    ended, the sandbox's cgroups are removed (bounded: a process stuck in the kernel keeps
    one until the next kat-lsp start removes it)."""
    try:
        await proc.wait()
        for _ in range(1000):
            if cgroup is None or cgroup.remove():
                break
            await asyncio.sleep(0.01)
    except asyncio.CancelledError:
        _kill_if_running(proc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 5)
        if cgroup is not None:
            cgroup.remove(wait=0.5)
        raise


def _descendants(root: int) -> set[int]:
    """Host pids of every live process below `root` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    parent = int(f.read().rsplit(b") ", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def _alive(pid: int) -> bool:
    """True while a thread of `pid` runs: a thread-group leader that exited shows as a
    zombie while its other threads go on, so every task is looked at."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat", "rb") as f:
                if f.read().rsplit(b") ", 1)[1][:1] not in (b"Z", b"X"):
                    return True
        except (OSError, IndexError):
            continue
    return False


def _exit_status(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    if code > 128 and code - 128 in signal.valid_signals():
        return f"exit status {code}: the supervisor was killed by signal {code - 128}"
    return f"exit status {code}"


class SandboxSession:
    """A started sandbox: send commands with `request`, stop it with `kill`."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        limits: SandboxLimits | None = None,
        cgroup: SandboxCgroup | None = None,
    ) -> None:
        self.proc = proc
        self.limits = limits or SandboxLimits()
        self.cgroup = cgroup
        """The sandbox's own cgroups (limits, teardown), where this machine has them."""
        self._why: str | None = None
        """Why the host killed the sandbox itself, for the next command's note."""
        self._ids = itertools.count(1)
        self._doomed: set[int] = set()
        """Host pids of the sandbox's processes when it was killed, until they are gone."""
        # Safety net for an executor dropped without `aclose` (and at interpreter exit).
        self._finalizer = weakref.finalize(self, _teardown, proc, cgroup)
        if cgroup is not None:  # a sandbox dropped without `wait_closed`: kill and remove
            weakref.finalize(self, cgroup.remove, 1.0)
        reaper = asyncio.get_running_loop().create_task(_reap(proc, cgroup))
        _reapers.add(reaper)
        reaper.add_done_callback(_reapers.discard)

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        limits: SandboxLimits | None = None,
    ) -> SandboxSession:
        """Start bwrap with `argv` (which runs the supervisor) and hand it the environment
        its commands get. A sandbox that cannot start shows up at the first request.
        Where a cgroup is writable the sandbox gets its own (`cgroups.py`) from the start."""
        limits = limits or SandboxLimits()
        cgroup = SandboxCgroup.create(limits)
        try:
            proc = await spawn(
                argv,
                cgroup_procs=cgroup.procs_files if cgroup else (),
                cwd=cwd,
                env=dict(env),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=REPLY_LIMIT,
            )
        except BaseException:
            if cgroup is not None:
                cgroup.remove(wait=1.0)
            raise
        assert proc.stdin is not None
        hello = {
            "env": dict(env),
            "limits": limits.to_wire(),
            "cgroup": sorted(cgroup.limits) if cgroup else [],
        }
        proc.stdin.write(json.dumps(hello).encode() + b"\n")
        return cls(proc, limits, cgroup)

    @property
    def settled(self) -> bool:
        """bwrap has exited and no process the sandbox held is alive any more."""
        return self.proc.returncode is not None and not any(_alive(p) for p in self._doomed)

    @property
    def alive(self) -> bool:
        """False once bwrap exited, or once the host killed the sandbox for a reason
        the next command's note gives."""
        return self.proc.returncode is None and self._why is None

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def request(
        self, command: str, *, timeout: float | None, cap: int, patience: float | None
    ) -> dict[str, Any]:
        """Run one command; the supervisor's reply. Raises `SandboxDied` when the sandbox
        stops without replying, or (`hung`) when no reply came within `patience` seconds."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        ident = next(self._ids)
        line = {"id": ident, "command": command, "timeout": timeout, "cap": cap}
        try:
            self.proc.stdin.write(json.dumps(line).encode() + b"\n")
            await self.proc.stdin.drain()
            async with asyncio.timeout(patience):  # no extra task, unlike wait_for
                raw = await self.proc.stdout.readline()
        except TimeoutError:
            raise SandboxDied(
                f"the sandbox did not answer within {patience:g} seconds", hung=True
            ) from None
        except (ConnectionError, ValueError):
            raw = b""  # a broken pipe, or a reply line over REPLY_LIMIT
        try:
            reply = json.loads(raw)
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or reply.get("id") != ident:
            reason, bwrap_failed = await self.death_report()
            raise SandboxDied(reason, started=not bwrap_failed)
        self._annotate(reply)
        return reply

    def _annotate(self, reply: dict[str, Any]) -> None:
        """Tell the model in the output which limit stopped the command, and kill the
        sandbox when the supervisor could not empty it."""
        enforced = set(self.cgroup.limits) if self.cgroup else set()
        hits = self.cgroup.hits() if self.cgroup else set()
        output = str(reply.get("output", ""))
        hits |= observed_hits(
            self.limits, output, reply.get("exit_code"), bool(reply.get("tmp_full")), enforced
        )
        note = limit_note(self.limits, hits, enforced)
        leftover = int(reply.get("leftover") or 0)
        if leftover:
            self.kill()
            self._why = LEFTOVER_REASON + f" ({leftover} left)"
            note += LEFTOVER.format(count=leftover, seconds=DRAIN_SECONDS)
        if note:
            reply["output"] = output + ("" if not output or output.endswith("\n") else "\n") + note

    async def death_report(self) -> tuple[str, bool]:
        """Why the sandbox stopped (bwrap's exit status and the end of its stderr), and
        whether bubblewrap itself failed (its own messages start with "bwrap:")."""
        if self._why is not None:
            return self._why, False
        self.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 2)
        said = b""
        if self.proc.stderr is not None:
            with contextlib.suppress(TimeoutError, ValueError):
                said = await asyncio.wait_for(self.proc.stderr.read(), 1)
        text = said.decode(errors="replace").strip()
        reason = f"bwrap {_exit_status(self.proc.returncode)}"
        if text:
            reason += "; it said: " + (
                text if len(text) <= STDERR_TAIL else "..." + text[-STDERR_TAIL:]
            )
        if self.cgroup is not None and (hits := self.cgroup.hits()):
            reason += "\n" + limit_note(self.limits, hits, set(self.cgroup.limits)).strip()
        return reason, text.startswith("bwrap:")

    def kill(self) -> None:
        """SIGKILL bwrap's process group: its pid namespace, and so every process of the
        sandbox, dies with it (`--die-with-parent` on bwrap's init)."""
        if self.proc.returncode is None:
            self._doomed |= _descendants(self.proc.pid)
        self._finalizer()
        # Our end of its stdin: without closing it the transport never finishes and is
        # closed by the garbage collector, possibly after its event loop is gone.
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    async def wait_closed(self, within: float = 5.0) -> None:
        """Wait (bounded) until bwrap has exited, its pipes are closed and every process
        the sandbox held is gone: the namespace dies a moment after bwrap itself."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self.proc.wait()
                while any(_alive(pid) for pid in self._doomed):
                    await asyncio.sleep(0.01)
                while self.cgroup is not None and not self.cgroup.remove():
                    await asyncio.sleep(0.01)
        self._doomed = {pid for pid in self._doomed if _alive(pid)}
