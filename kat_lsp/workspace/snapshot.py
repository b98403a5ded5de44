"""The base of a run (docs/architecture/workspace.md): the workspace as the user sees
it, frozen as one commit in a private repository under `cache_dir()/snapshots/<run_id>/`.

Git workspaces: the private bare repository starts from a copy of the user's index
(for its stat cache, so only changed files are hashed); `git add -A` runs with the
private git dir and the user's work tree, unsaved editor buffers are written as blobs
into the private index, `write-tree` makes the tree; only then does the repository
borrow the user's objects through `objects/info/alternates` (git touches the mtime of
a borrowed object it is asked to write), and `commit-tree` makes the snapshot commit
(parent: the user's HEAD). The user's `.git` is only ever read (userrepo.py): no
stash, no checkout, no lock, no index refresh, no `worktrees/` entry. Git runs
hardened (git.py) with the private repository as git dir: neither the user's global
config nor the repository's runs anything (fsmonitor, hooks, filter drivers); the core
settings that change what is recorded are copied into the private config, so a file
under a `filter=` attribute is recorded unfiltered.

Folders that are not git repositories: the same without alternates and without a
parent, everything not ignored by `.gitignore` files or DEFAULT_EXCLUDES.

A root below a repository's top level snapshots only that folder: the snapshot tree is
the folder's subtree, so paths of patches and of the agent's shell are relative to the
root (the commit then has no parent, since its tree is not shaped like HEAD's).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kat_lsp.sandbox.view import SandboxView
from kat_lsp.workspace import rundirs
from kat_lsp.workspace.git import (
    GitError,
    WorkspaceError,
    git_text,
    init_git_dir,
    object_dir_chain,
    run_git,
    set_alternates,
    write_object,
    write_ref,
)
from kat_lsp.workspace.userrepo import locate, user_core_config

DEFAULT_EXCLUDES = (
    ".git/", ".hg/", ".svn/", ".venv/", "venv/", "env/", "node_modules/", "__pycache__/",
    "*.pyc", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", ".tox/", ".nox/",
    ".DS_Store",
)  # fmt: skip
"""Ignored in folders that are not git repositories (git repositories follow their own
ignore rules only): virtualenvs, dependency trees, caches, other VCS metadata."""

SNAPSHOT_REF = "refs/heads/snapshot"
PRIVATE_CONFIG = {
    "gc": {"auto": "0"},
    "commit": {"gpgsign": "false"},
    "advice": {"addEmbeddedRepo": "false", "addIgnoredFile": "false"},
}


@dataclass(frozen=True)
class Snapshot:
    """One frozen workspace. Paths in it are relative to `root`."""

    root: Path
    """The user's folder (resolved)."""
    repo: Path
    """The private bare repository holding the snapshot commit."""
    commit: str
    run_id: str
    is_git: bool
    toplevel: Path | None = None
    """The user's repository top level (git workspaces)."""
    prefix: str = ""
    """`root` relative to `toplevel` ('' or 'a/b/')."""
    head: str | None = None
    """The user's HEAD commit when there is one."""
    object_format: str = "sha1"
    overridden: tuple[str, ...] = ()
    """Paths whose content came from unsaved editor buffers."""
    core_config: tuple[tuple[str, str], ...] = ()
    """The user's `core.*` settings that change what git records (autocrlf, filemode, ...)."""

    @property
    def object_dirs(self) -> list[Path]:
        """Object dirs a checkout reads (never writes): a sandbox that hides parts of the
        filesystem (e.g. `--tmpfs /tmp`) must bind them read-only."""
        return object_dir_chain(self.repo / "objects")

    def sandbox_view(self) -> SandboxView:
        """What a sandbox over a checkout of this snapshot must see and must not: the
        object stores it borrows from (read-only), the user's repository (hidden).
        Derived from the host's own records, never from a checkout."""
        user_tree = self.toplevel or self.root
        return SandboxView(read_only=tuple(self.object_dirs), hidden=(user_tree,))

    def read_file(self, relpath: str | Path) -> bytes | None:
        """A file's content at the snapshot (a symlink's target text); None if absent."""
        path = Path(relpath).as_posix().lstrip("/")
        proc = run_git(
            ["cat-file", "blob", f"{self.commit}:{path}"],
            env={"GIT_DIR": str(self.repo)},
            check=False,
        )
        return proc.stdout if proc.returncode == 0 else None

    def files(self) -> list[str]:
        """Every path in the snapshot (submodules and nested repositories included)."""
        out = run_git(
            ["ls-tree", "-r", "-z", "--name-only", "--full-tree", self.commit],
            env={"GIT_DIR": str(self.repo)},
        ).stdout
        return [p.decode(errors="surrogateescape") for p in out.split(b"\0") if p]

    def remove(self) -> None:
        """Delete the private repository (remove the run's checkouts first)."""
        rundirs.remove_tree(self.repo)


def _copy_if_exists(src: Path, dst: Path) -> None:
    if src.is_file():
        shutil.copy2(src, dst)  # keeps mtime: git's racy-clean checks stay right


