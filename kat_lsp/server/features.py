"""The LSP surface: which method goes to which handler (every handler async and thin).

See docs/reference/lsp.md for the methods, their params and results.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types

from kat_lsp.server import actions, commands, runs
from kat_lsp.server.settings import check_overrides, overrides_from, plain
from kat_lsp.server.state import KatServer

COMMANDS = (
    "kat.lsp.fixIssue",
    "kat.lsp.applyCandidate",
    "kat.lsp.cancel",
    "kat.lsp.listRuns",
    "kat.lsp.candidateDiff",
    "kat.lsp.reviewCandidate",
    "kat.lsp.applyFileOperations",
)


def take_trust(server: KatServer, raw: Any) -> Any:
    """Settings without the keys that are no setting: `token` (checked by the transport)
    and `trustedWorkspace` (the client's word on workspace trust, kept on the server)."""
    data = plain(raw)
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for holder in (data, data.get("kat")):
        if isinstance(holder, dict):
            holder.pop("token", None)
            if "trustedWorkspace" in holder:
                trust = holder.pop("trustedWorkspace")
                server.trusted = trust if isinstance(trust, bool) else None
    return data


def apply_settings(server: KatServer, raw: Any, source: str) -> None:
    overrides, ignored = overrides_from(take_trust(server, raw))
    if ignored:
        server.show(
            types.MessageType.Warning,
            f"KAT: {source}: ignoring unknown settings {', '.join(ignored)} "
            "(docs/reference/settings.md lists the settings)",
        )
    if (problem := check_overrides(overrides)) is not None:
        server.show(types.MessageType.Error, f"KAT {source}: {problem}")
    server.settings = overrides
    shown = {k: ("***" if k == "api_key" else v) for k, v in overrides.items()}
    server.log_client(types.MessageType.Log, f"KAT settings from {source}: {shown}")


def create_server(update_interval: float = 0.2) -> KatServer:
    server = KatServer(update_interval=update_interval)

    @server.feature(types.INITIALIZE)
    def initialize(ls: KatServer, params: types.InitializeParams) -> None:
        if params.initialization_options is not None:
            apply_settings(ls, params.initialization_options, "initializationOptions")
        trust = {True: "trusted", False: "not trusted", None: "per the trusted-folders list"}
        ls.log_client(types.MessageType.Log, f"KAT workspace trust: {trust[ls.trusted]}")

    @server.feature("kat/didChangeWorkspaceTrust")
    def did_change_trust(ls: KatServer, params: Any) -> None:
        data = plain(params)
        trusted = data.get("trusted") if isinstance(data, dict) else None
        if isinstance(trusted, bool):
            ls.trusted = trusted
            ls.warned_ignored.clear()
            ls.log_client(types.MessageType.Info, f"KAT workspace trusted: {trusted}")

    @server.feature(types.INITIALIZED)
    async def initialized(ls: KatServer, params: types.InitializedParams) -> None:
        from kat_lsp.workspace import prune_stale

        removed = await asyncio.to_thread(prune_stale)
        if removed:
            ls.log_client(
                types.MessageType.Info,
                f"KAT removed {len(removed)} checkouts left by runs that ended without cleanup",
            )

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: KatServer, params: types.DidChangeConfigurationParams) -> None:
        settings = params.settings
        if isinstance(settings, dict) and not settings:
            return  # a bare "something changed" ping (pull-model clients)
        apply_settings(ls, settings, "workspace/didChangeConfiguration")

    @server.feature("kat/fixIssue")
    async def fix_issue_request(ls: KatServer, params: Any) -> dict[str, Any]:
        return await runs.fix_issue(ls, params)

    @server.command("kat.lsp.fixIssue")
    async def fix_issue_command(ls: KatServer, *args: Any) -> dict[str, Any]:
        return await runs.fix_issue(ls, list(args))

    @server.command("kat.lsp.applyCandidate")
    async def apply_candidate(ls: KatServer, *args: Any) -> dict[str, Any]:
        return await commands.apply_candidate(ls, args)

    @server.command("kat.lsp.applyFileOperations")
    async def apply_file_operations(ls: KatServer, *args: Any) -> dict[str, Any]:
        return await commands.apply_file_operations(ls, args)

    @server.command("kat.lsp.cancel")
    async def cancel(ls: KatServer, *args: Any) -> dict[str, bool]:
        return commands.cancel(ls, args)

    @server.command("kat.lsp.listRuns")
    async def list_runs(ls: KatServer, *args: Any) -> list[dict[str, Any]]:
        return await commands.list_runs(ls)

    @server.command("kat.lsp.candidateDiff")
    async def candidate_diff(ls: KatServer, *args: Any) -> str:
        return await commands.candidate_diff(ls, args)

    @server.command("kat.lsp.reviewCandidate")
    async def review_candidate(ls: KatServer, *args: Any) -> dict[str, Any]:
        return await commands.review_candidate(ls, args)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    async def code_action(
        ls: KatServer, params: types.CodeActionParams
    ) -> list[types.CodeAction | types.Command] | None:
        return await actions.code_actions(ls, params)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: KatServer, params: types.HoverParams) -> types.Hover | None:
        return await actions.hover(ls, params)

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(ls: KatServer, params: types.WorkDoneProgressCancelParams) -> None:
        runs.cancel_by_token(ls, params.token)

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: KatServer, *args: Any) -> None:
        await runs.cancel_all(ls)

    return server
