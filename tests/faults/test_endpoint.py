"""Endpoint configuration errors stop the run with one line that says what to fix.

Against a misbehaving endpoint (tests/faults/badserver.py), a real `kat-lsp fix` with two
generation samples and one test sample: a configuration error (refused, 401, 404 path or
model, 400 context or tools, a 200 that is no API) exits 2 with ONE `kat-lsp: error:`
line naming the endpoint, the status and the fix, records it in run.json, does not
burn retries on every sample, and leaves the user's repository as it was. Transient
errors (429, 500) stay per sample: exit 3, with the last message. Over LSP a 401 answers
`status: "failed"` with that error and shows it (window/showMessage, Error). A request
refused at a sample's first turn stops the run; later, it ends only that sample.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from kat_lsp.exceptions import EndpointError
from kat_lsp.interfaces import RequestContext
from kat_lsp.model.openai_model import OpenAIModel
from kat_lsp.model.scripted import ScriptedServer
from kat_lsp.pipeline.sample import run_sample
from kat_lsp.workspace import take_snapshot
from tests.fakes.server import model_config
from tests.faults.badserver import BadServer
from tests.faults.endpoint_run import fault_fix
from tests.lsp.conftest import connect, fix
from tests.security.harness import fingerprint, make_repo

BOUND = 30.0
"""Seconds any endpoint error may take to stop a run with these settings (it takes ~2-4)."""

CONFIG_ERRORS = [
    # fault, what the line must say besides the endpoint, max requests (no retries burnt)
    (None, ["cannot reach the model endpoint", "after 2 attempts", "/v1"], 0),
    ("401", ["HTTP 401", "check the API key"], 3),
    ("404-path", ["HTTP 404", "HTML page", "base_url ends with /v1"], 3),
    ("404-model", ["HTTP 404", "does not exist", "check the model name 'scripted'"], 3),
    ("400-context", ["HTTP 400", "maximum context length", "context window"], 3),
    ("400-tools", ["HTTP 400", "does not support tools", 'tool_mode = "text"', "--tool-mode"], 3),
    ("html-200", ["HTTP 200 with an HTML page", "/v1"], 3),
    ("text-200", ["HTTP 200 with a reply that is not JSON (text/plain)", "/v1"], 3),
]


@pytest.mark.parametrize(("fault", "says", "most"), CONFIG_ERRORS, ids=lambda v: str(v))
def test_a_configuration_error_stops_the_run_with_one_line(
    tmp_path: Path, fault: str | None, says: list[str], most: int
) -> None:
    run = fault_fix(tmp_path, fault, case=fault or "refused")
    assert run.returncode == 2, run.stderr
    [line] = run.error_lines
    assert run.base_url in line
    for text in says:
        assert text in line
    assert "Traceback" not in run.stderr
    assert "no sample produced a candidate" not in run.stderr
    assert len(run.requests) <= most, "a configuration error is not retried by every sample"
    assert run.run_json is not None
    assert run.run_json["status"] == "failed"
    assert run.run_json["error"] == line.removeprefix("kat-lsp: error: ")
    assert run.repo_after == run.repo_before
    assert run.seconds < BOUND


@pytest.mark.parametrize("fault", ["429", "500"])
def test_transient_errors_stay_per_sample_and_the_last_one_is_shown(
    tmp_path: Path, fault: str
) -> None:
    run = fault_fix(tmp_path, fault)
    assert run.returncode == 3, run.stderr
    [line] = run.no_candidate_lines
    assert "every sample failed on the model endpoint" in line
    assert f"HTTP {fault} (after 2 attempts)" in line
    assert run.base_url in line
    assert len(run.requests) == 3 * 2, "each of the 3 samples made its 2 attempts"
    assert run.run_json is not None and run.run_json["status"] == "done"
    assert "after 2 attempts" in (run.run_json["error"] or "")
    assert run.repo_after == run.repo_before
    assert run.seconds < BOUND


async def test_over_lsp_a_bad_key_fails_the_request_and_is_shown(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    before = fingerprint(repo)
    with BadServer("401") as model:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "KAT_"))}
        env.update(
            KAT_CACHE_DIR=str(tmp_path / "cache"),
            KAT_STATE_DIR=str(tmp_path / "state"),
            OPENAI_BASE_URL=model.base_url,
            OPENAI_API_KEY="sk-bad",
            KAT_MODEL="scripted",
        )
        async with connect(env, repo, options={"samples": 2}) as editor:
            answer = await fix(editor, "clamp(15, 0, 10) returns 0 instead of 10.")
            shown = [m for m in editor.client.messages if m.type == types.MessageType.Error]
    assert answer["status"] == "failed"
    assert answer["candidates"] == []
    assert "HTTP 401" in answer["error"] and model.base_url in answer["error"]
    assert "check the API key" in answer["error"]
    assert any(answer["error"] in m.message for m in shown), shown
    [record] = list((tmp_path / "state").rglob("run.json"))
    assert '"status": "failed"' in record.read_text()
    assert len(model.requests) <= 3, "one first request per sample, no retries"
    assert fingerprint(repo) == before


async def _one_sample(tmp_path: Path, base_url: str) -> Any:
    tmp_path.mkdir()
    repo = make_repo(tmp_path)
    config = model_config(base_url, max_retries=1)
    snapshot = take_snapshot(repo, run_id="r1")
    try:
        return await run_sample(
            ctx=RequestContext("generate", "r1", 0, 0),
            issue="clamp(15, 0, 10) returns 0 instead of 10.",
            snapshot=snapshot,
            config=config,
            model=OpenAIModel(config),
            run_dir=tmp_path / "run",
        )
    finally:
        snapshot.remove()


TOO_LONG = {"error": 400, "message": "This model's maximum context length is 2048 tokens."}


async def test_a_refusal_of_the_first_request_stops_the_run_later_ends_one_sample(
    tmp_path: Path, scripted: Callable[..., ScriptedServer]
) -> None:
    first = scripted({"phases": {"generate": {"default": [TOO_LONG]}}})
    with pytest.raises(EndpointError, match="HTTP 400"):
        await _one_sample(tmp_path / "a", first.base_url)
    [trajectory] = (tmp_path / "a" / "run" / "trajectories").glob("*.traj.json")
    assert json.loads(trajectory.read_text())["info"]["exit_status"] == "endpoint_error"
    assert len(first.chat_requests()) == 1, "not retried"

    ls = {"tool": "bash", "args": {"command": "ls"}}
    later = scripted({"phases": {"generate": {"default": [ls, TOO_LONG]}}})
    outcome = await _one_sample(tmp_path / "b", later.base_url)
    assert outcome.exit_status == "model_error"
    assert "maximum context length" in outcome.outcome.message
