"""Sample checkouts (docs/architecture/workspace.md): one independent working copy of
the snapshot per sample or test tree under `cache_dir()/checkouts/<run_id>/<name>/`,
and the candidate patch it holds.

A sample checkout keeps its `.git` inside its folder (the model may use git there),
borrowing objects from the snapshot's private repository: inside a sandbox where only
the checkout is writable, status, diff, add, stash and commit all work. HEAD is the
branch `kat` at the snapshot commit. A test tree (`inner_git=False`, testtree.py) has
its git dir beside the folder (`.<name>.git`), where the sandbox cannot write.

The host never runs git with a git dir the sandbox could write (its config could name
commands such as `core.fsmonitor`, its `core.worktree` the user's repository):
`Checkout.changes()` stages the working tree into a temporary index with the snapshot
repository as git dir, starting from a copy of the index taken right after checkout
(`.<name>.index`, outside the sandbox's reach) so only changed files are hashed; new
blobs go to a scratch object dir of the run, and changed files are read back from those
blobs, never from the file system. Commits or stashes made inside do not fool it.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kat_lsp.workspace import rundirs
from kat_lsp.workspace.git import WorkspaceError, init_git_dir, run_git, write_ref
from kat_lsp.workspace.snapshot import Snapshot

CHECKOUT_BRANCH = "refs/heads/kat"
SCRATCH_OBJECTS = ".objects"  # per run, beside the checkouts
TREE_TIMEOUT = 120.0
"""Seconds a host git over a sample's tree may take (a FIFO can stall it forever)."""
MAX_CHANGED_BYTES = 32 << 20
"""A candidate whose new file contents exceed this in total is refused (host memory)."""
MAX_DEDUP_BYTES = 2 << 20
"""A changed file larger than this is compared by blob id, not by content."""
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
class Changes:
    """What a checkout changed: the patch, and each changed file's content as git hashed
    it (a symlink's target text; None: deleted; `object <id>` for a nested repository
    or a blob above MAX_DEDUP_BYTES)."""

    patch: str
    files: dict[str, bytes | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkout:
    """A sample's (or a test tree's) working copy of a snapshot."""

    path: Path
    name: str
    snapshot: Snapshot
    inner_git: bool = True

    @property
    def base_index(self) -> Path:
        """The index as checked out, kept beside (not inside) the checkout."""
        return self.path.parent / f".{self.name}.index"

    @property
    def git_dir(self) -> Path:
        return self.path / ".git" if self.inner_git else self.path.parent / f".{self.name}.git"

    @property
    def scratch(self) -> Path:
        return self.path.parent / SCRATCH_OBJECTS

    def diff(self) -> str:
        """The candidate patch: working tree against the snapshot commit, new files and
        binary files included ('' when nothing changed). Non-UTF-8 bytes come back as
        surrogate escapes (`str.encode(errors="surrogateescape")` restores them)."""
        with self._staged() as env:
            return self._patch(env)

    def changed_files(self) -> list[str]:
        """Paths (relative to the checkout) that differ from the snapshot."""
        with self._staged() as env:
            return list(self._raw(env))

    def changes(self) -> Changes:
        """The patch and the changed files' contents, from one staging of the tree.
        Raises WorkspaceError when the tree cannot be staged (a path git refuses such
        as `.GIT/x`, a FIFO where git expects a file) or holds too much new content."""
        with self._staged() as env:
            raw = self._raw(env)
            if not raw:
                return Changes("")
            sizes = self._sizes(env, [sha for sha in raw.values() if sha])
            if sum(sizes.values()) > MAX_CHANGED_BYTES:
                raise WorkspaceError(
                    f"the changed files hold {sum(sizes.values())} bytes, more than a "
                    f"candidate may ({MAX_CHANGED_BYTES}); largest: "
                    + max(raw, key=lambda p: sizes.get(raw[p] or "", 0))
                )
            small = [s for s, n in sizes.items() if n <= MAX_DEDUP_BYTES]
            blobs = self._blobs(env, small)
            # Not read: a nested repository's commit, a blob above MAX_DEDUP_BYTES.
            files = {
                path: None if sha is None else blobs.get(sha, f"object {sha}\n".encode())
                for path, sha in raw.items()
            }
            return Changes(self._patch(env), files)

    @contextmanager
    def _staged(self) -> Iterator[dict[str, str]]:
        if not self.path.is_dir():
            raise WorkspaceError(f"checkout {self.path} is gone; it was removed or pruned")
        index = self.path.parent / f".{self.name}.diff-{uuid.uuid4().hex}.index"
        env = {
            "GIT_DIR": str(self.snapshot.repo),
            "GIT_WORK_TREE": str(self.path),
            "GIT_INDEX_FILE": str(index),
            # New blobs go to a scratch object dir that borrows nothing (see set_alternates).
            "GIT_OBJECT_DIRECTORY": str(self.scratch),
        }
        self.scratch.mkdir(exist_ok=True)
        try:
            if self.base_index.is_file():
                shutil.copy2(self.base_index, index)
            tree_git(["add", "-A"], self.path, env)
            env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = str(self.snapshot.repo / "objects")
            yield env
        finally:
            index.unlink(missing_ok=True)

    def _patch(self, env: dict[str, str]) -> str:
        diff = ["-c", "core.quotepath=false", "diff", "--cached", *_DIFF_ARGS]
        out = tree_git([*diff, self.snapshot.commit, "--"], self.path, env).stdout
        return out.decode(errors="surrogateescape")

    def _raw(self, env: dict[str, str]) -> dict[str, str | None]:
        """Changed path -> new blob id (None: deleted)."""
        args = ["diff", "--cached", "--raw", "-z", "--no-renames", "--no-abbrev"]
        out = tree_git([*args, self.snapshot.commit, "--"], self.path, env).stdout
        fields = out.split(b"\0")
        raw: dict[str, str | None] = {}
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            _, new_mode, _, new_sha, _ = meta.decode().split(" ", 4)
            name = path.decode(errors="surrogateescape")
            raw[name] = None if new_mode == "000000" else new_sha
        return raw

    def _sizes(self, env: dict[str, str], shas: list[str]) -> dict[str, int]:
        data = "".join(f"{s}\n" for s in dict.fromkeys(shas)).encode()
        out = tree_git(["cat-file", "--batch-check"], self.path, env, data).stdout
        sizes: dict[str, int] = {}
        for line in out.decode().splitlines():
            sha, kind, size = [*line.split(), "", ""][:3]
            if kind == "blob":
                sizes[sha] = int(size)
        return sizes

    def _blobs(self, env: dict[str, str], shas: list[str]) -> dict[str, bytes]:
        if not shas:
            return {}
        data = "".join(f"{s}\n" for s in shas).encode()
        out = tree_git(["cat-file", "--batch"], self.path, env, data).stdout
        blobs: dict[str, bytes] = {}
        pos = 0
        while pos < len(out):
            end = out.index(b"\n", pos)
            sha, _, size = out[pos:end].decode().split(" ")
            blobs[sha] = out[end + 1 : end + 1 + int(size)]
            pos = end + 2 + int(size)
        return blobs

    def remove(self) -> None:
        rundirs.remove_tree(self.path)
        if not self.inner_git:
            rundirs.remove_tree(self.git_dir)
        self.base_index.unlink(missing_ok=True)


def tree_git(
    args: list[str], cwd: Path, env: dict[str, str], input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """A host git over a sample's tree: hardened (git.py) and bounded by TREE_TIMEOUT."""
    return run_git(args, cwd=cwd, env=env, input=input, timeout=TREE_TIMEOUT)


def create_checkout(snapshot: Snapshot, name: str, *, inner_git: bool = True) -> Checkout:
    """Check the snapshot out into a fresh folder of its run (`inner_git=False`: a test
    tree, its git dir beside the folder). Blocking; thread-safe for distinct names (the
    pipeline creates several at once from worker threads)."""
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
    checkout = Checkout(path=path, name=name, snapshot=snapshot, inner_git=inner_git)
    try:
        _populate(checkout)
    except BaseException:
        checkout.remove()
        raise
    return checkout


def _populate(checkout: Checkout) -> None:
    snapshot, git_dir = checkout.snapshot, checkout.git_dir
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
