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
