"""Running one command as its own process group: environment, timeout, output clipping.

Both executors (bubblewrap and local) start their argv through `run_process`, which
owns what they share: a new session so the whole tree can be killed at once, stdin
from /dev/null, stdout and stderr combined and read incrementally into a bounded
head + rolling tail, and the credential-free environment of `command_env`.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from kat_lsp.interfaces import CommandResult

SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
"""A variable whose name contains one of these (any case) never reaches a command."""
SECRET_PREFIXES = ("OPENAI_",)

NO_EDITOR = (
    "echo 'kat-lsp: no interactive editor here; use the str_replace_editor tool, "
    "or git commit -m MESSAGE' >&2; false"
)
"""EDITOR/VISUAL: git runs it through sh, so the message shows and the command fails."""

READ_CHUNK = 65536
DRAIN_SECONDS = 2.0
"""How long to keep reading after the process exited and its group was killed."""


def scrub_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without credentials: names matching *KEY*, *TOKEN*, *SECRET*, *PASSWORD*
    (also *PASSWD*, *CREDENTIAL*), case-insensitively, or starting with OPENAI_."""
    kept = {}
    for name, value in env.items():
        upper = name.upper()
        if any(m in upper for m in SECRET_MARKERS) or upper.startswith(SECRET_PREFIXES):
            continue
        kept[name] = value
    return kept


def command_env(
    base: Mapping[str, str] | None = None, *, home: str | None = None
) -> dict[str, str]:
    """The environment of a model command: scrubbed, non-interactive, git-ready."""
    env = scrub_env(os.environ if base is None else base)
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


class OutputCollector:
    """Decodes output as it arrives and keeps only what a capped view can show:
    the first `cap` characters and a rolling tail of at least the last `cap`."""

    def __init__(self, cap: int) -> None:
        self.cap = max(cap, 1)
        self.total = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._head: list[str] = []
        self._head_len = 0
        self._tail: deque[str] = deque()
        self._tail_len = 0

    def feed(self, data: bytes, *, final: bool = False) -> None:
        text = self._decoder.decode(data, final)
        self.total += len(text)
        room = self.cap - self._head_len
        if room > 0 and text:
            self._head.append(text[:room])
            self._head_len += len(self._head[-1])
            text = text[room:]
        if text:
            self._tail.append(text)
            self._tail_len += len(text)
            while self._tail_len - len(self._tail[0]) >= self.cap:
                self._tail_len -= len(self._tail.popleft())

    def result(self) -> tuple[str, bool]:
        """(text, clipped). Clipped text keeps head and tail around a note."""
        self.feed(b"", final=True)
        head = "".join(self._head)
        tail = "".join(self._tail)
        if self.total <= self.cap:
            return head + tail, False
        keep_head = self.cap // 2
        keep_tail = self.cap - keep_head
        dropped = self.total - keep_head - keep_tail
        note = f"\n[... {dropped} characters clipped: use head/tail/grep to see the rest ...]\n"
        return head[:keep_head] + note + (head + tail)[-keep_tail:], True


def kill_group(pgid: int) -> None:
    """SIGKILL a whole process group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _kill_spawned(spawn: asyncio.Future[asyncio.subprocess.Process]) -> None:
    if not spawn.cancelled() and spawn.exception() is None:
        kill_group(spawn.result().pid)


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
    spawn = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    )
    try:
        proc = await asyncio.shield(spawn)
    except asyncio.CancelledError:
        # Cancelled while spawning: the process may exist already; kill it once it does.
        spawn.add_done_callback(_kill_spawned)
        raise
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
    ) -> None:
        self.root = Path(root).resolve()
        self.timeout = timeout
        self.output_cap = output_cap
        self.env = command_env(env)

    def argv(self, command: str) -> list[str]:
        return ["bash", "-c", command]

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
