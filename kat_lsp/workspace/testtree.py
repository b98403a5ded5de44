"""Test trees (pipeline/execution.py): a checkout with its git dir beside its folder,
where the sandbox cannot write, so the host can record and reset it between tests
without reading anything a test wrote as git metadata (docs/architecture/workspace.md).

New objects go to the run's scratch object dir, which borrows nothing while git writes
(see git.set_alternates); reading commands borrow the snapshot's objects. Reset removes
untracked entries by the host's own fd walk (rundirs.remove_untracked) before git
rewrites tracked files: git would look into a nested repository a test left and block
on a FIFO planted as its HEAD. The walk makes every folder it opens writable for us
(a test may leave read-only or chmod 000 folders).
"""

from __future__ import annotations

import os

from kat_lsp.workspace import rundirs
from kat_lsp.workspace.checkouts import Checkout, tree_git
from kat_lsp.workspace.git import WorkspaceError


def _env(tree: Checkout, reading: bool) -> dict[str, str]:
    if tree.inner_git:
        raise WorkspaceError(f"{tree.path} keeps its git dir inside: not a test tree")
    env = {
        "GIT_DIR": str(tree.git_dir),
        "GIT_WORK_TREE": str(tree.path),
        "GIT_OBJECT_DIRECTORY": str(tree.scratch),
    }
    if reading:
        env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = str(tree.snapshot.repo / "objects")
    return env


def record_tree(tree: Checkout) -> str:
    """Stage the whole working tree in the private index; return its tree id."""
    tree.scratch.mkdir(exist_ok=True)
    env = _env(tree, reading=False)
    tree_git(["add", "-A"], tree.path, env)
    return tree_git(["write-tree", "--missing-ok"], tree.path, env).stdout.decode().strip()


def restore(tree: Checkout, tree_id: str) -> None:
    """Make the working tree exactly `tree_id` again: tracked files rewritten, everything
    else (ignored files, nested repositories, `.git`, read-only folders) removed.
    Raises WorkspaceError when that fails."""
    env = _env(tree, reading=True)
    listed = tree_git(["ls-files", "-z"], tree.path, env).stdout.split(b"\0")
    try:
        rundirs.remove_untracked(tree.path, {os.fsdecode(p) for p in listed if p})
    except OSError as exc:
        raise WorkspaceError(f"could not clean the tree: {exc}") from exc
    tree_git(["read-tree", "--reset", "-u", tree_id], tree.path, env)
    modified = tree_git(["diff-files", "--name-only", "-z"], tree.path, env).stdout
    if modified:
        names = modified.decode(errors="replace").strip("\0").split("\0")
        raise WorkspaceError(f"could not reset the tree; changed: {', '.join(names[:5])}")
