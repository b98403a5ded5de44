"""The token file of `kat-lsp serve --tcp`: a random secret only the user can read.

By default a new token is written at every start to `$XDG_RUNTIME_DIR/kat-lsp/
tcp-<port>.token` (else `<state dir>/serve/`), in a folder of mode 0700, the file 0600,
and removed at exit. `--token-file PATH` uses the token in PATH when it exists (it must
be a regular file of the user, not readable by others) or writes a new one there.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from kat_lsp.safefile import NotRegular, TooLarge, read_bounded


def default_token_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "kat-lsp"
    from kat_lsp.paths import state_dir

    return state_dir() / "serve"


def _private_dir(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise OSError(f"{folder} is not a folder of this user")
    os.chmod(folder, 0o700)


def read_token_file(path: Path) -> str:
    """The token of an existing file, which must be the user's own and private."""
    try:
        data, info = read_bounded(path, 4096, follow=False)
    except (NotRegular, TooLarge) as exc:
        raise OSError(f"{path} is not a token file: {exc}") from None
    if info.st_uid != os.getuid():
        raise OSError(f"{path} is not a regular file of this user")
    if info.st_mode & 0o077:
        raise OSError(f"{path} is readable by others: chmod 600 it")
    token = data.decode("ascii", "replace").strip()
    if len(token) < 16:
        raise OSError(f"{path}: the token must have at least 16 characters")
    return token


def write_token_file(path: Path) -> str:
    """A new random token in `path` (mode 0600, replacing what was there)."""
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.replace(tmp, path)
    return token


def tcp_token(token_file: Path | None, port: int) -> tuple[str, Path]:
    """The token (from `--token-file` when it exists, else a new one) and its file."""
    if token_file is not None and token_file.exists():
        return read_token_file(token_file), token_file
    path = token_file or default_token_dir() / f"tcp-{port}.token"
    if token_file is None:
        _private_dir(path.parent)
    return write_token_file(path), path
