"""Finding a run's candidate (this session's runs, else the persisted ones) and computing
its WorkspaceEdit against what the client has now: open documents' text, else the disk.

The texts of open documents are copied on the event loop; patch application then runs
right there when no file must be read from disk, else in a worker thread (one hop per
request however many candidates).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kat_lsp.pipeline.api import RankedCandidate
from kat_lsp.server.edits import FileChange, PatchConflict, compute_changes
from kat_lsp.server.params import CandidateRef, invalid, parse
from kat_lsp.server.wsedit import BuiltEdit, EditSupport, build_workspace_edit

if TYPE_CHECKING:
    from kat_lsp.server.state import KatServer, OpenDocument


@dataclass
class Located:
    """A candidate and the run it belongs to."""

    run_id: str
    root: Path
    candidate: RankedCandidate


CANDIDATE_USAGE = '{"runId": "...", "candidateId": "c0"}'


def candidate_ref(args: Sequence[object]) -> CandidateRef:
    """`[{"runId", "candidateId", "confirmFlagged"?}]`, checked."""
    return parse(CandidateRef, list(args), CANDIDATE_USAGE)


async def locate(server: KatServer, ref: CandidateRef) -> Located:
    handle = server.runs.get(ref.run_id)
    if handle is not None:
        root, candidates = handle.root, handle.candidates()
    else:
        from kat_lsp.server.records import load_run

        result = await asyncio.to_thread(load_run, ref.run_id)
        if result is None:
            raise invalid(f"no run {ref.run_id!r}: kat.lsp.listRuns lists the runs")
        root, candidates = result.root, result.candidates
    for c in candidates:
        if c.id == ref.candidate_id:
            return Located(ref.run_id, root, c)
    known = ", ".join(c.id for c in candidates) or "none yet"
    raise invalid(f"run {ref.run_id} has no candidate {ref.candidate_id!r} (it has: {known})")


def confined(root: Path, rel: str) -> Path:
    """`root / rel` when `rel` is a plain relative path that stays under `root` (symlinks
    resolved); else PatchConflict: an edit never reaches outside the run's folder."""
    parts = Path(rel).parts
    if not rel or Path(rel).is_absolute() or ".." in parts or "\x00" in rel:
        raise PatchConflict(rel, "the path leaves the workspace folder; not applied")
    path = root / rel
    if not path.resolve().is_relative_to(root.resolve()):
        raise PatchConflict(rel, "the path leads outside the workspace folder; not applied")
    return path


def _changes(
    root: Path, patch: str, docs: dict[Path, OpenDocument], resources_only: bool
) -> tuple[list[FileChange], dict[str, tuple[str, int | None]]]:
    from kat_lsp.server.state import read_disk_text

    by_path = {p.resolve(): d for p, d in docs.items()}
    used: dict[str, tuple[str, int | None]] = {}

    def read(rel: str) -> str | None:
        path = confined(root, rel).resolve()
        if (doc := by_path.get(path)) is not None:
            used[rel] = (doc.uri, doc.version)
            return doc.text
        return read_disk_text(path)

    return compute_changes(patch, read, resources_only=resources_only), used


def edits_now(
    root: Path,
    patches: Sequence[str],
    docs: dict[Path, OpenDocument],
    support: EditSupport,
    resources_only: bool = False,
) -> list[tuple[list[FileChange], BuiltEdit] | PatchConflict]:
    """Blocking: per patch, its changes and edit against the current texts, or the conflict."""
    out: list[tuple[list[FileChange], BuiltEdit] | PatchConflict] = []
    for patch in patches:
        try:
            flagged = reviewed(patch, root)
            changes, used = _changes(root, patch, docs, resources_only)
        except PatchConflict as exc:
            out.append(exc)
            continue
        out.append((changes, build_workspace_edit(changes, root, support, used, flagged)))
    return out


class Refused(PatchConflict):
    """The review refused part of the candidate (e.g. a symlink leaving the repository):
    none of it is applied."""


def reviewed(patch: str, root: Path) -> dict[str, str]:
    """The files the review flags (path → why); Refused when it refuses any."""
    from kat_lsp.workspace.applycheck import review_patch

    review = review_patch(patch, root)
    if review.refused:
        path, why = review.refused[0]
        more = f" (and {len(review.refused) - 1} more)" if len(review.refused) > 1 else ""
        raise Refused(path, f"refused: {why}{more}")
    return dict(review.flagged)


INLINE_LIMIT = 1_000_000
"""Characters of open-document text below which edits are computed on the event loop."""


async def current_edits(
    server: KatServer,
    root: Path,
    candidates: Sequence[RankedCandidate],
    *,
    resources_only: bool = False,
) -> list[tuple[list[FileChange], BuiltEdit] | PatchConflict]:
    """Edits of `candidates` against the current texts. When every file they touch is
    open in the editor (no disk reads) and small, this is sub-millisecond work done right
    here: a thread hop would cost more than it saves (and shows in code-action latency)."""
    docs = server.open_documents()
    patches = [c.patch for c in candidates]
    args = (root, patches, docs, server.edit_support, resources_only)
    touched = {root / f for c in candidates for f in c.files}
    open_paths = {p: len(d.text) for p, d in docs.items()}
    if (
        touched
        and touched <= open_paths.keys()
        and sum(open_paths[p] for p in touched) < INLINE_LIMIT
    ):
        return edits_now(*args)
    return await asyncio.to_thread(edits_now, *args)
