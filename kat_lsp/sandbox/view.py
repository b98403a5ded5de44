"""What a sample's sandbox sees of the host besides the system: `SandboxView`.

Built by the host from data no sandboxed process could have written (the snapshot's
private repository and the user's repository location, recorded when the snapshot was
taken), never from files inside a checkout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SandboxView:
    read_only: tuple[Path, ...] = field(default_factory=tuple)
    """Folders bound read-only (e.g. the object stores a checkout borrows from)."""
    hidden: tuple[Path, ...] = field(default_factory=tuple)
    """Folders that must not be visible at all (the user's real repository)."""
