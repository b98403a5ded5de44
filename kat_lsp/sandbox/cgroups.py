"""Cgroups for sandboxes: one cgroup per sample's sandbox, for limits and for teardown.

`support()` finds what this machine lets kat-lsp use, below the cgroup kat-lsp itself
runs in (so that limits set on kat-lsp still apply):

- cgroup v2 where it is writable (systemd user delegation, or root): `cgroup.kill` kills
  everything in the sandbox at teardown, and `memory.max` / `pids.max` limit it when the
  memory and pids controllers are delegated. Under the "no internal processes" rule,
  kat-lsp first moves itself into a leaf (`kat-lsp-self`) when it is alone in its cgroup.
- cgroup v1 `memory` and `pids` hierarchies where they are writable (`memory.limit_in_bytes`,
  `pids.max`), beside a controller-less v2 mount used only for `cgroup.kill`.
- nothing writable, or KAT_SANDBOX_CGROUPS=off: the supervisor's setrlimit limits only.

`SandboxCgroup.create` makes the cgroups of one sandbox, `kill` / `remove` end them;
cgroups left by kat-lsp processes that died are removed when the next one is made.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from kat_lsp.sandbox.limits import MIB, SandboxLimits

SWITCH = "KAT_SANDBOX_CGROUPS"
"""Set to "off" to use no cgroups at all (the setrlimit fallback)."""
SELF_LEAF = "kat-lsp-self"
OVERHEAD_TASKS = 3
"""Tasks of the sandbox itself counted by pids.max: bwrap, its init, the supervisor."""
NAME = re.compile(r"kat-lsp-(\d+)-\d+")


@dataclass
class Support:
    """Where sandbox cgroups can be made: a v2 base directory (teardown with cgroup.kill,
    plus the controllers enabled for its children) and v1 base directories by controller."""

    v2: Path | None = None
    v2_controllers: frozenset[str] = frozenset()
    v1: dict[str, Path] = field(default_factory=dict)

    def limiter(self, kind: str) -> str | None:
        """Which cgroup version limits `kind` ("memory", "pids"); None: none does."""
        if kind in self.v2_controllers:
            return "v2"
        return "v1" if kind in self.v1 else None


def _mounts() -> list[tuple[str, Path, set[str]]]:
    """(fstype, mount point, super options) of every cgroup mount."""
    found = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            head, _, tail = line.partition(" - ")
            fstype, _source, options = [*tail.split(), "", ""][:3]
            if fstype in ("cgroup", "cgroup2"):
                point = head.split()[4].replace("\\040", " ")
                found.append((fstype, Path(point), set(options.split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup path by hierarchy: "" for v2, a controller name for v1."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/self/cgroup") as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            for name in names.split(",") if names else [""]:
                paths[name] = path
    return paths


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _enable_v2(base: Path) -> frozenset[str]:
    """Controllers kat-lsp's sandboxes can use below `base`, enabling them if needed."""
    wanted = {"memory", "pids"}
    enabled = set(_read(base / "cgroup.subtree_control").split()) & wanted
    available = set(_read(base / "cgroup.controllers").split()) & wanted
    if available - enabled:
        procs = set(_read(base / "cgroup.procs").split())
        try:
            if procs and procs != {str(os.getpid())}:
                raise OSError("other processes share kat-lsp's cgroup")
            if procs:  # no internal processes: kat-lsp itself goes into a leaf first
                (base / SELF_LEAF).mkdir(exist_ok=True)
                (base / SELF_LEAF / "cgroup.procs").write_text(str(os.getpid()))
            (base / "cgroup.subtree_control").write_text(
                " ".join("+" + c for c in sorted(available - enabled))
            )
            enabled = available
        except OSError:
            pass
    return frozenset(enabled)


@functools.lru_cache(maxsize=4)
def _detect(switch: str) -> Support:
    found = Support()
    if switch.strip().lower() in ("off", "0", "no", "false"):
        return found
    own = _own_paths()
    for fstype, point, options in _mounts():
        if fstype == "cgroup2" and found.v2 is None and "" in own:
            base = point / own[""].lstrip("/")
            if os.access(base, os.W_OK) and (base / "cgroup.procs").exists():
                found.v2 = base
                found.v2_controllers = _enable_v2(base)
        for kind in ("memory", "pids"):
            if fstype == "cgroup" and kind in options and kind in own and kind not in found.v1:
                base = point / own[kind].lstrip("/")
                if os.access(base, os.W_OK) and (base / "cgroup.procs").exists():
                    found.v1[kind] = base
    for kind in found.v2_controllers:
        found.v1.pop(kind, None)
    return found


def support() -> Support:
    """What this machine offers (detected once per value of KAT_SANDBOX_CGROUPS)."""
    return _detect(os.environ.get(SWITCH, ""))


def describe_limits(limits: SandboxLimits | None = None) -> str:
    """One line: which mechanism enforces each limit here, and how sandboxes are torn down."""
    limits = limits or SandboxLimits()
    found = support()

    def how(kind: str, fallback: str) -> str:
        version = found.limiter(kind)
        return f"cgroup {version}" if version else fallback

    def size(mb: int, unit: str = "MiB") -> str:
        return "unlimited" if mb <= 0 else f"{mb} {unit}"

    parts = [
        f"memory {size(limits.memory_mb)} ({how('memory', 'setrlimit RLIMIT_DATA, per process')})",
        f"processes {size(limits.pids, 'tasks')} "
        f"({how('pids', 'RLIMIT_NPROC in a non-root user namespace, else none')})",
        f"/tmp {size(limits.tmp_mb)} (tmpfs size)",
        f"file size {size(limits.file_mb)} (setrlimit RLIMIT_FSIZE)",
    ]
    teardown = (
        "cgroup.kill (cgroup v2)"
        if found.v2
        else "killing the pid namespace" + (" and its cgroups" if found.v1 else "")
    )
    return "sandbox limits: " + ", ".join(parts) + f"; teardown: {teardown}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_made = 0
