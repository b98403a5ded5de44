"""Runs in flight: `kat/fixIssue` (and `kat.lsp.fixIssue`) from request to result.

Each run is a worker process (`worker.py`) driven by its own asyncio task, several at
once. Every way of stopping a run cancels that task: `$/cancelRequest` of the request,
the progress cancel button (`window/workDoneProgress/cancel`) and `kat.lsp.cancel`;
the task then asks the worker to cancel, and the pipeline there stops samples and
tests, removes checkouts and records the run as cancelled before the task ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from kat_lsp.config import KatConfig, load_config
from kat_lsp.exceptions import ConfigError
from kat_lsp.pipeline.api import RunResult
from kat_lsp.server.params import FixArgs, parse
from kat_lsp.server.progress import RunHandle, Updates, final_event, first_line, start_progress
from kat_lsp.server.runproc import RunFailed, RunProcess
from kat_lsp.server.shapes import candidate_json

if TYPE_CHECKING:
    from kat_lsp.server.state import KatServer

log = logging.getLogger("kat_lsp.server")


class RequestFailed(JsonRpcException):
    """LSP's RequestFailed: the request was fine, the server could not do it."""

    CODE = -32803


FIX_USAGE = '{"issue": "...", "root"?: "/abs/path", "samples"?: n, "rounds"?: n}'


def make_config(
    settings: dict[str, Any], root: Path, params: FixArgs, trusted: bool | None
) -> KatConfig:
    """The run's configuration; ConfigError says what to set. Blocking (files, bwrap probe).
    `settings` come from the (authenticated) client; `trusted` decides whether the
    workspace's own files may weaken safety or redirect credentials."""
    asked = {"samples": params.samples, "rounds": params.rounds}
    overrides = {**settings, **{k: v for k, v in asked.items() if v is not None}}
    config = load_config(root, overrides, None, trusted=trusted)
    config.require_endpoint()
    from kat_lsp.sandbox import check_sandbox

    check_sandbox(config)
    return config


def warn_untrusted(server: KatServer, root: Path, config: KatConfig) -> None:
    """Say (once per set of names) which workspace settings were ignored and why."""
    from kat_lsp.config import untrusted_message
    from kat_lsp.userconfig import user_config_file

    ignored = tuple(config.untrusted_ignored)
    if not ignored or ignored in server.warned_ignored:
        return
    server.warned_ignored.add(ignored)
    how = (
        "in VS Code run 'Workspaces: Manage Workspace Trust'; in other editors set "
        f"initializationOptions.trustedWorkspace = true or add the folder to trusted_folders "
        f"in {user_config_file(os.environ)} (docs/reference/lsp.md#workspace-trust)"
    )
    server.show(types.MessageType.Warning, f"KAT: {untrusted_message(config, root, how)}")


CANCEL_GRACE = 60.0
"""Seconds a cancelled run gets to stop its samples and remove its checkouts."""


async def _drive(
    server: KatServer, handle: RunHandle, config: KatConfig, overrides: dict[str, str]
) -> RunResult:
    """The run in its worker process; its events become updates. Cancelling this task
    cancels the run and waits (up to CANCEL_GRACE) for the worker's cleanup."""
    updates = Updates(server, handle)
    end = "failed"
    proc: RunProcess | None = None
    try:
        proc = await RunProcess.spawn(
            handle.run_id, handle.issue, str(handle.root), overrides, config
        )
        result = await proc.outcome(updates.on_event)
        if result is None:
            raise asyncio.CancelledError  # the worker was cancelled by someone else
        handle.result = result
        n = len(result.candidates)
        failed = result.status == "failed"
        end = f"failed: {result.error}" if failed else f"{n} candidate{'s' * (n != 1)}"
        if result.error and not failed:  # every sample failed on the model: say why
            end += f": {result.error}"
            server.show(types.MessageType.Warning, f"KAT run {handle.run_id}: {end}")
        return result
    except asyncio.CancelledError:
        end = "cancelled"
        if proc is not None:
            proc.cancel()
            with contextlib.suppress(RunFailed, TimeoutError):
                await asyncio.wait_for(proc.outcome(updates.on_event), CANCEL_GRACE)
        final_event(handle, "cancelled", "cancelled")
        raise
    except (RunFailed, OSError) as exc:  # OSError: the worker could not start
        end = f"failed: {exc}"
        final_event(handle, "failed", end)
        raise
    finally:
        if proc is not None:
            await proc.close()
        updates.send()
        if handle.token is not None:
            server.work_done_progress.end(handle.token, types.WorkDoneProgressEnd(message=end))
        failed = end.startswith("failed")
        server.log_client(
            types.MessageType.Error if failed else types.MessageType.Info,
            f"KAT run {handle.run_id}: {end}",
        )
        if failed:
            server.show(types.MessageType.Error, f"KAT run {handle.run_id} {end}")


async def fix_issue(server: KatServer, raw: Any) -> dict[str, Any]:
    """Start a run and wait for its end: `{"runId", "status", "candidates": [...]}`."""
    params = parse(FixArgs, raw, FIX_USAGE)
    root = server.resolve_root(params.root)
    try:
        config = await asyncio.to_thread(
            make_config, dict(server.settings), root, params, server.trusted
        )
    except ConfigError as exc:
        message = f"KAT cannot start a run: {exc}"
        server.show(types.MessageType.Error, message)
        raise RequestFailed(message) from exc
    warn_untrusted(server, root, config)
    overrides = await server.unsaved_overrides(root)
    handle = RunHandle(await asyncio.to_thread(_new_run_id), params.issue.strip(), root)
    server.runs[handle.run_id] = handle
    await start_progress(server, handle, params.work_done_token)
    server.log_client(
        types.MessageType.Info,
        f"KAT run {handle.run_id} started in {root} ({config.samples} samples, "
        f"{len(overrides)} unsaved buffers): {first_line(handle.issue)}",
    )
    task = asyncio.create_task(
        _drive(server, handle, config, overrides), name=f"kat-run-{handle.run_id}"
    )
    handle.task = task
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:  # $/cancelRequest: stop the run, wait for its cleanup
        task.cancel()
        await asyncio.wait({task})
        raise
    answer: dict[str, Any] = {"runId": handle.run_id, "status": handle.status, "candidates": []}
    if task.cancelled():
        return answer
    if (error := task.exception()) is not None:
        raise RequestFailed(f"KAT run {handle.run_id} failed: {error}") from error
    result = task.result()
    answer["candidates"] = [candidate_json(c, root) for c in result.candidates]
    if result.error:
        answer["error"] = result.error
    return answer


def _new_run_id() -> str:
    from kat_lsp.pipeline.runner import new_run_id

    return new_run_id()


def cancel_run(server: KatServer, run_id: str) -> bool:
    handle = server.runs.get(run_id)
    if handle is None or handle.task is None or handle.task.done():
        return False
    handle.task.cancel()
    server.log_client(types.MessageType.Info, f"KAT run {run_id}: cancelling")
    return True


def cancel_by_token(server: KatServer, token: int | str) -> bool:
    return any(cancel_run(server, h.run_id) for h in list(server.runs.values()) if h.token == token)


async def cancel_all(server: KatServer, timeout: float = 30.0) -> None:
    """Cancel every run in flight and wait for their cleanup (at shutdown)."""
    tasks = [h.task for h in server.runs.values() if h.task is not None and not h.task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)
