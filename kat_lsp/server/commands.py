"""`workspace/executeCommand` handlers: `kat.lsp.applyCandidate`, `kat.lsp.cancel`,
`kat.lsp.listRuns`, `kat.lsp.candidateDiff` and `kat.lsp.applyFileOperations` (the
follow-up of a code action for clients that cannot create or delete files).
`kat.lsp.fixIssue` is registered in `features.py` next to the `kat/fixIssue` request.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from kat_lsp.server.candidates import Located, candidate_ref, current_edits, locate
from kat_lsp.server.edits import PatchConflict
from kat_lsp.server.runs import cancel_run
from kat_lsp.server.settings import plain
from kat_lsp.server.shapes import run_summary_json
from kat_lsp.server.wsedit import apply_on_disk

if TYPE_CHECKING:
    from kat_lsp.server.state import KatServer

KNOWN_STATUSES = ("running", "done", "cancelled", "failed")


def _refused(server: KatServer, message: str) -> dict[str, Any]:
    server.show(types.MessageType.Warning, message)
    return {"applied": False, "message": message}


async def apply_candidate(server: KatServer, args: tuple[Any, ...]) -> dict[str, Any]:
    """Send the candidate's edit with `workspace/applyEdit`: `{"applied", "message"?}`."""
    found = await locate(server, *candidate_ref(args))
    name = f"candidate {found.candidate.id} of run {found.run_id}"
    workspace = server.client_capabilities.workspace
    if not (workspace and workspace.apply_edit):
        return _refused(
            server,
            f"KAT cannot apply {name}: the editor does not accept "
            "workspace/applyEdit; apply the diff of kat.lsp.candidateDiff by hand",
        )
    [outcome] = await current_edits(server, found.root, [found.candidate])
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
    answer = await server.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(edit=built.edit, label=f"KAT: apply {found.candidate.id}")
    )
    if not answer.applied:
        reason = answer.failure_reason or "the editor did not apply the edit"
        return {"applied": False, "message": f"KAT: {name} was not applied: {reason}"}
    result: dict[str, Any] = {"applied": True}
    if built.on_disk:
        notes = await asyncio.to_thread(apply_on_disk, found.root, built.on_disk)
        if notes:
            result["message"] = "; ".join(notes)
    server.log_client(types.MessageType.Info, f"KAT applied {name}")
    return result


async def apply_file_operations(server: KatServer, args: tuple[Any, ...]) -> dict[str, Any]:
    """Create/delete on disk the files of a candidate the client could not (after its edit)."""
    found: Located = await locate(server, *candidate_ref(args))
    [outcome] = await current_edits(server, found.root, [found.candidate], resources_only=True)
    if isinstance(outcome, PatchConflict):
        return _refused(server, f"KAT did not create or delete files: {outcome}")
    notes = await asyncio.to_thread(apply_on_disk, found.root, outcome[0])
    return {"applied": True, **({"message": "; ".join(notes)} if notes else {})}


async def candidate_diff(server: KatServer, args: tuple[Any, ...]) -> str:
    found = await locate(server, *candidate_ref(args))
    return found.candidate.patch


def cancel(server: KatServer, args: tuple[Any, ...]) -> dict[str, bool]:
    data = plain(args[0]) if len(args) == 1 else None
    if not isinstance(data, dict) or not isinstance(data.get("runId"), str):
        raise JsonRpcInvalidParams('pass one object: {"runId": "..."}')
    return {"cancelled": cancel_run(server, data["runId"])}


async def list_runs(server: KatServer) -> list[dict[str, Any]]:
    """This session's runs and the persisted ones (earlier sessions), newest first."""
    from kat_lsp.pipeline.store import candidate_from_record, list_runs

    records = await asyncio.to_thread(list_runs)
    created = {r.get("run_id"): float(r.get("created") or 0) for r in records}
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
                [candidate_from_record(c) for c in r.get("candidates", [])],
            ),
        )
    return [summary for _, summary in sorted(out.values(), key=lambda x: x[0], reverse=True)]
