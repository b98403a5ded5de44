"""Cancelling runs (three ways), and runs listed after a server restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, client_capabilities

from kat_lsp.model.scripted import ScriptedServer
from tests.gitutil import git
from tests.lsp.conftest import ISSUE, SERVER_COMMAND, command, connect, fix, make_script
from tests.lsp.editor import Editor, _plain


def processes_running(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(proc.name))
    return found


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def wait_for(check: Callable[[], object], timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


def files_under(folder: Path) -> list[Path]:
    """Files below `folder` (os.walk: a tree removed meanwhile is no error)."""
    return [Path(d, f) for d, _, files in os.walk(folder) for f in files]


@pytest.mark.parametrize("how", ["cancelRequest", "progressCancel", "kat.lsp.cancel"])
async def test_cancel_mid_run_stops_samples_and_leaves_nothing_behind(
    repo: Path,
    server_env: dict[str, str],
    scripted: Callable[..., ScriptedServer],
    tmp_path: Path,
    how: str,
) -> None:
    marker = f"sleep 60.{random.randrange(10**6):06d}"
    slow = [
        {"tool": "bash", "args": {"command": "echo started"}},
        {"tool": "bash", "args": {"command": f"{marker}; echo late"}},
        {"tool": "submit", "args": {}},
    ]
    server_env["OPENAI_BASE_URL"] = scripted(make_script({"default": slow})).base_url
    before = (repo / "stats.py").read_text()
    async with connect(server_env, repo, options={"samples": 2}) as editor:
        msg_id = str(uuid.uuid4())
        request = asyncio.ensure_future(
            editor.client.protocol.send_request_async(
                "kat/fixIssue", {"issue": ISSUE}, msg_id=msg_id
            )
        )
        await wait_for(lambda: processes_running(marker))
        [update] = editor.updates[:1]
        run_id = update["runId"]
        if how == "cancelRequest":
            editor.client.cancel_request(types.CancelParams(id=msg_id))
            with pytest.raises(JsonRpcRequestCancelled):
                await request
        elif how == "progressCancel":
            [token] = list(editor.client.progress_reports)
            editor.client.window_work_done_progress_cancel(
                types.WorkDoneProgressCancelParams(token=token)
            )
            assert _plain(await request) == {
                "runId": run_id,
                "status": "cancelled",
                "candidates": [],
            }
            assert editor.client.progress_reports[token][-1].message == "cancelled"
        else:
            assert await command(editor, "kat.lsp.cancel", {"runId": run_id}) == {"cancelled": True}
            assert _plain(await request)["status"] == "cancelled"
            assert await command(editor, "kat.lsp.cancel", {"runId": run_id}) == {
                "cancelled": False
            }
        await wait_for(lambda: editor.updates[-1]["phase"] == "cancelled", timeout=30)
        runs = await command(editor, "kat.lsp.listRuns")
    assert processes_running(marker) == [], "the sandboxed command was killed"
    assert files_under(tmp_path / "cache" / "checkouts") == []
    assert files_under(tmp_path / "cache" / "snapshots") == []
    record = json.loads((tmp_path / "state" / "runs" / run_id / "run.json").read_text())
    assert record["status"] == "cancelled"
    assert [(r["runId"], r["status"]) for r in runs] == [(run_id, "cancelled")]
    assert (repo / "stats.py").read_text() == before
    assert git(repo, "status", "--porcelain") == ""


async def test_runs_are_listed_and_served_after_a_restart(
    repo: Path, server_env: dict[str, str]
) -> None:
    async with connect(server_env, repo) as editor:
        result = await fix(editor, samples=3)
        live = await command(editor, "kat.lsp.listRuns")
    async with connect(server_env, repo, profile="neovim@v0.7") as editor:
        runs = await command(editor, "kat.lsp.listRuns")
        ref = {"runId": result["runId"], "candidateId": result["candidates"][0]["id"]}
        diff = await command(editor, "kat.lsp.candidateDiff", ref)
        applied = await command(editor, "kat.lsp.applyCandidate", ref)
    assert runs == live
    [run] = runs
    assert run["runId"] == result["runId"] and run["status"] == "done"
    assert run["issue"] == ISSUE and run["root"] == str(repo)
    assert run["candidates"] == result["candidates"]
    assert run["created"].endswith("Z") and run["created"][:2] == "20"
    assert diff.startswith("diff --git a/stats.py b/stats.py") and "% 2 == 0" in diff
    assert applied == {"applied": True, "files": ["stats.py"]}
    assert "% 2 == 0" in (repo / "stats.py").read_text()


async def test_stale_checkouts_of_dead_servers_are_pruned_at_start(
    repo: Path, server_env: dict[str, str], tmp_path: Path
) -> None:
    stale = tmp_path / "cache" / "checkouts" / "20260101-000000-dead00" / "generate-0"
    stale.mkdir(parents=True)
    (stale / "stats.py").write_text("left behind\n")
    (stale.parent / "owner.pid").write_text("999999999\n\n")
    async with connect(server_env, repo) as editor:
        messages = editor.client.log_messages
        await wait_for(
            lambda: any("removed 1 checkouts" in m.message for m in messages), timeout=30
        )
    assert not stale.parent.exists()


async def test_bad_requests_get_messages_that_say_what_to_pass(
    repo: Path, server_env: dict[str, str]
) -> None:
    async with connect(server_env, repo) as editor:
        failures = []
        for method, params in [
            ("kat/fixIssue", {"issue": "  "}),
            ("kat/fixIssue", {"issue": "x", "samples": 0}),
            ("kat/fixIssue", {"issue": "x", "root": str(repo / "missing")}),
        ]:
            with pytest.raises(Exception) as failure:
                await editor.client.protocol.send_request_async(method, params)
            failures.append(str(failure.value))
        with pytest.raises(Exception) as unknown:
            await command(
                editor,
                "kat.lsp.candidateDiff",
                {"runId": "20200101-000000-abcdef", "candidateId": "c0"},
            )
        with pytest.raises(Exception) as malformed:
            await command(editor, "kat.lsp.candidateDiff", {"runId": "nope", "candidateId": "c0"})
    assert '"runId" is not a run id' in str(malformed.value)
    assert '"issue" is missing or empty' in failures[0]
    assert '"samples" must be a whole number >= 1' in failures[1]
    assert "no such folder" in failures[2]
    assert "kat.lsp.listRuns lists the runs" in str(unknown.value)


async def test_a_run_whose_worker_dies_fails_with_a_message_and_is_pruned_later(
    repo: Path, server_env: dict[str, str], scripted: Callable[..., ScriptedServer], tmp_path: Path
) -> None:
    marker = f"sleep 60.{random.randrange(10**6):06d}"
    slow = [{"tool": "bash", "args": {"command": marker}}, {"tool": "submit", "args": {}}]
    server_env["OPENAI_BASE_URL"] = scripted(make_script({"default": slow})).base_url
    async with connect(server_env, repo, options={"samples": 1}) as editor:
        request = asyncio.ensure_future(fix(editor))
        await wait_for(lambda: processes_running(marker))
        server = editor.client._server
        assert server is not None
        [worker] = [
            p for p in processes_running("kat_lsp.server.worker") if parent_of(p) == server.pid
        ]
        os.kill(worker, signal.SIGKILL)
        with pytest.raises(JsonRpcException) as failure:
            await request
        assert "the run's process ended unexpectedly (exit code -9)" in failure.value.message
        assert any("ended unexpectedly" in m.message for m in editor.client.messages)
        await wait_for(lambda: editor.updates[-1]["phase"] == "failed", timeout=10)
        runs = await command(editor, "kat.lsp.listRuns")
    assert [r["status"] for r in runs] == ["failed"]
    assert files_under(tmp_path / "cache" / "checkouts"), "a killed run cannot clean up"
    async with connect(server_env, repo):  # the next server prunes what it left
        await wait_for(lambda: not files_under(tmp_path / "cache" / "checkouts"), timeout=30)
    await wait_for(lambda: not processes_running(marker), timeout=30)


async def test_shutdown_with_a_run_in_flight_cancels_it_and_cleans_up(
    repo: Path, server_env: dict[str, str], scripted: Callable[..., ScriptedServer], tmp_path: Path
) -> None:
    marker = f"sleep 60.{random.randrange(10**6):06d}"
    slow = [{"tool": "bash", "args": {"command": marker}}, {"tool": "submit", "args": {}}]
    server_env["OPENAI_BASE_URL"] = scripted(make_script({"default": slow})).base_url
    async with connect(server_env, repo, options={"samples": 2}) as editor:
        request = asyncio.ensure_future(fix(editor))
        await wait_for(lambda: processes_running(marker))
        run_id = editor.updates[0]["runId"]
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await request
    assert processes_running(marker) == []
    assert files_under(tmp_path / "cache" / "checkouts") == []
    record = json.loads((tmp_path / "state" / "runs" / run_id / "run.json").read_text())
    assert record["status"] == "cancelled"


async def test_when_the_editor_kills_the_server_its_runs_cancel_and_clean_up(
    repo: Path, server_env: dict[str, str], scripted: Callable[..., ScriptedServer], tmp_path: Path
) -> None:
    marker = f"sleep 60.{random.randrange(10**6):06d}"
    slow = [{"tool": "bash", "args": {"command": marker}}, {"tool": "submit", "args": {}}]
    server_env["OPENAI_BASE_URL"] = scripted(make_script({"default": slow})).base_url
    client = await ClientServerConfig(server_command=SERVER_COMMAND, server_env=server_env).start()
    editor = Editor(client)
    uri = repo.as_uri()
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("neovim@v0.7"),
            workspace_folders=[types.WorkspaceFolder(uri=uri, name="project")],
            initialization_options={"samples": 1, "testSamples": 1},
        )
    )
    request = asyncio.ensure_future(fix(editor))
    await wait_for(lambda: processes_running(marker))
    run_id = editor.updates[0]["runId"]
    assert client._server is not None
    client._server.kill()  # no shutdown, no exit: the worker sees its stdin close
    await client._server.wait()
    with contextlib.suppress(BaseException):
        await client.stop()
    request.cancel()
    await wait_for(lambda: not processes_running(marker), timeout=30)
    await wait_for(lambda: not files_under(tmp_path / "cache" / "checkouts"), timeout=30)
    record = json.loads((tmp_path / "state" / "runs" / run_id / "run.json").read_text())
    assert record["status"] == "cancelled"
