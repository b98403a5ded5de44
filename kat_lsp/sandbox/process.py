"""Running one command as its own process group: environment, timeout, output clipping.

`LocalExecutor` runs each command through `run_process`: a new session so the whole
tree can be killed at once, stdin from /dev/null, stdout and stderr combined and read
incrementally into a bounded head + rolling tail (`OutputCollector`, shared with the
sandbox's supervisor). Both executors use the allowlisted environment of
`command_env`, and `spawn` (cancel-safe process start) for their processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kat_lsp.interfaces import CommandResult
from kat_lsp.sandbox.supervisor import DRAIN_SECONDS, READ_CHUNK, OutputCollector

__all__ = [
    "OutputCollector",
    "ProcessExecutor",
    "command_env",
    "kill_group",
    "run_process",
    "spawn",
]

ENV_ALLOW = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ",
    "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "JAVA_HOME", "GOROOT", "GOPATH",
    "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "PYENV_ROOT", "PYENV_VERSION", "NVM_DIR",
)  # fmt: skip
"""The only variables of kat-lsp's environment a command gets (plus `LC_*` and the names
of the `sandbox_env` setting): the locale, and where toolchains live (interpreters,
compilers, virtualenvs), which tests need and which hold no secrets. Everything else
(API keys, database URLs, tokens, webhooks) stays out, whatever its name."""
ENV_ALLOW_PREFIXES = ("LC_",)

NO_EDITOR = (
    "echo 'kat-lsp: no interactive editor here; use the str_replace_editor tool, "
    "or git commit -m MESSAGE' >&2; false"
)
"""EDITOR/VISUAL: git runs it through sh, so the message shows and the command fails."""


def command_env(
    base: Mapping[str, str] | None = None,
    *,
    home: str | None = None,
    allow: Sequence[str] = (),
) -> dict[str, str]:
    """The environment of a model command: the allowlisted variables of `base` (default:
    this process's environment; ENV_ALLOW, `LC_*` and the names in `allow`), made
    non-interactive and git-ready. `home` replaces HOME."""
    names = {*ENV_ALLOW, *allow}
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if k in names or k.startswith(ENV_ALLOW_PREFIXES)}
    env.update(
        PAGER="cat",
        GIT_PAGER="cat",
        MANPAGER="cat",
        TERM="dumb",
        EDITOR=NO_EDITOR,
        VISUAL=NO_EDITOR,
        GIT_EDITOR=NO_EDITOR,
        GIT_TERMINAL_PROMPT="0",
        PYTHONDONTWRITEBYTECODE="1",
        GIT_AUTHOR_NAME="kat-lsp agent",
        GIT_AUTHOR_EMAIL="agent@kat-lsp.invalid",
        GIT_COMMITTER_NAME="kat-lsp agent",
        GIT_COMMITTER_EMAIL="agent@kat-lsp.invalid",
    )
    if home is not None:
        env["HOME"] = home
    return env


def kill_group(pgid: int) -> None:
    """SIGKILL a whole process group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _kill_spawned(spawn: asyncio.Future[asyncio.subprocess.Process]) -> None:
    if not spawn.cancelled() and spawn.exception() is None:
        kill_group(spawn.result().pid)


JOIN_CGROUPS = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; '
    'exec "$@"'
)
"""sh script: write its own pid into each cgroup.procs file given, then exec the command."""


async def spawn(
    argv: Sequence[str], *, cgroup_procs: Sequence[str] = (), **options: Any
) -> asyncio.subprocess.Process:
    """`asyncio.create_subprocess_exec` in a new session. If the caller is cancelled
    while the process starts, the process group is killed as soon as it exists.
    With `cgroup_procs`, the process joins those cgroups before it execs `argv`, so that
    nothing it starts is ever outside them."""
    if cgroup_procs:
        argv = ["/bin/sh", "-c", JOIN_CGROUPS, "kat-cgroup", str(len(cgroup_procs)),
                *cgroup_procs, *argv]  # fmt: skip
    started = asyncio.ensure_future(
        asyncio.create_subprocess_exec(*argv, start_new_session=True, **options)
    )
    try:
        return await asyncio.shield(started)
    except asyncio.CancelledError:
        started.add_done_callback(_kill_spawned)
        raise


async def _read_into(stream: asyncio.StreamReader, collector: OutputCollector) -> None:
    while chunk := await stream.read(READ_CHUNK):
        collector.feed(chunk)


async def _until_exit(proc: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> None:
    """Until the process itself has exited. `proc.wait()` alone also waits for the pipe to
    close, which a background child can hold open: once the pipe is at EOF use it, else
    poll the return code (the child watcher sets it on exit)."""
    delay = 0.005
    while proc.returncode is None:
        if reader.done() and not reader.cancelled():
            await proc.wait()
            return
        await asyncio.wait({reader}, timeout=delay)
        delay = min(delay * 2, 0.1)


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float | None,
    output_cap: int,
) -> CommandResult:
    """Run argv in a new session; on timeout, or once it exits, SIGKILL its process group
    so that nothing it started (background jobs included) outlives the call."""
    started = time.monotonic()
    proc = await spawn(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    collector = OutputCollector(output_cap)
    reader = asyncio.create_task(_read_into(proc.stdout, collector))
    timed_out = False
    try:
        await asyncio.wait_for(_until_exit(proc, reader), timeout)
    except TimeoutError:
        timed_out = True
    finally:
        kill_group(proc.pid)
        # A process that left the group (setsid) may still hold the pipe: bounded wait.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader, DRAIN_SECONDS)
        await _until_exit(proc, reader)
    output, clipped = collector.result()
    return CommandResult(
        output=output,
        exit_code=None if timed_out else proc.returncode,
        timed_out=timed_out,
        duration=time.monotonic() - started,
        clipped=clipped,
    )


class ProcessExecutor:
    """An `Executor` that runs `self.argv(command)` through `run_process` in `root`."""

    def __init__(
        self,
        root: Path,
        *,
        timeout: float = 60.0,
        output_cap: int = 10_000,
        env: Mapping[str, str] | None = None,
        env_allow: Sequence[str] = (),
    ) -> None:
        self.root = Path(root).resolve()
        self.timeout = timeout
        self.output_cap = output_cap
        self.env = command_env(env, allow=env_allow)

    def argv(self, command: str) -> list[str]:
        return ["bash", "-c", command]

    async def start(self) -> None:
        """Nothing to prepare: every command starts its own process."""

    async def aclose(self) -> None:
        """Nothing to stop: every command is its own process group, gone when it returns."""

    async def run(
        self, command: str, *, timeout: float | None = None, output_cap: int | None = None
    ) -> CommandResult:
        return await run_process(
            self.argv(command),
            cwd=self.root,
            env=self.env,
            timeout=self.timeout if timeout is None else timeout,
            output_cap=self.output_cap if output_cap is None else output_cap,
        )
