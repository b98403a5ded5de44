"""`BwrapExecutor`: model commands inside one persistent bubblewrap sandbox (DESIGN.md §5).

Read-only root, private /tmp and /run, the checkout (plus any extra writable folders)
writable, no network, new pid/ipc namespaces and session, every capability dropped,
and the sandbox dies with its parent. The sandbox starts with the first command and
stays up until `aclose`: a supervisor inside (`supervisor.py`) runs each command and
kills everything it left behind. docs/sandbox.md explains each flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from kat_lsp.interfaces import CommandResult
from kat_lsp.sandbox import supervisor
from kat_lsp.sandbox.limits import SandboxLimits
from kat_lsp.sandbox.process import command_env
from kat_lsp.sandbox.session import RESTARTED, SandboxDied, SandboxSession, died_result
from kat_lsp.sandbox.view import SandboxView

SANDBOX_HOME = "/tmp/.kat-home"
"""HOME inside the sandbox: a folder on the private /tmp (writable, kept for the sample)."""
PRIVATE_MOUNTS = ("/run", "/tmp")
"""Replaced by empty tmpfs inside; /run holds sockets (dbus, docker) a command must not reach."""
CREDENTIALS = (
    ".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube", ".docker", ".netrc",
    ".git-credentials", ".pypirc", ".npmrc", ".yarnrc", ".config/gh", ".config/hub",
    ".cargo/credentials", ".cargo/credentials.toml", ".password-store", ".local/share/keyrings",
)  # fmt: skip
"""Files and folders under the user's home that hold credentials: masked inside (an empty
tmpfs for a folder, /dev/null for a file), so that no command can show them to the model."""
NAMESPACE_FLAGS = (
    "--unshare-net",
    "--unshare-pid",
    "--unshare-ipc",
    "--new-session",
    "--die-with-parent",
    "--cap-drop",
    "ALL",
)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def git_support_paths(root: Path) -> list[Path]:
    """Folders outside `root` that git inside it reads: a worktree's git dir and common
    dir, and every object store borrowed through `objects/info/alternates` (chained)."""
    found: list[Path] = []
    git_dirs: list[Path] = []
    dotgit = root / ".git"
    if dotgit.is_file() and (text := _read(dotgit)).startswith("gitdir:"):
        git_dir = (root / text.removeprefix("gitdir:").strip()).resolve()
        found.append(git_dir)
        git_dirs.append(git_dir)
        if (common_file := git_dir / "commondir").is_file():
            common = (git_dir / _read(common_file).strip()).resolve()
            found.append(common)
            git_dirs.append(common)
    elif dotgit.is_dir():
        git_dirs.append(dotgit)
    pending = [d / "objects" for d in git_dirs]
    while pending:
        alternates = pending.pop() / "info" / "alternates"
        if not alternates.is_file():
            continue
        for line in _read(alternates).splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            store = (alternates.parent.parent / line.strip()).resolve()
            if store not in found:
                found.append(store)
                pending.append(store)
    return [p for p in found if p.exists() and not p.is_relative_to(root)]


def credential_paths() -> list[Path]:
    """The credential files and folders that exist under the user's home(s)."""
    homes = {Path(os.path.expanduser("~"))}
    with contextlib.suppress(KeyError, ImportError):
        import pwd

        homes.add(Path(pwd.getpwuid(os.getuid()).pw_dir))
    return [home / name for home in sorted(homes) for name in CREDENTIALS if (home / name).exists()]


def _hidden(path: Path) -> bool:
    return any(path.is_relative_to(mount) for mount in PRIVATE_MOUNTS)


def bwrap_argv(
    bwrap: str,
    root: Path,
    command: Sequence[str],
    *,
    extra_ro_binds: Sequence[Path] = (),
    extra_writable: Sequence[Path] = (),
) -> list[str]:
    """The full bwrap command line. Binds come after the tmpfs mounts (a tmpfs hides
    what was bound below it before), read-only ones before the writable tree."""
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for mount in PRIVATE_MOUNTS:
        if Path(mount).is_dir():
            argv += ["--tmpfs", mount]
    argv += ["--dir", SANDBOX_HOME]
    for path in credential_paths():
        if not _hidden(path) and not root.is_relative_to(path):
            argv += (
                ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
            )
    for path in extra_ro_binds:
        argv += ["--ro-bind", str(path), str(path)]
    argv += ["--bind", str(root), str(root)]
    for path in extra_writable:
        argv += ["--bind", str(path), str(path)]
    return [*argv, *NAMESPACE_FLAGS, "--chdir", str(root), *command]


def probe(bwrap: str) -> str | None:
    """Start `true` in a sandbox like the real ones; the error text if that fails."""
    with tempfile.TemporaryDirectory(prefix="kat-probe-") as tmp:
        argv = bwrap_argv(bwrap, Path(tmp).resolve(), ["true"])
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
    if done.returncode != 0:
        return (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
    return None


def supervisor_command() -> tuple[list[str], list[Path]]:
    """How to start the supervisor inside the sandbox: the interpreter (stdlib only, no
    site, isolated) and the script, plus what must be bound read-only for both to be
    visible there (they are hidden when they live under the private /tmp or /run)."""
    python = Path(os.path.realpath(sys.executable or "/usr/bin/python3"))
    script = Path(supervisor.__file__).resolve()
    # PREFIX/bin/python: the install or virtualenv it belongs to, and a venv's base install.
    wanted = [python.parent.parent, Path(sys.base_prefix).resolve()] if _hidden(python) else []
    binds = [folder for folder in dict.fromkeys(wanted) if _hidden(folder)]
    if _hidden(script):
        binds.append(script)
    return [str(python), "-I", "-S", str(script)], binds


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
        # Git metadata under /tmp would vanish behind the private /tmp: bind it back.
        implicit = [p for p in git_support_paths(self.root) if _hidden(p)]
        extra = [Path(p).resolve() for p in extra_ro_binds]
        self.ro_binds = [*implicit, *supervisor_binds, *extra]
        self.writable = [Path(p).resolve() for p in extra_writable]
        self.env = command_env(env, home=SANDBOX_HOME)
        self.view = view or SandboxView()
        self.limits = limits or SandboxLimits()
        self.env_allow = tuple(env_allow)
        self.read_paths = [Path(p) for p in read_paths]
        self._session: SandboxSession | None = None
        self._dropped: list[SandboxSession] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()

    def argv(self, command: str) -> list[str]:
        """A one-shot sandbox running `bash -c command` with the same flags (for probes
        and benchmarks; `run` uses the persistent sandbox)."""
        return self._argv(["bash", "-c", command])

    def _argv(self, command: Sequence[str]) -> list[str]:
        return bwrap_argv(
            self.bwrap,
            self.root,
            command,
            extra_ro_binds=self.ro_binds,
            extra_writable=self.writable,
        )

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
            self._dropped = [s for s in self._dropped if s.alive] + [self._session]
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
