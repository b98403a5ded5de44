"""What a sample's sandbox sees of the host: `SandboxView` and the mount plan `mount_args`.

Default-deny for the user's data: the system is visible read-only, but every home
(`/home`, `/root`, `$HOME`, the passwd home), `/tmp`, `/var/tmp`, `/run`, the user's
repository and kat-lsp's own cache and state folders are covered by empty tmpfs mounts.
Bound back on top, read-only: the toolchains tests need (`toolchain_paths`), the
folders of `SandboxView.read_only` and the user's `sandbox_read_paths`; then, writable,
the checkout. Unix sockets of the host that stay visible are masked. Every input is the
host's own data (its environment, its config, the snapshot's records, /proc/net/unix),
never a file a sandboxed process could have written. docs/sandbox.md lists it all.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kat_lsp.paths import cache_dir, state_dir


@dataclass(frozen=True)
class SandboxView:
    """Built by the host from data no sandboxed process could have written (the
    snapshot's private repository and the user's repository location, recorded when the
    snapshot was taken), never from files inside a checkout."""

    read_only: tuple[Path, ...] = field(default_factory=tuple)
    """Folders bound read-only (e.g. the object stores a checkout borrows from)."""
    hidden: tuple[Path, ...] = field(default_factory=tuple)
    """Folders that must not be visible at all (the user's real repository)."""


SANDBOX_HOME = "/tmp/.kat-home"
"""HOME inside the sandbox: a folder on the private /tmp (writable, kept for the sample)."""
PRIVATE_TMP = "/tmp"
ALWAYS_HIDDEN = ("/home", "/root", "/var/tmp", "/run")
"""Hidden besides /tmp (writable, sized) and the homes, the user's repository and
kat-lsp's folders: empty and read-only inside."""
TOOLCHAIN_HOME_DIRS = (
    ".pyenv", ".rbenv", ".cargo", ".rustup", ".local/bin", ".local/lib", ".nvm", ".volta",
    ".bun", ".deno", "go", ".sdkman", "miniconda3", "miniforge3", "anaconda3",
)  # fmt: skip
"""Toolchain installs under a home that tests need (interpreters, compilers, packages
installed with `pip --user`): bound back read-only when they exist. Not `.local` as a
whole (`.local/share` holds application data), nor `.config` or `.cache`."""
HOME_LOCATORS = {
    "PYENV_ROOT": ".pyenv", "CARGO_HOME": ".cargo", "RUSTUP_HOME": ".rustup",
    "NVM_DIR": ".nvm", "VOLTA_HOME": ".volta", "GOPATH": "go", "SDKMAN_DIR": ".sdkman",
    "PYTHONUSERBASE": ".local",
}  # fmt: skip
"""Tools that find their install through `$HOME` (HOME is the empty sandbox home inside):
set to the real folder when it exists and the variable is not set already."""
CREDENTIALS = (
    ".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube", ".docker", ".netrc",
    ".git-credentials", ".pypirc", ".npmrc", ".yarnrc", ".config/gh", ".config/hub",
    ".cargo/credentials", ".cargo/credentials.toml", ".password-store", ".local/share/keyrings",
)  # fmt: skip
"""Credential files under a home: masked (an empty tmpfs for a folder, /dev/null for a
file) when a folder bound back (a toolchain, a read path) contains them."""
MAX_SOCKET_MASKS = 256


def homes() -> list[Path]:
    """The user's home folders: `$HOME` and the passwd entry's home (resolved)."""
    found = [Path(os.path.expanduser("~"))]
    with contextlib.suppress(KeyError, ImportError):
        import pwd

        found.append(Path(pwd.getpwuid(os.getuid()).pw_dir))
    return list(dict.fromkeys(Path(os.path.realpath(h)) for h in found))


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # e.g. no permission to look
        return False


def _under(path: Path, folders: Iterable[Path]) -> bool:
    return any(path.is_relative_to(f) for f in folders)


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """`paths` without those inside another one, parents first."""
    kept: list[Path] = []
    for path in sorted(set(paths), key=lambda p: (len(p.parts), str(p))):
        if not _under(path, kept):
            kept.append(path)
    return kept


def hidden_paths(view: SandboxView) -> list[Path]:
    """Every folder covered by an empty tmpfs inside (outermost only, parents first)."""
    wanted = [*(_real(p) for p in (PRIVATE_TMP, *ALWAYS_HIDDEN)), *_sensitive(view)]
    tmp = Path(PRIVATE_TMP)
    # Never "/" or another ancestor of the private /tmp (a HOME=/ service account).
    return _outermost(p for p in wanted if p == tmp or (_is_dir(p) and not tmp.is_relative_to(p)))


def _private(view: SandboxView) -> list[Path]:
    """The user's repository and kat-lsp's cache and state folders."""
    return [*(_real(p) for p in view.hidden), _real(cache_dir()), _real(state_dir())]


def _sensitive(view: SandboxView) -> list[Path]:
    return [*homes(), *_private(view)]


def _safe(path: Path, sensitive: Sequence[Path]) -> bool:
    """A folder that may be bound back whole: it holds no home, user repo or kat folder."""
    return path != Path("/") and not any(s.is_relative_to(path) for s in sensitive)


def toolchain_paths(view: SandboxView, env: Mapping[str, str]) -> list[Path]:
    """Toolchain folders to bind back read-only: the running Python's prefix and base
    prefix, $VIRTUAL_ENV and $CONDA_PREFIX, the install of every PATH entry (`X` for
    `X/bin`), and TOOLCHAIN_HOME_DIRS. Folders that would contain a home, the user's
    repository or kat-lsp's folders are narrowed (to `bin`/`lib`, or the PATH entry)."""
    sensitive = _sensitive(view)
    candidates: list[tuple[Path, list[Path]]] = []
    python = _real(sys.executable or "/usr/bin/python3")
    for prefix in (python.parent.parent, _real(sys.prefix), _real(sys.base_prefix)):
        candidates.append((prefix, [prefix / "bin", prefix / "lib", prefix / "lib64"]))
    for name in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        if (value := env.get(name)) and os.path.isabs(value):
            venv = _real(value)
            candidates.append((venv, [venv / "bin", venv / "lib"]))
            base = _real(venv / "bin" / "python").parent.parent  # a venv's base install
            candidates.append((base, [base / "bin", base / "lib"]))
    for entry in env.get("PATH", "").split(os.pathsep):
        if os.path.isabs(entry):
            real = _real(entry)
            install = real.parent if real.name in ("bin", "sbin") else real
            broad = install.name in (".local", ".config", ".cache")
            candidates.append((real if broad else install, [real]))
    for home in homes():
        candidates += [(home / rel, []) for rel in TOOLCHAIN_HOME_DIRS]
    found: list[Path] = []
    for path, narrower in candidates:
        for choice in [path] if _safe(path, sensitive) else narrower:
            if _safe(choice, sensitive) and _is_dir(choice):
                found.append(choice)
    return found


def home_locators(env: Mapping[str, str]) -> dict[str, str]:
    """HOME_LOCATORS values for toolchains under the real home, where `env` lacks them."""
    home = homes()[0]
    return {
        name: str(home / rel)
        for name, rel in HOME_LOCATORS.items()
        if name not in env and _is_dir(home / rel)
    }


def host_sockets() -> list[Path]:
    """Path-bound unix sockets of the host's network namespace (kernel data)."""
    found: list[Path] = []
    with contextlib.suppress(OSError), open("/proc/net/unix", encoding="utf-8") as table:
        for line in table.readlines()[1:]:
            fields = line.split(maxsplit=7)
            if len(fields) == 8 and fields[7].startswith("/"):
                found.append(Path(fields[7].rstrip("\n")))
    return found


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.stat().st_mode)
    except OSError:
        return False


