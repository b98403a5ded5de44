"""The agent loop through a real sample: snapshot, checkout, sandboxed tools, the scripted
model over HTTP. Format errors go back to the model; limits and model failures end the
sample, never the run; trajectories are written; prompts only ever grow by appending."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kat_lsp.interfaces import RequestContext
from kat_lsp.model.openai_model import OpenAIModel
from kat_lsp.pipeline.sample import SampleOutcome, run_sample
from kat_lsp.workspace import take_snapshot
from tests.fakes.server import model_config

SOURCE = "def add(a, b):\n    return a - b\n"
FIX = {"command": "str_replace", "path": "calc.py", "old_str": "a - b", "new_str": "a + b"}


def edit(**args: Any) -> dict[str, Any]:
    return {"tool": "str_replace_editor", "args": args}


def bash(command: str) -> dict[str, Any]:
    return {"tool": "bash", "args": {"command": command}}


SUBMIT = {"tool": "submit", "args": {}}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "calc.py").write_text(SOURCE)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


async def sample(
    repo: Path, server, tmp_path: Path, phase: str = "generate", **settings: Any
) -> SampleOutcome:
    config = model_config(server.base_url, max_retries=1, **settings)
    snapshot = take_snapshot(repo, run_id="r1")
    try:
        return await run_sample(
            ctx=RequestContext(phase, "r1", 0, 0),  # type: ignore[arg-type]
            issue="add() subtracts",
            snapshot=snapshot,
            config=config,
            model=OpenAIModel(config),
            run_dir=tmp_path / "run",
        )
    finally:
        snapshot.remove()


def trajectory(tmp_path: Path, name: str = "generate-0") -> dict[str, Any]:
    return json.loads((tmp_path / "run" / "trajectories" / f"{name}.traj.json").read_text())


def chat(server) -> list[dict[str, Any]]:
    return [r for r in server.requests if r["path"].endswith("/chat/completions")]


async def test_a_sample_edits_submits_and_leaves_a_trajectory(repo, scripted, tmp_path):
    server = scripted(
        {
            "phases": {
                "generate": {"default": [bash("grep -n 'a - b' calc.py"), edit(**FIX), SUBMIT]}
            }
        }
    )
    outcome = await sample(repo, server, tmp_path)
    assert outcome.exit_status == "submitted"
    assert "-    return a - b\n+    return a + b" in outcome.patch
    assert outcome.files == {"calc.py": b"def add(a, b):\n    return a + b\n"}
    assert (repo / "calc.py").read_text() == SOURCE  # the user's file is untouched
    traj = trajectory(tmp_path)
    assert [s["action"].split(":")[0] for s in traj["trajectory"]] == [
        "bash",
        "str_replace_editor",
        "submit",
    ]
    assert "2:    return a - b" in traj["trajectory"][0]["observation"]
    assert traj["info"]["exit_status"] == "submitted"
    assert traj["info"]["submission"] == outcome.patch
    assert traj["info"]["model_stats"]["requests"] == 3
    # Prefix stability: every request extends the previous one exactly.
    bodies = [r["body"]["messages"] for r in chat(server)]
    for prev, cur in itertools.pairwise(bodies):
        assert cur[: len(prev)] == prev
    assert {t["function"]["name"] for t in chat(server)[0]["body"]["tools"]} == {
        "bash",
        "str_replace_editor",
        "submit",
    }


async def test_format_errors_go_back_to_the_model(repo, scripted, tmp_path):
    two_calls = {
        "tool_calls": [
            {"name": "bash", "arguments": {"command": "ls"}},
            {"name": "bash", "arguments": {"command": "pwd"}},
        ]
    }
    server = scripted(
        {
            "phases": {
                "generate": {
                    "default": [
                        {"content": "I think the bug is in calc.py."},  # no tool call
                        two_calls,
                        {
                            "tool_calls": [{"name": "bash", "arguments": '{"command": "ls'}]
                        },  # invalid JSON
                        {"tool": "teleport", "args": {}},  # unknown tool
                        edit(command="frobnicate", path="calc.py"),  # bad editor command
                        edit(**FIX),
                        SUBMIT,
                    ]
                }
            }
        }
    )
    outcome = await sample(repo, server, tmp_path, format_error_limit=6)
    assert outcome.exit_status == "submitted"
    assert "a + b" in outcome.patch
    messages = chat(server)[-1]["body"]["messages"]
    said = "\n".join(str(m.get("content")) for m in messages if m["role"] in ("user", "tool"))
    assert "no tool call" in said
    assert "2 tool calls" in said and "none was run" in said
    assert "teleport" in said
    assert "frobnicate" in said
    # Both calls of the two-call turn got an answer, so the next request stayed valid.
    answered = [m["tool_call_id"] for m in messages if m["role"] == "tool"]
    asked = [
        c["id"] for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []
    ]
    assert answered == asked[: len(answered)] and len(answered) >= 2


async def test_too_many_format_errors_in_a_row_end_the_sample(repo, scripted, tmp_path):
    server = scripted({"phases": {"generate": {"default": [{"content": "thinking"}] * 5}}})
    outcome = await sample(repo, server, tmp_path, format_error_limit=3)
    assert outcome.exit_status == "limits_exceeded"
    assert "3 malformed replies in a row" in outcome.outcome.message
    assert len(chat(server)) == 3


async def test_step_limit_keeps_the_current_diff(repo, scripted, tmp_path):
    server = scripted({"phases": {"generate": {"default": [edit(**FIX), bash("ls"), bash("ls")]}}})
    outcome = await sample(repo, server, tmp_path, step_limit=2)
    assert outcome.exit_status == "limits_exceeded"
    assert "a + b" in outcome.patch
    assert trajectory(tmp_path)["info"]["exit_status"] == "limits_exceeded"


async def test_time_limit_ends_a_hanging_command_and_kills_it(repo, scripted, tmp_path):
    server = scripted({"phases": {"generate": {"default": [bash("sleep 77.123 ; echo done")]}}})
    outcome = await sample(repo, server, tmp_path, time_limit=2.0, command_timeout=60.0)
    assert outcome.exit_status == "limits_exceeded"
    assert "time limit" in outcome.outcome.message
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 77.123" not in ps


async def test_a_failing_endpoint_ends_the_sample_with_the_reason(repo, scripted, tmp_path):
    server = scripted({"phases": {"generate": {"default": [{"error": 500}]}}})
    outcome = await sample(repo, server, tmp_path)
    assert outcome.exit_status == "model_error"
    assert "500" in outcome.outcome.message
    assert len(chat(server)) == 2  # one try + max_retries=1
    assert outcome.patch == ""


async def test_testgen_submit_carries_the_command(repo, scripted, tmp_path):
    server = scripted(
        {
            "phases": {
                "testgen": {
                    "default": [
                        edit(
                            command="create",
                            path="test_add.py",
                            file_text="from calc import add\nassert add(2, 2) == 4\n",
                        ),
                        {"tool": "submit", "args": {}},  # testgen needs a command: format error
                        {"tool": "submit", "args": {"command": "python3 test_add.py"}},
                    ]
                }
            }
        }
    )
    outcome = await sample(repo, server, tmp_path, phase="testgen")
    assert outcome.exit_status == "submitted"
    assert outcome.command == "python3 test_add.py"
    assert "+assert add(2, 2) == 4" in outcome.patch
    headers = chat(server)[0]["headers"]
    assert (headers["x-kat-phase"], headers["x-kat-sample"], headers["x-kat-round"]) == (
        "testgen",
        "0",
        "0",
    )


async def test_text_tool_mode_end_to_end(repo, scripted, tmp_path):
    block = "```str_replace_editor\n" + json.dumps(FIX) + "\n```"
    server = scripted(
        {
            "phases": {
                "generate": {
                    "default": [
                        {"content": "Let me look.\n```bash\ncat calc.py\n```"},
                        {"content": "Fix it:\n" + block},
                        {"content": "```submit\n```"},
                    ]
                }
            }
        }
    )
    outcome = await sample(repo, server, tmp_path, tool_mode="text")
    assert outcome.exit_status == "submitted"
    assert "a + b" in outcome.patch
    first = chat(server)[0]["body"]
    assert "tools" not in first
    assert "str_replace_editor" in first["messages"][0]["content"]  # tools described in the prompt
    assert "return a - b" in first["messages"][0]["content"] or "return a - b" in json.dumps(
        chat(server)[1]["body"]["messages"]
    )
