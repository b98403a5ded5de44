"""The user's workspace and the run's copies of it: snapshots (the base of a run),
sample checkouts, candidate patches, and cleanup of what runs leave in the cache dir."""

from kat_lsp.workspace.checkouts import Checkout, create_checkout
from kat_lsp.workspace.git import GitError, WorkspaceError
from kat_lsp.workspace.patches import PatchError, apply_patch, patch_files, split_patch_by_file
from kat_lsp.workspace.rundirs import prune_stale, remove_run, remove_run_checkouts
from kat_lsp.workspace.snapshot import DEFAULT_EXCLUDES, Snapshot, take_snapshot

__all__ = [
    "DEFAULT_EXCLUDES",
    "Checkout",
    "GitError",
    "PatchError",
    "Snapshot",
    "WorkspaceError",
    "apply_patch",
    "create_checkout",
    "patch_files",
    "prune_stale",
    "remove_run",
    "remove_run_checkouts",
    "split_patch_by_file",
    "take_snapshot",
]