def mount_args(
    root: Path,
    view: SandboxView,
    *,
    tmp_bytes: int,
    read_only: Sequence[Path],
    writable: Sequence[Path] = (),
) -> list[str]:
    """The filesystem part of the bwrap command line. Order matters: a tmpfs hides what
    was bound below it before, so tmpfs mounts come first, then read-only binds (parents
    first), then the writable tree, then masks; read-only remounts last."""
    hidden = hidden_paths(view)
    argv = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    if tmp_bytes > 0:
        argv += ["--size", str(tmp_bytes)]
    argv += ["--tmpfs", PRIVATE_TMP, "--dir", SANDBOX_HOME]
    empty = [p for p in hidden if p != Path(PRIVATE_TMP)]
    for path in empty:
        argv += ["--tmpfs", str(path)]
    binds = _outermost(p for p in read_only if _under(p, hidden))
    argv += _ro_binds(binds)
    # A read path may contain the user's repository or kat-lsp's folders: hide them again.
    again = _outermost(p for p in _private(view) if _under(p, binds))
    for path in again:
        argv += ["--tmpfs", str(path)]
    empty += again
    argv += _ro_binds(_outermost(p for p in read_only if _under(p, again)))
    for home in homes():
        for rel in CREDENTIALS:
            secret = home / rel
            if _under(secret, binds) and os.path.lexists(secret):
                if _is_dir(secret) and not secret.is_symlink():
                    argv += ["--tmpfs", str(secret)]
                    empty.append(secret)
                else:
                    argv += ["--ro-bind", "/dev/null", str(secret)]
    trees = [root, *writable]
    for path in trees:
        argv += ["--bind", str(path), str(path)]
    masked = 0
    for sock in dict.fromkeys(_real(s) for s in host_sockets()):
        hidden_here = _under(sock, hidden) and not _under(sock, binds)
        visible = not hidden_here and not _under(sock, trees)
        if masked < MAX_SOCKET_MASKS and visible and _is_socket(sock):
            argv += ["--ro-bind", "/dev/null", str(sock)]
            masked += 1
    for path in empty:
        if path not in trees:  # else it would remount the checkout bound at the same place
            argv += ["--remount-ro", str(path)]
    return argv


def _ro_binds(paths: Iterable[Path]) -> list[str]:
    argv: list[str] = []
    for path in paths:
        argv += ["--ro-bind", str(path), str(path)]
    return argv