_swept: set[Path] = set()


def _sweep_stale(base: Path) -> None:
    """Remove the empty sandbox cgroups below `base` whose kat-lsp process is gone (its
    sandboxes died with it). One that still holds processes is left alone: its owner may
    live in another pid namespace."""
    for entry in base.iterdir():
        match = NAME.fullmatch(entry.name)
        if match and not _pid_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                entry.rmdir()


def _kill_dir(path: Path) -> None:
    if (path / "cgroup.kill").exists():
        with contextlib.suppress(OSError):
            (path / "cgroup.kill").write_text("1")
            return
    for pid in _read(path / "cgroup.procs").split():
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def _kill_and_remove(path: Path, wait: float = 0.0) -> bool:
    """SIGKILL what is left in the cgroup at `path` and remove it; False if it stays."""
    give_up = time.monotonic() + wait
    while True:
        _kill_dir(path)
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() >= give_up:
                return False
        time.sleep(0.01)


class SandboxCgroup:
    """The cgroups of one sandbox (one per hierarchy used); bwrap joins them all."""

    def __init__(self, dirs: dict[str, Path], limits: dict[str, str]) -> None:
        self.dirs = dirs
        """"v2", "memory", "pids" -> this sandbox's cgroup in that hierarchy."""
        self.limits = limits
        """"memory", "pids" -> "v2" or "v1": the limits these cgroups enforce."""
        self._last = self._counters()

    @classmethod
    def create(cls, limits: SandboxLimits) -> SandboxCgroup | None:
        """New cgroups with `limits` set; None where no cgroup is writable."""
        global _made
        found = support()
        wanted: dict[str, Path] = {}
        if found.v2 is not None:
            wanted["v2"] = found.v2
        if limits.memory_mb > 0 and "memory" in found.v1:
            wanted["memory"] = found.v1["memory"]
        if limits.pids > 0 and "pids" in found.v1:
            wanted["pids"] = found.v1["pids"]
        if not wanted:
            return None
        _made += 1
        name = f"kat-lsp-{os.getpid()}-{_made}"
        dirs: dict[str, Path] = {}
        enforced: dict[str, str] = {}
        try:
            for kind, base in wanted.items():
                if base not in _swept:
                    _swept.add(base)
                    _sweep_stale(base)
                path = base / name
                if path.exists():  # left by an earlier process with our pid
                    _kill_and_remove(path, wait=0.5)
                path.mkdir()
                dirs[kind] = path
            enforced = _set_limits(dirs, limits, found)
        except OSError:
            for path in dirs.values():
                _kill_and_remove(path)
            return None
        return cls(dirs, enforced)

    @property
    def procs_files(self) -> list[str]:
        """The `cgroup.procs` files a process writes its pid into to join."""
        return [str(path / "cgroup.procs") for path in self.dirs.values()]

    def _counters(self) -> dict[str, int]:
        found = {}
        for kind, version in self.limits.items():
            path = self.dirs.get("v2" if version == "v2" else kind)
            if path is None:  # removed already
                continue
            if kind == "memory":
                events = "memory.events" if version == "v2" else "memory.oom_control"
                found[kind] = _field(_read(path / events), "oom_kill")
            else:
                found[kind] = _field(_read(path / "pids.events"), "max")
        return found

    def hits(self) -> set[str]:
        """Limits hit since the previous call: "memory" (an OOM kill), "pids" (a fork
        refused at pids.max)."""
        now = self._counters()
        hit = {kind for kind, count in now.items() if count > self._last.get(kind, 0)}
        self._last = now
        return hit

    def kill(self) -> None:
        """SIGKILL every process in the sandbox's cgroups."""
        for path in self.dirs.values():
            _kill_dir(path)

    def remove(self, wait: float = 0.0) -> bool:
        """Kill what is left and remove the cgroups; False if one could not be removed yet."""
        left = {k: p for k, p in self.dirs.items() if not _kill_and_remove(p, wait)}
        self.dirs = left
        return not left


def _field(text: str, name: str) -> int:
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name and value.strip().isdigit():
            return int(value)
    return 0


def _set_limits(dirs: dict[str, Path], limits: SandboxLimits, found: Support) -> dict[str, str]:
    enforced: dict[str, str] = {}
    memory = str(limits.memory_mb * MIB)
    pids = str(limits.pids + OVERHEAD_TASKS)
    if limits.memory_mb > 0 and "memory" in found.v2_controllers:
        (dirs["v2"] / "memory.max").write_text(memory)
        with contextlib.suppress(OSError):
            (dirs["v2"] / "memory.swap.max").write_text("0")
        enforced["memory"] = "v2"
    elif "memory" in dirs:
        (dirs["memory"] / "memory.limit_in_bytes").write_text(memory)
        with contextlib.suppress(OSError):
            (dirs["memory"] / "memory.memsw.limit_in_bytes").write_text(memory)
        enforced["memory"] = "v1"
    if limits.pids > 0 and "pids" in found.v2_controllers:
        (dirs["v2"] / "pids.max").write_text(pids)
        enforced["pids"] = "v2"
    elif "pids" in dirs:
        (dirs["pids"] / "pids.max").write_text(pids)
        enforced["pids"] = "v1"
    return enforced
