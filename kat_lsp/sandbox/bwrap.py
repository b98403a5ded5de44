"""`BwrapExecutor`: model commands inside one persistent bubblewrap sandbox.

What the sandbox sees is `view.mount_args`: the system read-only, homes, /tmp, /run,
the user's repository and kat-lsp's folders hidden, toolchains bound back read-only,
the checkout (plus any extra writable folders) writable. No network, new user, pid and
ipc namespaces and session, every capability dropped (bounding set included), an
allowlisted environment, and the sandbox dies with its parent. The sandbox starts with
the first command and stays up until `aclose`: a supervisor inside (`supervisor.py`)
runs each command and kills everything it left behind. docs/sandbox.md explains each flag.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from kat_lsp.interfaces import CommandResult
from kat_lsp.sandbox import supervisor
from kat_lsp.sandbox.limits import MIB, SandboxLimits
from kat_lsp.sandbox.process import command_env
from kat_lsp.sandbox.session import RESTARTED, SandboxDied, SandboxSession, died_result
from kat_lsp.sandbox.view import (
    SANDBOX_HOME,
    SandboxView,
    home_locators,
    mount_args,
    toolchain_paths,
)

NAMESPACE_FLAGS = (
    "--unshare-net",
    "--unshare-pid",
    "--unshare-ipc",
    "--new-session",
    "--die-with-parent",
    "--unshare-user",
    "--disable-userns",
    "--cap-drop",
    "ALL",
)
"""`--unshare-user` makes `--cap-drop ALL` empty the bounding set too (without a user
namespace, bwrap run as root leaves it full); `--disable-userns` forbids nested ones."""


def bwrap_argv(bwrap: str, root: Path, command: Sequence[str], mounts: Sequence[str]) -> list[str]:
    """The full bwrap command line around `command`, with `mounts` from `mount_args`."""
    return [bwrap, *mounts, *NAMESPACE_FLAGS, "--chdir", str(root), *command]


def probe(bwrap: str) -> str | None:
    """Start `true` in a sandbox like the real ones; the error text if that fails."""
    with tempfile.TemporaryDirectory(prefix="kat-probe-") as tmp:
        executor = BwrapExecutor(Path(tmp), bwrap=bwrap)
        try:
            done = subprocess.run(
                executor.argv("true"), capture_output=True, text=True, timeout=30, env=executor.env
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
    if done.returncode != 0:
        return (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
    return None


def supervisor_command() -> tuple[list[str], list[Path]]:
    """How to start the supervisor inside the sandbox: the interpreter (stdlib only, no
    site, isolated) and the script, plus what must be bound read-only for both to be
    visible there (the interpreter's install comes with `toolchain_paths`)."""
    python = Path(os.path.realpath(sys.executable or "/usr/bin/python3"))
    script = Path(supervisor.__file__).resolve()
    return [str(python), "-I", "-S", str(script)], [python, script]


class BwrapExecutor:
    """Runs `bash -c command` in `root` inside one bubblewrap sandbox kept for all of
    its commands (started by the first `run`, stopped by `aclose`)."""

    reply_grace = 15.0
    """Seconds past a command's timeout before a silent sandbox counts as hung."""

    def __init__(
        self,
        root: Path,
        *,
        timeout: float = 60.0,
        output_cap: int = 10_000,
        bwrap: str = "bwrap",
        extra_ro_binds: Sequence[Path] = (),
        extra_writable: Sequence[Path] = (),
        env: Mapping[str, str] | None = None,
        view: SandboxView | None = None,
        limits: SandboxLimits | None = None,
        env_allow: Sequence[str] = (),
        read_paths: Sequence[Path] = (),
    ) -> None:
        self.root = Path(root).resolve()
        self.timeout = timeout
        self.output_cap = output_cap
        self.bwrap = bwrap
        self.supervisor, supervisor_binds = supervisor_command()
        self.view = view or SandboxView()
        self.limits = limits or SandboxLimits()
        self.env_allow = tuple(env_allow)
        self.read_paths = [Path(os.path.expanduser(str(p))).resolve() for p in read_paths]
        host_env = os.environ if env is None else env
        self.env = command_env(host_env, home=SANDBOX_HOME, allow=self.env_allow)
        self.env.update(home_locators(self.env))
        self.ro_binds = [
            *toolchain_paths(self.view, host_env),
            *supervisor_binds,
            *(Path(p).resolve() for p in self.view.read_only),
            *(Path(p).resolve() for p in extra_ro_binds),
            *(p for p in self.read_paths if os.path.exists(p)),
        ]
        self.writable = [Path(p).resolve() for p in extra_writable]
        self.mounts = mount_args(
            self.root,
            self.view,
            tmp_bytes=self.limits.tmp_mb * MIB,
            read_only=self.ro_binds,
            writable=self.writable,
        )
        self._session: SandboxSession | None = None
        self._dropped: list[SandboxSession] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()

    def argv(self, command: str) -> list[str]:
        """A one-shot sandbox running `bash -c command` with the same flags (for probes
        and benchmarks; `run` uses the persistent sandbox)."""
        return self._argv(["bash", "-c", command])

    def _argv(self, command: Sequence[str]) -> list[str]:
        return bwrap_argv(self.bwrap, self.root, command, self.mounts)

    @property
    def sandbox_pid(self) -> int | None:
        """The bwrap process of the running sandbox (None when none is running)."""
        session = self._session
        return session.pid if session is not None and session.alive else None

    def _drop(self, session: SandboxSession | None = None) -> None:
        """Kill the sandbox now (synchronously: safe in a cancelled task); the next `run`
        starts a fresh one. `aclose` waits for the dropped ones to be gone."""
        if self._session is not None and session in (None, self._session):
            self._session.kill()
            self._dropped = [s for s in self._dropped if not s.settled] + [self._session]
            self._session = None

    def _serialiser(self) -> asyncio.Lock:
        """The lock of the running event loop. A sandbox started on another loop cannot
        be driven from this one: it is dropped."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                self._drop()
                self._dropped = []
                self._lock = asyncio.Lock()
            self._loop = loop
        return self._lock

    async def _ensure_session(self) -> SandboxSession:
        if self._session is None:
            self._session = await SandboxSession.start(
                self._argv(self.supervisor), env=self.env, cwd=self.root, limits=self.limits
            )
        return self._session

    async def start(self) -> None:
        """Start the sandbox now; the supervisor boots while the caller does other work."""
        async with self._serialiser():
            await self._ensure_session()

    async def run(
        self, command: str, *, timeout: float | None = None, output_cap: int | None = None
    ) -> CommandResult:
        timeout = self.timeout if timeout is None else timeout
        cap = self.output_cap if output_cap is None else output_cap
        async with self._serialiser():
            note = ""
            if self._session is not None and not self._session.alive:
                note = RESTARTED.format(reason=(await self._session.death_report())[0])
                self._drop()
            session = await self._ensure_session()
            started = time.monotonic()
            try:
                reply = await session.request(
                    command, timeout=timeout, cap=cap, patience=timeout + self.reply_grace
                )
            except SandboxDied as died:
                self._drop(session)
                return died_result(died, time.monotonic() - started)
            except BaseException:
                self._drop(session)  # cancelled: nothing of the command may survive
                raise
        return CommandResult(
            output=note + reply["output"],
            exit_code=reply["exit_code"],
            timed_out=bool(reply["timed_out"]),
            duration=float(reply["duration"]),
            clipped=bool(reply["clipped"]),
        )

    async def aclose(self) -> None:
        """Stop the sandbox (every process in it) and wait until it is gone."""
        self._drop()
        dropped, self._dropped = self._dropped, []
        if self._loop is asyncio.get_running_loop():  # else the other loop's watcher reaps
            for session in dropped:
                await session.wait_closed()
