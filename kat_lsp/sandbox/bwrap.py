"""`BwrapExecutor`: model commands inside bubblewrap (DESIGN.md §5).

Read-only root, private /tmp and /run, the checkout (plus any extra writable folders)
writable, no network, new pid/ipc namespaces and session, every capability dropped,
and the sandbox dies with its parent. docs/sandbox.md explains each flag.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from kat_lsp.sandbox.process import ProcessExecutor, command_env

SANDBOX_HOME = "/tmp/.kat-home"
"""HOME inside the sandbox: a folder on the private /tmp (writable, empty each command)."""
PRIVATE_MOUNTS = ("/run", "/tmp")
"""Replaced by empty tmpfs inside; /run holds sockets (dbus, docker) a command must not reach."""
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


class BwrapExecutor(ProcessExecutor):
    """Runs `bash -c command` in `root` inside a fresh bubblewrap sandbox per command."""

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
    ) -> None:
        super().__init__(root, timeout=timeout, output_cap=output_cap)
        self.bwrap = bwrap
        # Git metadata under /tmp would vanish behind the private /tmp: bind it back.
        implicit = [p for p in git_support_paths(self.root) if _hidden(p)]
        self.ro_binds = [*implicit, *(Path(p).resolve() for p in extra_ro_binds)]
        self.writable = [Path(p).resolve() for p in extra_writable]
        self.env = command_env(env, home=SANDBOX_HOME)

    def argv(self, command: str) -> list[str]:
        return bwrap_argv(
            self.bwrap,
            self.root,
            ["bash", "-c", command],
            extra_ro_binds=self.ro_binds,
            extra_writable=self.writable,
        )
