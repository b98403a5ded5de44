"""`workspace/executeCommand` handlers: `kat.lsp.applyCandidate`, `kat.lsp.cancel`,
`kat.lsp.listRuns`, `kat.lsp.candidateDiff`, `kat.lsp.reviewCandidate` and
`kat.lsp.applyFileOperations` (the follow-up of a code action for clients that cannot
create or delete files).
`kat.lsp.fixIssue` is registered in `features.py` next to the `kat/fixIssue` request.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from kat_lsp.server.candidates import Located, Refused, candidate_ref, current_edits, locate
from kat_lsp.server.edits import PatchConflict
from kat_lsp.server.ondisk import apply_on_disk
from kat_lsp.server.params import RunRef, invalid, parse
from kat_lsp.server.runs import cancel_run
from kat_lsp.server.shapes import run_summary_json

if TYPE_CHECKING:
    from kat_lsp.server.state import KatServer

KNOWN_STATUSES = ("running", "done", "cancelled", "failed")


def _refused(server: KatServer, message: str) -> dict[str, Any]:
    server.show(types.MessageType.Warning, message)
    return {"applied": False, "message": message}


async def _located_for_apply(server: KatServer, args: tuple[Any, ...]) -> Located:
    """The candidate, when its run's folder is one the editor opened (a persisted run of
    another project is never written to from here)."""
    found = await locate(server, candidate_ref(args))
    if not server.inside_folders(found.root.resolve()):
        raise invalid(
            f"run {found.run_id} belongs to {found.root}, outside the workspace folders the "
            "editor opened; open that folder to apply it"
        )
    return found


async def apply_candidate(server: KatServer, args: tuple[Any, ...]) -> dict[str, Any]:
    """Send the candidate's edit with `workspace/applyEdit`: `{"applied", "message"?}`.
    Files the review flags need `"confirmFlagged": true` unless the client asks the user
    itself (change annotations); a refused candidate is never applied."""
    ref = candidate_ref(args)
    found = await _located_for_apply(server, args)
    name = f"candidate {found.candidate.id} of run {found.run_id}"
    workspace = server.client_capabilities.workspace
    if not (workspace and workspace.apply_edit):
        return _refused(
            server,
            f"KAT cannot apply {name}: the editor does not accept "
            "workspace/applyEdit; apply the diff of kat.lsp.candidateDiff by hand",
        )
    [outcome] = await current_edits(server, found.root, [found.candidate])
    if isinstance(outcome, Refused):
        return _refused(server, f"KAT will not apply {name}: {outcome}")
    if isinstance(outcome, PatchConflict):
        return _refused(
            server,
            f"KAT did not apply {name}: the files changed since the run's snapshot and the "
            f"patch no longer fits ({outcome}). Run the fix again on the current code, or "
            "apply the diff (kat.lsp.candidateDiff) by hand.",
        )
    changes, built = outcome
    if not changes:
        return _refused(server, f"KAT: nothing to apply, the changes of {name} are already there")
    if built.needs_confirmation and not ref.confirm_flagged:
        files = "; ".join(f"{path} ({why})" for path, why in built.flagged.items())
        return _refused(
            server,
            f"KAT did not apply {name}: it changes files that need your confirmation: {files}. "
            'Review them (kat.lsp.candidateDiff), then apply with "confirmFlagged": true.',
        )
    answer = await server.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(edit=built.edit, label=f"KAT: apply {found.candidate.id}")
    )
    if not answer.applied:
        reason = answer.failure_reason or "the editor did not apply the edit"
        return {"applied": False, "message": f"KAT: {name} was not applied: {reason}"}
    result: dict[str, Any] = {"applied": True, "files": [c.path for c in changes]}
    if built.on_disk:
        notes = await asyncio.to_thread(apply_on_disk, found.root, built.on_disk)
        if notes:
            result["message"] = "; ".join(notes)
    server.log_client(types.MessageType.Info, f"KAT applied {name}")
    return result


async def apply_file_operations(server: KatServer, args: tuple[Any, ...]) -> dict[str, Any]:
    """Create/delete on disk the files of a candidate the client could not (after its edit).
    Flagged files only with `"confirmFlagged": true`; every path stays under the folder."""
    ref = candidate_ref(args)
    found = await _located_for_apply(server, args)
    [outcome] = await current_edits(server, found.root, [found.candidate], resources_only=True)
    if isinstance(outcome, PatchConflict):
        return _refused(server, f"KAT did not create or delete files: {outcome}")
    changes, built = outcome
    todo = [c for c in changes if ref.confirm_flagged or c.path not in built.flagged]
    notes = [
        f"{c.path} needs your confirmation ({built.flagged[c.path]}); not written"
        for c in changes
        if c not in todo
    ]
    notes += await asyncio.to_thread(apply_on_disk, found.root, todo)
    return {"applied": True, **({"message": "; ".join(notes)} if notes else {})}


async def candidate_diff(server: KatServer, args: tuple[Any, ...]) -> str:
    found = await locate(server, candidate_ref(args))
    return found.candidate.patch


async def review_candidate(server: KatServer, args: tuple[Any, ...]) -> dict[str, Any]:
    """What applying the candidate would touch, against the folder as it is now:
    `{"files", "refused": [{"path", "reason"}], "flagged": [{"path", "reason"}]}`. Clients
    that apply hunks themselves (the VS Code inline review) ask this first."""
    from kat_lsp.workspace.applycheck import review_patch

    found = await locate(server, candidate_ref(args))
    review = await asyncio.to_thread(review_patch, found.candidate.patch, found.root)
    return {
        "files": review.files,
        "refused": [{"path": p, "reason": r} for p, r in review.refused],
        "flagged": [{"path": p, "reason": r} for p, r in review.flagged],
    }


def cancel(server: KatServer, args: tuple[Any, ...]) -> dict[str, bool]:
    ref = parse(RunRef, list(args), '{"runId": "..."}')
    return {"cancelled": cancel_run(server, ref.run_id)}


async def list_runs(server: KatServer) -> list[dict[str, Any]]:
    """This session's runs and the persisted ones (earlier sessions), newest first."""
    from kat_lsp.server.records import list_records

    records = await asyncio.to_thread(list_records)
    created = {r["run_id"]: float(r["created"]) for r in records}
    out: dict[str, tuple[float, dict[str, Any]]] = {}
    for h in server.runs.values():  # the pipeline's own start time once it is recorded
        when = created.get(h.run_id) or h.created
        out[h.run_id] = (
            when,
            run_summary_json(h.run_id, h.issue, h.status, h.root, when, h.candidates()),
        )
    for r in records:
        if r.get("run_id") in out:
            continue
        status = str(r.get("status"))
        out[r["run_id"]] = (
            created[r["run_id"]],
            run_summary_json(
                r["run_id"],
                str(r.get("issue", "")),
                status if status in KNOWN_STATUSES else "failed",  # e.g. interrupted by a restart
                Path(str(r.get("root", ""))),
                created[r["run_id"]],
                r["candidates"],
            ),
        )
    return [summary for _, summary in sorted(out.values(), key=lambda x: x[0], reverse=True)]
