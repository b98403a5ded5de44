"""The user's own config file: where it lives, safe TOML reading, trusted folders.

`config.toml` in the user config dir (`~/.config/kat-lsp/` on Linux; `KAT_CONFIG_DIR`
overrides the folder) holds `trusted_folders = ["/abs/folder", ...]`: workspaces at or
below one of them may use every setting in their `.kat.toml` / `[tool.kat]`
(`docs/reference/settings.md`). It is the user's: no workspace file can add to it, and
a sandboxed command cannot write it (everything outside its checkout is read-only).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kat_lsp.exceptions import ConfigError
from kat_lsp.safefile import NotRegular, TooLarge, read_bounded

MAX_CONFIG_BYTES = 1 << 20
"""Larger config files are refused (a repository's file could be a huge one)."""


def user_config_file(environ: Mapping[str, str] | None = None) -> Path:
    """The user's own config file (`trusted_folders`); `KAT_CONFIG_DIR` overrides its folder."""
    env = os.environ if environ is None else environ
    if folder := env.get("KAT_CONFIG_DIR"):
        return Path(folder) / "config.toml"
    from platformdirs import user_config_path

    return user_config_path("kat-lsp", appauthor=False) / "config.toml"


def read_toml(path: Path) -> dict[str, Any] | None:
    """A regular file's TOML (None when absent); no FIFO or device is opened to block."""
    try:
        raw = read_bounded(path, MAX_CONFIG_BYTES)[0]
    except (FileNotFoundError, NotADirectoryError, NotRegular):
        return None
    except TooLarge:
        raise ConfigError(
            f"{path}: larger than {MAX_CONFIG_BYTES} bytes; not a config file"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix or remove the file") from exc


def trusted_folders(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The folders the user trusts (resolved), from `trusted_folders` of the user config."""
    path = user_config_file(environ)
    data = read_toml(path) or {}
    unknown = sorted(set(data) - {"trusted_folders"})
    folders = data.get("trusted_folders", [])
    if unknown or not isinstance(folders, list) or not all(isinstance(f, str) for f in folders):
        raise ConfigError(
            f'{path}: expected only trusted_folders = ["/absolute/folder", ...]'
            + (f" (unknown keys: {', '.join(unknown)})" if unknown else "")
        )
    resolved = []
    for folder in folders:
        expanded = Path(folder).expanduser()
        if not expanded.is_absolute():
            raise ConfigError(f"{path}: trusted folder {folder!r} is not an absolute path")
        resolved.append(expanded.resolve())
    return resolved


def is_trusted(root: Path, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the user's list trusts `root`: it, or a folder above it, is listed. Both
    sides are resolved, so a symlink neither gains nor loses trust."""
    real = Path(root).resolve()
    return any(real == folder or folder in real.parents for folder in trusted_folders(environ))
