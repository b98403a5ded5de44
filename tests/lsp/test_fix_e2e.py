"""kat/fixIssue end to end: real `kat-lsp serve`, scripted model over HTTP, real git repo,
real bubblewrap."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from kat_lsp.model.scripted import ScriptedServer
from tests.gitutil import git
from tests.lsp.conftest import SERVER_COMMAND, connect, fix


async def test_fix_issue_resolves_with_ranked_candidates_and_progress(
    repo: Path, server_env: dict[str, str], model: ScriptedServer
) -> None:
    async with connect(server_env, repo) as editor:
        result = await fix(editor, samples=3)
        reports = editor.client.progress_reports
    assert result["status"] == "done"
    cands = result["candidates"]
    assert [c["rank"] for c in cands] == [1, 2]
    assert [c["judgeScore"] for c in cands] == [9, 7]
    assert cands[0]["title"] == "KAT #1 · score 9.0 · tests 1/1 · 1 sample"
    assert cands[0]["files"] == [(repo / "stats.py").as_uri()]
    assert set(cands[0]) == {
        "id",
        "rank",
        "title",
        "judgeScore",
        "testsPassed",
        "testsTotal",
        "clusterSize",
        "files",
    }
    [token] = list(reports)
    kinds = [type(r) for r in reports[token]]
    assert kinds[0] is types.WorkDoneProgressBegin and kinds[-1] is types.WorkDoneProgressEnd
    assert types.WorkDoneProgressReport in kinds
    assert reports[token][-1].message == "2 candidates"
    phases = [u["phase"] for u in editor.updates]
    assert phases[-1] == "done" and "generate" in phases and "judge" in phases
    assert editor.updates[-1]["candidates"] == cands
    assert {r["headers"]["x-kat-run"] for r in model.requests} == {result["runId"]}


async def test_the_agent_sees_unsaved_buffers_and_the_disk_stays_untouched(
    repo: Path, server_env: dict[str, str], model: ScriptedServer
) -> None:
    stats = repo / "stats.py"
    on_disk = stats.read_text()
    unsaved = "# UNSAVED-MARKER: only in the editor\n" + on_disk
    async with connect(server_env, repo) as editor:
        editor.open(stats)
        editor.change(stats, unsaved)
        result = await fix(editor, samples=3)
        # The candidate was made against the buffer: its action applies to the buffer.
        actions = await editor.client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=editor.uri(stats)),
                range=types.Range(
                    start=types.Position(line=0, character=0),
                    end=types.Position(line=0, character=0),
                ),
                context=types.CodeActionContext(diagnostics=[]),
            )
        )
    viewed = [
        m["content"]
        for r in model.chat_requests("generate")
        for m in r["body"]["messages"]
        if m["role"] == "tool"
    ]
    assert any("UNSAVED-MARKER" in text for text in viewed), (
        "the view of stats.py showed the buffer"
    )
    assert stats.read_text() == on_disk
    assert result["status"] == "done" and len(actions or []) == 2
    assert git(repo, "status", "--porcelain") == ""


async def test_two_runs_in_flight_at_once_both_finish(
    repo: Path, server_env: dict[str, str]
) -> None:
    async with connect(server_env, repo) as editor:
        first, second = await asyncio.gather(
            fix(editor, samples=3), fix(editor, "median() is wrong for [1, 2, 3, 4]", samples=2)
        )
    assert first["runId"] != second["runId"]
    assert first["status"] == second["status"] == "done"
    assert len(first["candidates"]) == 2 and len(second["candidates"]) == 2
    assert {u["runId"] for u in editor.updates} == {first["runId"], second["runId"]}


async def test_without_an_endpoint_fix_issue_fails_saying_what_to_set(
    repo: Path, server_env: dict[str, str]
) -> None:
    del server_env["OPENAI_BASE_URL"]
    async with connect(server_env, repo) as editor:
        with pytest.raises(JsonRpcException) as failure:
            await fix(editor)
        shown = [m.message for m in editor.client.messages]
    assert (
        "OPENAI_BASE_URL" in failure.value.message and "no model endpoint" in failure.value.message
    )
    assert any("OPENAI_BASE_URL" in m for m in shown)


async def test_settings_from_the_client_reach_the_run(
    repo: Path, server_env: dict[str, str], model: ScriptedServer
) -> None:
    """initializationOptions under a `kat` key, then didChangeConfiguration, camelCase."""
    server_env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"  # wrong: the client's setting wins
    async with connect(
        server_env, repo, options={"kat": {"baseUrl": model.base_url, "samples": 2}}
    ) as editor:
        first = await fix(editor)
        editor.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={
                    "kat": {
                        "baseUrl": model.base_url,
                        "samples": 1,
                        "testSamples": 1,
                        "editorOnly": True,
                    }
                }
            )
        )
        second = await fix(editor)
        warnings = [m.message for m in editor.client.messages]
    generate = model.chat_requests("generate")
    samples = {
        run: {r["headers"]["x-kat-sample"] for r in generate if r["headers"]["x-kat-run"] == run}
        for run in (first["runId"], second["runId"])
    }
    assert samples == {first["runId"]: {"0", "1"}, second["runId"]: {"0"}}
    assert any("editorOnly" in m for m in warnings), "unknown settings are reported"


async def test_tcp_mode_speaks_lsp(tmp_path: Path, server_env: dict[str, str]) -> None:
    """With the token of its token file (tests/security/test_lsp.py: without it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token_file = tmp_path / "token"
    token_file.write_text("a-token-of-at-least-16-chars\n")
    token_file.chmod(0o600)
    proc = await asyncio.create_subprocess_exec(
        *SERVER_COMMAND,
        "--tcp",
        "--port",
        str(port),
        "--token-file",
        str(token_file),
        env=server_env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "capabilities": {},
                        "processId": None,
                        "initializationOptions": {"token": "a-token-of-at-least-16-chars"},
                    },
                }
            ).encode()
            writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
            answer: dict[str, Any] = {}
            while "id" not in answer:  # window/logMessage may come first
                header = await reader.readuntil(b"\r\n\r\n")
                length = int(header.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                answer = json.loads(await reader.readexactly(length))
            writer.close()
    finally:
        proc.terminate()
        await proc.wait()
    assert answer["id"] == 1
    caps = answer["result"]["capabilities"]
    assert "kat.lsp.fixIssue" in caps["executeCommandProvider"]["commands"]
    assert caps["codeActionProvider"]["codeActionKinds"] == ["quickfix"]