def take_snapshot(
    root: Path, *, overrides: Mapping[str | Path, str] | None = None, run_id: str
) -> Snapshot:
    """Freeze `root` as the user sees it (plus `overrides`: path -> unsaved buffer text).

    Override paths may be absolute or relative to `root`, and may name files that do not
    exist yet; paths outside `root`, inside `.git`, or ignored and untracked are skipped.
    Blocking (git runs): call it from a worker thread."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise WorkspaceError(f"cannot snapshot {root}: not a folder; open a folder first")
    repo = rundirs.run_dir("snapshots", run_id)
    if repo.exists():
        raise WorkspaceError(f"snapshot {repo} already exists: use a new run id")
    rundirs.claim(repo)
    try:
        return _build(root, repo, run_id, overrides or {})
    except BaseException:
        rundirs.remove_tree(repo)
        raise


def _build(root: Path, repo: Path, run_id: str, overrides: Mapping[str | Path, str]) -> Snapshot:
    user = locate(root)
    core = user_core_config(root) if user else {}
    fmt = user.object_format if user else "sha1"
    top, prefix = (user.toplevel, user.prefix) if user else (root, "")
    if user:
        exclude = user.common_dir / "info" / "exclude"
        excludes = exclude.read_bytes() if exclude.is_file() else b""
    else:
        excludes = "".join(f"{p}\n" for p in DEFAULT_EXCLUDES).encode()
    init_git_dir(
        repo, bare=True, object_format=fmt, config={**PRIVATE_CONFIG, "core": core},
        exclude=excludes, head_ref=SNAPSHOT_REF,
    )  # fmt: skip
    if user:
        _copy_if_exists(user.common_dir / "info" / "attributes", repo / "info" / "attributes")
        _copy_if_exists(user.git_dir / "index", repo / "index")
        for shared in user.git_dir.glob("sharedindex.*"):  # split-index users
            _copy_if_exists(shared, repo / shared.name)
    env = {"GIT_DIR": str(repo), "GIT_WORK_TREE": str(top)}
    # Objects are written while the user's objects are not yet borrowed: git would
    # otherwise touch the mtime of user objects equal to what it writes.
    pathspec = [f":(literal){prefix}"] if prefix else []
    try:
        run_git(["add", "-A", "--", *pathspec], cwd=top, env=env)
    except GitError as exc:
        raise WorkspaceError(
            f"cannot snapshot {root}: git could not read some files ({exc.stderr}); "
            "fix their permissions or add them to .gitignore"
        ) from exc
    applied = _apply_overrides(root, top, repo, env, prefix, overrides, fmt)
    tree = git_text(["write-tree", "--missing-ok"], env=env)
    if user:
        set_alternates(repo / "objects", [user.common_dir / "objects"])
    if prefix:
        sub = run_git(
            ["rev-parse", "-q", "--verify", f"{tree}:{prefix.rstrip('/')}"], env=env, check=False
        )
        tree = (
            sub.stdout.decode().strip()
            if sub.returncode == 0
            else write_object(repo, "tree", b"", fmt)
        )
    parents = ["-p", user.head] if user and user.head and not prefix else []
    message = f"kat-lsp snapshot of {root} (run {run_id})"
    commit = git_text(["commit-tree", "--no-gpg-sign", tree, *parents, "-m", message], env=env)
    write_ref(repo, SNAPSHOT_REF, commit)
    return Snapshot(
        root=root, repo=repo, commit=commit, run_id=run_id, is_git=user is not None,
        toplevel=user.toplevel if user else None, prefix=prefix,
        head=user.head if user else None, object_format=fmt, overridden=applied,
        core_config=tuple(core.items()),
    )  # fmt: skip


def _apply_overrides(
    root: Path,
    top: Path,
    repo: Path,
    env: Mapping[str, str],
    prefix: str,
    overrides: Mapping[str | Path, str],
    fmt: str,
) -> tuple[str, ...]:
    """Write unsaved buffers as blobs and put them into the private index."""
    entries: dict[str, tuple[str, str]] = {}
    for raw, text in overrides.items():
        path = Path(raw) if Path(raw).is_absolute() else root / raw
        path = path.resolve()  # an editor edits a symlink's target
        try:
            rel = path.relative_to(root)
        except ValueError:
            continue
        if not rel.parts or ".git" in rel.parts or path.is_dir():
            continue
        executable = path.is_file() and os.stat(path).st_mode & 0o111
        blob = write_object(repo, "blob", text.encode("utf-8", errors="replace"), fmt)
        entries[prefix + rel.as_posix()] = ("100755" if executable else "100644", blob)
    if not entries:
        return ()
    check = run_git(
        ["check-ignore", "-z", "--stdin"], cwd=top, env=env, input=_z(entries), check=False
    )
    for ignored in check.stdout.decode(errors="surrogateescape").split("\0"):
        entries.pop(ignored, None)
    info = b"".join(
        f"{mode} {sha}\t{p}\0".encode(errors="surrogateescape")
        for p, (mode, sha) in entries.items()
    )
    run_git(["update-index", "--add", "--replace", "-z", "--index-info"], env=env, input=info)
    return tuple(sorted(p[len(prefix) :] for p in entries))


def _z(paths: Mapping[str, object]) -> bytes:
    return b"".join(p.encode(errors="surrogateescape") + b"\0" for p in paths)
