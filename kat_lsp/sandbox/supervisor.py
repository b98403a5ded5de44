"""The supervisor inside a sample's persistent sandbox: runs one command per request.

Started by `BwrapExecutor` as `python -I -S supervisor.py` inside bubblewrap, so it
uses the standard library only. Protocol, one JSON object per line:

    stdin, first line   {"env", "limits", "cgroup"}      the commands' environment, the
                                                         limits, those a cgroup enforces
    stdin, then         {"id", "command", "timeout", "cap"}
    stdout, per request {"id", "output", "exit_code", "timed_out", "clipped", "duration",
                         "leftover", "tmp_full"}

Each command runs as `bash -c command` in its own session (cwd = the sandbox's working
directory, stdin /dev/null, stdout and stderr into one pipe, clipped by
`OutputCollector`). When it ends or times out, every other process of the pid
namespace except this one and its ancestors is SIGKILLed, whatever its state, so nothing
a command started outlives it; "leftover" counts the processes that still ran when the
sweep gave up (the host then kills the whole sandbox). Limits the host's cgroup does not
enforce are set with setrlimit (`apply_rlimits`); "tmp_full" says /tmp has no room left.
`OutputCollector` lives here because the host side shares it.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import deque
from typing import Any

READ_CHUNK = 65536
DRAIN_SECONDS = 2.0
"""Bound on reading the pipe after every writer was killed (a process stuck in the kernel)."""
POLL_MS = 10
"""Without pidfd (kernels before 5.3), how often to check whether the command exited."""


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


def _stat(pid: int | str) -> tuple[str, int]:
    """(state letter, parent pid) from /proc/PID/stat; the name field may hold ") "."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b") ", 1)[1].split()
    return fields[0].decode(), int(fields[1])


def ancestry() -> set[int]:
    """This process and its ancestors inside the namespace (bubblewrap's init, pid 1)."""
    keep = {os.getpid()}
    pid = os.getppid()
    while pid > 0 and pid not in keep:
        keep.add(pid)
        try:
            pid = _stat(pid)[1]
        except (OSError, IndexError, ValueError):
            break
    return keep


def _runs(pid: str) -> bool:
    """True while some thread of process `pid` is neither dead nor a zombie: a thread
    group whose leader exited (shows "Z") lives on while another thread runs."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tasks:
        with contextlib.suppress(OSError, IndexError, ValueError):
            if _stat(f"{pid}/task/{tid}")[0] not in "ZX":
                return True
    return False


def kill_others(keep: set[int]) -> int:
    """SIGKILL every process of the namespace outside `keep`, whatever its state (SIGKILL
    to a zombie leader kills its live threads), until no thread of them runs (a process
    may fork while the list is read). Bounded, so that a process stuck in the kernel or a
    fork storm cannot hold the reply back: returns how many still ran at the bound."""
    delay = 0.0005
    give_up = time.monotonic() + DRAIN_SECONDS
    while True:
        alive = 0
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in keep:
                continue
            try:
                os.kill(int(name), signal.SIGKILL)
            except OSError:
                continue
            alive += _runs(name)
        if not alive or time.monotonic() >= give_up:
            return alive
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _pidfd(pid: int) -> int | None:
    """A descriptor that polls readable when `pid` exits (Linux 5.3+); None before that."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _read_some(fd: int, collector: OutputCollector) -> bool:
    """Read what the pipe holds; False at end of file."""
    data = os.read(fd, READ_CHUNK)
    collector.feed(data)
    return bool(data)


