"""Reading the user's repository, never writing it: where it is, its HEAD, and the
settings a snapshot must share with it.

Only read-only git commands run here (`rev-parse`, `config --list`), with
`GIT_OPTIONAL_LOCKS=0` and the hardened settings of git.py (no fsmonitor, no hooks),
but with the user's own system and global config readable: it is the user's, and it
says where their ignore and attribute files are. Everything that writes names a private
git dir and runs without the user's global config: the settings that change what is
recorded (COPIED_CORE) are copied into that private config instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kat_lsp.workspace.git import WorkspaceError, run_git

# Settings of the user's repository that change what `git add` records.
COPIED_CORE = (
    "autocrlf", "eol", "safecrlf", "filemode", "symlinks", "ignorecase",
    "precomposeunicode", "excludesfile", "attributesfile",
)  # fmt: skip


@dataclass(frozen=True)
class UserRepo:
    """Where a folder's repository keeps things (a user worktree has its own git dir)."""

    toplevel: Path
    git_dir: Path
    common_dir: Path
    prefix: str
    object_format: str
    head: str | None


def locate(root: Path) -> UserRepo | None:
    """The repository `root` belongs to, read-only; None for a plain folder."""
    args = [
        "rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir",
        "--show-prefix", "--show-object-format",
    ]  # fmt: skip
    proc = run_git(args, cwd=root, check=False, user_config=True)
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip()
        if "not a git repository" in stderr:
            return None
        raise WorkspaceError(f"cannot read the git repository of {root}: {stderr}")
    top, git_dir, common, prefix, fmt = proc.stdout.decode(errors="surrogateescape").split("\n")[:5]
    head = run_git(
        ["rev-parse", "-q", "--verify", "HEAD^{commit}"], cwd=root, check=False, user_config=True
    )
    return UserRepo(
        toplevel=Path(top).resolve(),
        git_dir=Path(git_dir),
        common_dir=(root / common).resolve(),
        prefix=prefix,
        object_format=fmt or "sha1",
        head=head.stdout.decode().strip() if head.returncode == 0 else None,
    )


def user_core_config(root: Path) -> dict[str, str]:
    """The user's settings (all scopes) that change what `git add` records."""
    out = run_git(["config", "-z", "--list"], cwd=root, check=False, user_config=True).stdout
    core: dict[str, str] = {}
    for record in out.decode(errors="surrogateescape").split("\0"):
        key, _, value = record.partition("\n")
        section, _, name = key.lower().partition(".")
        if section == "core" and name in COPIED_CORE:
            core[name] = value
    return core
