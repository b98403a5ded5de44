"""Helpers for tests that need real git repositories in tmp_path."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point kat-lsp's cache/state dirs and git's global config into tmp_path."""
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n"
        '[init]\n\tdefaultBranch = main\n[protocol "file"]\n\tallow = always\n'
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("KAT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KAT_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "cache"


def git(cwd: Path, *args: str) -> str:
    """Run git like a user would; return stdout. Fails the test on a non-zero exit."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def write_files(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def make_repo(path: Path, files: dict[str, str | bytes], *, commit: bool = True) -> Path:
    """A git repository with `files`, committed on branch main unless `commit` is False."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    write_files(path, files)
    if commit:
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "initial")
    return path


def tree_state(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry under root: (content hash or link target, mode, mtime_ns)."""
    state: dict[str, tuple[str, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            if path.is_symlink():
                digest = "link:" + os.readlink(path)
            elif path.is_dir():
                digest = "dir"
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            state[str(path.relative_to(root))] = (digest, st.st_mode, st.st_mtime_ns)
    return state


def worktree_files(root: Path) -> dict[str, bytes]:
    """Files of a working tree (without .git), as relative path -> content."""
    result: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            result[rel] = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
    return result
