"""Sample checkouts (DESIGN.md §1 step 2): one independent git repository per sample
under `cache_dir()/checkouts/<run_id>/<name>/`, and the candidate patch it holds.

A checkout's `.git` lives inside its folder and borrows objects from the snapshot's
private repository (which borrows from the user's): inside a sandbox where only the
checkout is writable, status, diff, add, stash and commit all work. HEAD is the branch
`kat` at the snapshot commit.

`Checkout.diff()` never trusts the checkout's own `.git` (the sample can write it, and
its config could name commands such as `core.fsmonitor`): it stages the working tree
into a temporary index with the snapshot repository as git dir, starting from a copy
of the index taken right after checkout (`.<name>.index`, outside the sandbox's reach)
so only changed files are hashed; new blobs go to a scratch object dir of the run.
Commits or stashes made inside do not fool it.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from kat_lsp.workspace import rundirs
from kat_lsp.workspace.git import WorkspaceError, init_git_dir, run_git, write_ref
from kat_lsp.workspace.snapshot import Snapshot

CHECKOUT_BRANCH = "refs/heads/kat"
SCRATCH_OBJECTS = ".objects"  # per run, beside the checkouts
CHECKOUT_CONFIG = {
    "core": {"hooksPath": "/dev/null", "fsmonitor": "false", "pager": "cat"},
    "user": {"name": "kat-lsp agent", "email": "agent@kat-lsp.invalid"},
    "commit": {"gpgsign": "false"},
    "tag": {"gpgsign": "false"},
    "gc": {"auto": "0"},
    "maintenance": {"auto": "false"},
    "advice": {"detachedHead": "false"},
}
_DIFF_ARGS = (
    "--binary", "--no-renames", "--no-color", "--no-ext-diff", "--no-textconv", "-U3",
    "--src-prefix=a/", "--dst-prefix=b/",
)  # fmt: skip


@dataclass(frozen=True)
class Checkout:
    """A sample's working copy of a snapshot."""

    path: Path
    name: str
    snapshot: Snapshot

    @property
    def base_index(self) -> Path:
        """The index as checked out, kept beside (not inside) the checkout."""
        return self.path.parent / f".{self.name}.index"

    def diff(self) -> str:
        """The candidate patch: working tree against the snapshot commit, new files and
        binary files included ('' when nothing changed). Non-UTF-8 bytes come back as
        surrogate escapes (`str.encode(errors="surrogateescape")` restores them)."""
        return self._staged_diff(*_DIFF_ARGS).decode(errors="surrogateescape")

    def changed_files(self) -> list[str]:
        """Paths (relative to the checkout) that differ from the snapshot."""
        out = self._staged_diff("--name-only", "-z", "--no-renames")
        return [p.decode(errors="surrogateescape") for p in out.split(b"\0") if p]

    def _staged_diff(self, *args: str) -> bytes:
        if not self.path.is_dir():
            raise WorkspaceError(f"checkout {self.path} is gone; it was removed or pruned")
        index = self.path.parent / f".{self.name}.diff-{uuid.uuid4().hex}.index"
        env = {
            "GIT_DIR": str(self.snapshot.repo),
            "GIT_WORK_TREE": str(self.path),
            "GIT_INDEX_FILE": str(index),
            # New blobs go to a scratch object dir that borrows nothing (see set_alternates).
            "GIT_OBJECT_DIRECTORY": str(self.path.parent / SCRATCH_OBJECTS),
        }
        (self.path.parent / SCRATCH_OBJECTS).mkdir(exist_ok=True)
        try:
            if self.base_index.is_file():
                shutil.copy2(self.base_index, index)
            run_git(["add", "-A"], cwd=self.path, env=env)
            env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = str(self.snapshot.repo / "objects")
            diff = ["-c", "core.quotepath=false", "diff", "--cached", *args]
            return run_git([*diff, self.snapshot.commit, "--"], cwd=self.path, env=env).stdout
        finally:
            index.unlink(missing_ok=True)

    def remove(self) -> None:
        rundirs.remove_tree(self.path)
        self.base_index.unlink(missing_ok=True)


def create_checkout(snapshot: Snapshot, name: str) -> Checkout:
    """Check the snapshot out into a fresh folder of its run. Blocking; thread-safe for
    distinct names (the pipeline creates several at once from worker threads)."""
    rundirs.validate_name(name, "checkout name")
    run = rundirs.run_dir("checkouts", snapshot.run_id)
    if not (run / rundirs.OWNER_FILE).is_file():
        rundirs.claim(run)
    path = run / name
    try:
        path.mkdir()
    except FileExistsError:
        raise WorkspaceError(
            f"checkout {path} already exists: remove it or use another name"
        ) from None
    checkout = Checkout(path=path, name=name, snapshot=snapshot)
    try:
        _populate(checkout)
    except BaseException:
        checkout.remove()
        raise
    return checkout


def _populate(checkout: Checkout) -> None:
    snapshot, git_dir = checkout.snapshot, checkout.path / ".git"
    exclude = snapshot.repo / "info" / "exclude"
    init_git_dir(
        git_dir,
        bare=False,
        object_format=snapshot.object_format,
        config={
            **CHECKOUT_CONFIG,
            "core": {**dict(snapshot.core_config), **CHECKOUT_CONFIG["core"]},
        },
        alternates=[snapshot.repo / "objects"],
        exclude=exclude.read_bytes() if exclude.is_file() else b"",
        head_ref=CHECKOUT_BRANCH,
    )
    attributes = snapshot.repo / "info" / "attributes"
    if attributes.is_file():
        shutil.copy2(attributes, git_dir / "info" / "attributes")
    write_ref(git_dir, CHECKOUT_BRANCH, snapshot.commit)
    env = {"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(checkout.path)}
    run_git(["read-tree", "--reset", "-u", snapshot.commit], cwd=checkout.path, env=env)
    shutil.copy2(git_dir / "index", checkout.base_index)