def run_command(request: dict[str, Any], env: dict[str, str], keep: set[int]) -> dict[str, Any]:
    """Run one request's command to its end or its timeout; the reply object."""
    started = time.monotonic()
    timeout = request.get("timeout")
    deadline = None if timeout is None else started + float(timeout)
    collector = OutputCollector(int(request.get("cap") or 10_000))
    with contextlib.suppress(OSError):
        os.makedirs(env.get("HOME", "/tmp"), exist_ok=True)  # a command may have removed it
    try:
        proc = subprocess.Popen(
            ["bash", "-c", request["command"]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:  # no bash, no memory, too many processes
        return _reply(request, f"kat-lsp: could not start bash: {exc}\n", 127, False, started)
    assert proc.stdout is not None
    out = proc.stdout.fileno()
    pidfd = _pidfd(proc.pid)
    poller = select.poll()
    poller.register(out, select.POLLIN)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    timed_out = False
    try:
        while proc.poll() is None:
            wait_ms = None if pidfd is not None else POLL_MS
            if deadline is not None:
                left_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
                wait_ms = left_ms if wait_ms is None else min(wait_ms, left_ms)
            events = poller.poll(wait_ms)
            if deadline is not None and time.monotonic() >= deadline and proc.poll() is None:
                timed_out = True
                break
            for fd, _ in events:
                if fd == out and not _read_some(out, collector):
                    poller.unregister(out)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        leftover = kill_others(keep)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(0.1 if leftover else None)  # bash itself may be among the stuck ones
        if pidfd is not None:
            os.close(pidfd)
    # Every writer is dead now: read the rest (bounded, in case one is stuck in the kernel).
    poller = select.poll()
    poller.register(out, select.POLLIN)
    drain_until = time.monotonic() + (0 if leftover else DRAIN_SECONDS)
    while poller.poll(max(0, int((drain_until - time.monotonic()) * 1000))):
        if not _read_some(out, collector):
            break
    proc.stdout.close()
    output, clipped = collector.result()
    exit_code = None if timed_out else proc.returncode
    reply = _reply(request, output, exit_code, timed_out, started, clipped)
    reply["leftover"] = leftover
    reply["tmp_full"] = _tmp_full()
    return reply


def _reply(
    request: dict[str, Any],
    output: str,
    exit_code: int | None,
    timed_out: bool,
    started: float,
    clipped: bool = False,
) -> dict[str, Any]:
    return {
        "id": request.get("id"),
        "output": output,
        "exit_code": exit_code,
        "timed_out": timed_out,
        "clipped": clipped,
        "duration": time.monotonic() - started,
    }


def _tmp_full() -> bool:
    """Whether /tmp (a tmpfs of limited size) has (almost) no room left."""
    try:
        st = os.statvfs("/tmp")
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < max(1 << 20, st.f_blocks * st.f_frsize // 100)


def _unprivileged_user_namespace() -> bool:
    """Whether this process runs in a user namespace of its own as a user that is not
    root outside it (RLIMIT_NPROC has no effect on real root, mapped or not)."""
    try:
        with open("/proc/self/uid_map") as f:
            ranges = [[int(x) for x in line.split()] for line in f if line.strip()]
    except (OSError, ValueError):
        return False
    if ranges == [[0, 0, 4294967295]]:
        return False
    uid = os.getuid()
    return any(
        start <= uid < start + count and outside + uid - start != 0
        for start, outside, count in ranges
    )


def apply_rlimits(limits: dict[str, Any], cgroup: list[str]) -> list[str]:
    """Set the per-process limits that every command inherits (soft and hard: a command
    cannot raise them again); the names of those set. File size and core dumps always;
    memory (RLIMIT_DATA: not RLIMIT_AS, which breaks runtimes that reserve address space)
    and processes only where no cgroup limits them. RLIMIT_NPROC counts per user, and
    per user namespace only since Linux 5.14, and real root ignores it (also when mapped
    into a user namespace: tested): only used inside a user namespace of the sandbox's
    own, as a non-root user, on a kernel that counts it there."""
    import resource

    wanted = {"core": (resource.RLIMIT_CORE, 0)}
    mib = 1 << 20
    if int(limits.get("file_mb") or 0) > 0:
        wanted["file"] = (resource.RLIMIT_FSIZE, int(limits["file_mb"]) * mib)
    if int(limits.get("memory_mb") or 0) > 0 and "memory" not in cgroup:
        wanted["memory"] = (resource.RLIMIT_DATA, int(limits["memory_mb"]) * mib)
    kernel = tuple(int(x) for x in os.uname().release.split(".")[:2] if x.isdigit())
    if (
        int(limits.get("pids") or 0) > 0
        and "pids" not in cgroup
        and _unprivileged_user_namespace()
        and kernel >= (5, 14)
    ):
        wanted["pids"] = (resource.RLIMIT_NPROC, int(limits["pids"]) + 2)
    applied = []
    for name, (which, value) in wanted.items():
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(which, (value, value))
            applied.append(name)
    return applied


def _undumpable() -> None:
    """Make /proc/SELF/fd unreadable to the commands (same uid, no CAP_SYS_PTRACE),
    so that a command cannot read requests or write replies of this protocol."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0


def main() -> None:
    _undumpable()
    requests = sys.stdin.buffer
    replies = sys.stdout
    hello = json.loads(requests.readline())
    env = {str(k): str(v) for k, v in hello["env"].items()}
    apply_rlimits(hello.get("limits") or {}, list(hello.get("cgroup") or []))
    keep = ancestry()
    for line in requests:
        if not line.strip():
            continue
        reply = run_command(json.loads(line), env, keep)
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
