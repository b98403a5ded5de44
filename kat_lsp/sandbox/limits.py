"""Resource limits of one sample's sandbox: memory, processes, /tmp size, file size.

`SandboxLimits` is the typed view of the `sandbox_*` limit settings; it travels to the
supervisor in its hello line (`to_wire`) and to bubblewrap (the /tmp tmpfs size).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kat_lsp.config import KatConfig

MIB = 1 << 20


@dataclass(frozen=True)
class SandboxLimits:
    """Per-sample limits; 0 means unlimited."""

    memory_mb: int = 2048
    pids: int = 512
    tmp_mb: int = 1024
    file_mb: int = 1024

    @classmethod
    def from_config(cls, config: KatConfig) -> SandboxLimits:
        return cls(
            memory_mb=config.sandbox_memory_mb,
            pids=config.sandbox_pids,
            tmp_mb=config.sandbox_tmp_mb,
            file_mb=config.sandbox_file_mb,
        )

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)


SETTING = {
    "memory": "sandbox_memory_mb",
    "pids": "sandbox_pids",
    "tmp": "sandbox_tmp_mb",
    "file": "sandbox_file_mb",
}
OUT_OF_MEMORY = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")
"""What a failed allocation prints (Python, strerror(ENOMEM), C++, bash's xmalloc)."""
TOO_LARGE = ("File too large", "File size limit exceeded")
"""strerror(EFBIG), and bash's report of a process killed by SIGXFSZ."""
NO_FORK = "Resource temporarily unavailable"
"""strerror(EAGAIN): what bash and most programs print when fork is refused."""


def observed_hits(
    limits: SandboxLimits, output: str, exit_code: int | None, tmp_full: bool, cgroup: set[str]
) -> set[str]:
    """Limits that a command's reply shows it hit, beside those its cgroup reported.
    `cgroup` names the limits a cgroup enforces: for them only the cgroup's counters count."""
    hits = set()
    if limits.file_mb > 0 and (exit_code == 153 or any(m in output for m in TOO_LARGE)):
        hits.add("file")
    if limits.tmp_mb > 0 and tmp_full:
        hits.add("tmp")
    if limits.memory_mb > 0 and "memory" not in cgroup and any(m in output for m in OUT_OF_MEMORY):
        hits.add("memory")
    if limits.pids > 0 and "pids" not in cgroup and NO_FORK in output and "fork" in output:
        hits.add("pids")
    return hits


def limit_note(limits: SandboxLimits, hits: set[str], cgroup: set[str]) -> str:
    """Plain words for the model: which limit stopped the command, its value, what to do,
    and the setting with which the user raises it."""
    lines: list[tuple[str, str]] = []
    if "memory" in hits:
        scope = "for all its processes together" if "memory" in cgroup else "per process"
        what = (
            "the kernel killed one of its processes (out of memory)"
            if "memory" in cgroup
            else "an allocation failed"
        )
        lines.append(
            (
                "memory",
                f"the sandbox's memory limit ({limits.memory_mb} MiB {scope}) was reached: {what}. "
                "Use less memory (smaller inputs, fewer parallel jobs)",
            )
        )
    if "pids" in hits:
        lines.append(
            (
                "pids",
                f"the sandbox's process limit ({limits.pids} processes and threads) was reached: "
                "starting another one failed. Run fewer processes at once",
            )
        )
    if "file" in hits:
        lines.append(
            (
                "file",
                f"a write went over the sandbox's file size limit ({limits.file_mb} MiB per file) "
                "and failed with 'File too large' (SIGXFSZ, exit status 153). Write smaller files",
            )
        )
    if "tmp" in hits:
        lines.append(
            (
                "tmp",
                f"/tmp is full: it holds at most {limits.tmp_mb} MiB (your $HOME lives there too). "
                "Delete files there, or put big files in the checkout",
            )
        )
    return "".join(
        f"[kat-lsp: {line}; the user can raise this limit with the setting {SETTING[kind]}.]\n"
        for kind, line in lines
    )
