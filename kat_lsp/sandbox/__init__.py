"""Where model commands run: `make_executor` picks bubblewrap or (opted out) a plain process.

`check_sandbox` tells, before a run starts, whether the configured sandbox can work here,
with a message that says how to install bubblewrap or how to opt out.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from kat_lsp.config import KatConfig
from kat_lsp.exceptions import SandboxUnavailable
from kat_lsp.interfaces import Executor
from kat_lsp.sandbox.bwrap import BwrapExecutor, probe
from kat_lsp.sandbox.limits import SandboxLimits
from kat_lsp.sandbox.local import LocalExecutor
from kat_lsp.sandbox.process import command_env
from kat_lsp.sandbox.view import SandboxView

__all__ = [
    "BwrapExecutor",
    "LocalExecutor",
    "SandboxLimits",
    "SandboxView",
    "check_sandbox",
    "command_env",
    "make_executor",
]

OPT_OUT = (
    "or opt out explicitly (commands then run unsandboxed, with your permissions): "
    'sandbox = "none" in [tool.kat] of pyproject.toml or in .kat.toml, '
    "the --sandbox none flag, or the kat.sandbox setting of your editor"
)
INSTALL = (
    "Install it: sudo apt-get install bubblewrap (Debian, Ubuntu), "
    "sudo dnf install bubblewrap (Fedora, RHEL), sudo pacman -S bubblewrap (Arch), "
    "sudo zypper install bubblewrap (openSUSE), apk add bubblewrap (Alpine)"
)


@lru_cache(maxsize=8)
def _probe_once(bwrap: str) -> str | None:
    return probe(bwrap)


def check_sandbox(config: KatConfig) -> str | None:
    """Raise SandboxUnavailable when `config.sandbox` is "bwrap" but bubblewrap is missing
    or cannot start a sandbox on this machine. Returns the bwrap path (None when opted out)."""
    if config.sandbox == "none":
        return None
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, and kat-lsp runs the model's commands only "
            f"inside its sandbox. {INSTALL}; {OPT_OUT}."
        )
    if (error := _probe_once(bwrap)) is not None:
        raise SandboxUnavailable(
            f"bubblewrap ({bwrap}) is installed but could not start a sandbox here: {error}. "
            "It needs user namespaces: allow them (sysctl kernel.unprivileged_userns_clone=1; "
            "on Ubuntu 24.04+ an AppArmor profile for bwrap; in a container, a seccomp profile "
            f"that permits them), {OPT_OUT}."
        )
    return bwrap


def make_executor(
    root: Path,
    config: KatConfig,
    *,
    view: SandboxView | None = None,
    extra_ro_binds: Sequence[Path] = (),
    extra_writable: Sequence[Path] = (),
) -> Executor:
    """The executor for one checkout `root`, with the config's timeout, output cap and
    sandbox settings. `view` (from the snapshot) and `extra_*` add folders outside root
    (ignored when the sandbox is off)."""
    bwrap = check_sandbox(config)
    if bwrap is None:
        return LocalExecutor(
            root,
            timeout=config.command_timeout,
            output_cap=config.output_cap,
            env_allow=config.sandbox_env,
        )
    return BwrapExecutor(
        root,
        timeout=config.command_timeout,
        output_cap=config.output_cap,
        bwrap=bwrap,
        extra_ro_binds=extra_ro_binds,
        extra_writable=extra_writable,
        view=view,
        limits=SandboxLimits.from_config(config),
        env_allow=config.sandbox_env,
        read_paths=[Path(p) for p in config.sandbox_read_paths],
    )
