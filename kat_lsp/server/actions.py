"""Code actions and hover: finished runs' candidates where they change a document, and
`KAT: fix this problem` on diagnostics.

Candidate actions are offered for every finished run of this session that changes the
document, newest run first, its candidates in rank order (`isPreferred` on the newest
run's rank 1). Each action carries the candidate's whole WorkspaceEdit (all files),
computed against the text the client has now. A candidate that no longer fits (the
document changed since the snapshot), that the review refuses (e.g. a symlink leaving
the repository), or that changes files the review flags (editor tasks, CI configs,
`.kat.toml` ...) for a client without `needsConfirmation` change annotations, is shown
disabled with the reason when the client supports `disabled`, else left out. When the client cannot create or delete files, the
action also carries the `kat.lsp.applyFileOperations` command that does it on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.uris import to_fs_path

from kat_lsp.server.candidates import Refused, current_edits
from kat_lsp.server.edits import PatchConflict, split_lines
from kat_lsp.server.shapes import candidate_title
from kat_lsp.server.wsedit import BuiltEdit

if TYPE_CHECKING:
    from kat_lsp.pipeline.api import RankedCandidate
    from kat_lsp.server.runs import RunHandle
    from kat_lsp.server.state import KatServer

FIX_PROBLEM_TITLE = "KAT: fix this problem"
CONTEXT_LINES = 3


def _relative(handle: RunHandle, path: Path) -> str | None:
    try:
        return path.resolve().relative_to(handle.root).as_posix()
    except ValueError:
        return None


def _touching(server: KatServer, uri: str) -> list[tuple[RunHandle, list[RankedCandidate]]]:
    fs = to_fs_path(uri)
    if fs is None:
        return []
    out = []
    for handle in server.finished_runs():
        rel = _relative(handle, Path(fs))
        if rel is not None and (cands := [c for c in handle.candidates() if rel in c.files]):
            out.append((handle, cands))
    return out


def _wants(only: list[str] | None, kind: str) -> bool:
    return not only or any(kind == k or kind.startswith(f"{k}.") for k in only)


async def candidate_actions(server: KatServer, uri: str) -> list[types.CodeAction]:
    caps = server.code_action_caps()
    disabled_ok = bool(caps and caps.disabled_support)
    actions: list[types.CodeAction] = []
    for n, (handle, cands) in enumerate(_touching(server, uri)):
        edits = await current_edits(server, handle.root, cands)
        for c, outcome in zip(cands, edits, strict=True):
            title = candidate_title(c) + ("" if n == 0 else f" · run {handle.run_id}")
            action = types.CodeAction(
                title=title,
                kind=types.CodeActionKind.QuickFix,
                is_preferred=(n == 0 and c.rank == 1) or None,
                data={"runId": handle.run_id, "candidateId": c.id},
            )
            reason: str | None
            if isinstance(outcome, PatchConflict):
                reason = (
                    str(outcome)
                    if isinstance(outcome, Refused)
                    else f"the files changed since the run's snapshot: {outcome}"
                )
            else:
                changes, built = outcome
                if not changes:
                    continue  # already applied
                reason = flagged_reason(built) if built.needs_confirmation else None
                action.edit = built.edit
                if built.on_disk:
                    action.command = types.Command(
                        title="create and delete files",
                        command="kat.lsp.applyFileOperations",
                        arguments=[{"runId": handle.run_id, "candidateId": c.id}],
                    )
            if reason is not None:
                if not disabled_ok:
                    continue
                action.is_preferred = action.edit = action.command = None
                action.disabled = types.CodeActionDisabled(reason=reason)
            actions.append(action)
    return actions


def flagged_reason(built: BuiltEdit) -> str:
    files = "; ".join(f"{path} ({why})" for path, why in built.flagged.items())
    return (
        f"it changes files that need your confirmation: {files}. Review them, then apply "
        'with the command kat.lsp.applyCandidate and "confirmFlagged": true'
    )


def problem_issue(server: KatServer, uri: str, diagnostics: list[types.Diagnostic]) -> str:
    """An issue text from diagnostics: message, source, code and the lines around them."""
    fs = to_fs_path(uri) or uri
    root = server.root_for(Path(fs))
    name = Path(fs).relative_to(root).as_posix() if root else fs
    docs = server.open_documents()
    doc = docs.get(Path(fs))
    lines = split_lines(doc.text) if doc else []
    parts = []
    for d in diagnostics:
        where = f"{name}:{d.range.start.line + 1}"
        origin = " ".join(str(x) for x in (d.source, d.code) if x is not None)
        parts.append(f"{where}: {d.message}" + (f" ({origin})" if origin else ""))
        lo = max(0, d.range.start.line - CONTEXT_LINES)
        hi = min(len(lines), d.range.end.line + CONTEXT_LINES + 1)
        if lines[lo:hi]:
            numbered = "".join(
                f"{'>' if d.range.start.line <= i <= d.range.end.line else ' '}{i + 1:5} | {lines[i]}"
                for i in range(lo, hi)
            )
            parts.append(f"```\n{numbered.rstrip()}\n```")
    return "Fix the problem the editor reports:\n\n" + "\n\n".join(parts)


def fix_problem_action(
    server: KatServer, uri: str, diagnostics: list[types.Diagnostic]
) -> types.CodeAction | None:
    fs = to_fs_path(uri)
    root = server.root_for(Path(fs)) if fs else None
    if root is None or not diagnostics:
        return None
    issue = problem_issue(server, uri, diagnostics)
    return types.CodeAction(
        title=FIX_PROBLEM_TITLE,
        kind=types.CodeActionKind.QuickFix,
        diagnostics=diagnostics,
        command=types.Command(
            title=FIX_PROBLEM_TITLE,
            command="kat.lsp.fixIssue",
            arguments=[{"issue": issue, "root": str(root)}],
        ),
    )


async def code_actions(
    server: KatServer, params: types.CodeActionParams
) -> list[types.CodeAction | types.Command] | None:
    uri = params.text_document.uri
    only = [str(getattr(k, "value", k)) for k in params.context.only or []]
    if not _wants(only, types.CodeActionKind.QuickFix.value):
        return None
    actions: list[types.CodeAction] = await candidate_actions(server, uri)
    if (fix := fix_problem_action(server, uri, list(params.context.diagnostics))) is not None:
        actions.append(fix)
    caps = server.code_action_caps()
    if caps is not None and caps.code_action_literal_support is None:  # commands only
        return [
            a.command
            or types.Command(title=a.title, command="kat.lsp.applyCandidate", arguments=[a.data])
            for a in actions
            if a.disabled is None
        ] or None
    return list(actions) or None


async def hover(server: KatServer, params: types.HoverParams) -> types.Hover | None:
    """On a line a finished run's candidates change: their titles and the change there."""
    line = params.position.line
    sections = []
    for handle, cands in _touching(server, params.text_document.uri)[:1]:
        edits = await current_edits(server, handle.root, cands)
        rel = _relative(handle, Path(to_fs_path(params.text_document.uri) or ""))
        for c, outcome in zip(cands, edits, strict=True):
            if isinstance(outcome, PatchConflict):
                continue
            for change in outcome[0]:
                if change.path != rel:
                    continue
                old = split_lines(change.old_text)
                for e in change.edits:
                    if e.start <= line < max(e.end, e.start + 1):
                        diff = "".join(f"-{x}" for x in old[e.start : e.end])
                        diff += "".join(f"+{x}" for x in split_lines(e.text))
                        sections.append(f"**{candidate_title(c)}**\n```diff\n{diff.rstrip()}\n```")
    if not sections:
        return None
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value="\n\n".join(sections))
    )
