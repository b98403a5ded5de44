"""The scripted OpenAI-compatible server: turn choice, errors, recording, and process mode."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from kat_lsp.exceptions import ModelError
from kat_lsp.interfaces import RequestContext
from kat_lsp.model import OpenAIModel
from kat_lsp.model.script import conversations_from_log, script_from_conversations
from kat_lsp.model.scripted import ScriptedServer
from tests.fakes.server import model_config, scripted_process

Start = Callable[..., ScriptedServer]
USER = [{"role": "user", "content": "The function f(x) crashes when x <= 0."}]


def ctx(phase: str, sample: int = 0, run: str = "run-1") -> RequestContext:
    return RequestContext(phase, run, sample=sample)  # type: ignore[arg-type]


async def answers(model: OpenAIModel, phase: str, sample: int, turns: int) -> list[str]:
    """Play `turns` turns of one trajectory; the reply contents."""
    messages = list(USER)
    contents = []
    for _ in range(turns):
        response = await model.query(messages, ctx=ctx(phase, sample))
        contents.append(response.content)
        messages.append(response.message)
    return contents


async def test_sample_key_picks_its_list_and_others_use_default(scripted: Start) -> None:
    server = scripted(
        {
            "phases": {
                "generate": {
                    "default": [{"content": "d0"}, {"content": "d1"}],
                    "3": [{"content": "s3-0"}, {"content": "s3-1"}, {"content": "s3-2"}],
                }
            }
        }
    )
    model = OpenAIModel(model_config(server.base_url))
    assert await answers(model, "generate", 3, 3) == ["s3-0", "s3-1", "s3-2"]
    assert await answers(model, "generate", 0, 3) == ["d0", "d1", "(script exhausted)"]
    assert await answers(model, "generate", 7, 1) == ["d0"]


async def test_match_rules_pick_by_message_text_else_fallback(scripted: Start) -> None:
    judge = {
        "default": {
            "match": [
                {"contains": "x <= 0", "turns": [{"content": "guards x"}]},
                {"contains": "return 1", "turns": [{"content": "returns 1"}]},
            ],
            "turns": [{"content": "no rule"}],
        }
    }
    server = scripted({"phases": {"judge": judge}})
    model = OpenAIModel(model_config(server.base_url))
    first = await model.query(USER, ctx=ctx("judge"))
    patch = [{"role": "user", "content": "Candidate:\n+    return 1"}]
    second = await model.query(patch, ctx=ctx("judge", 1))
    third = await model.query([{"role": "user", "content": "other"}], ctx=ctx("judge", 2))
    assert [first.content, second.content, third.content] == ["guards x", "returns 1", "no rule"]


async def test_match_sees_tool_call_arguments(scripted: Start) -> None:
    rules = {
        "match": [
            {
                "contains": "pytest -q",
                "turns": [{"content": "first turn"}, {"content": "ran tests"}],
            }
        ]
    }
    server = scripted({"phases": {"generate": rules}})
    history: list[dict[str, Any]] = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "bash", "arguments": '{"command": "pytest -q"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "1 passed"},
    ]
    response = await OpenAIModel(model_config(server.base_url)).query(history, ctx=ctx("generate"))
    assert response.content == "ran tests"


async def test_unknown_phase_is_a_400_that_names_the_script_phases(scripted: Start) -> None:
    server = scripted({"phases": {"generate": {"default": []}, "judge": {"default": []}}})
    model = OpenAIModel(model_config(server.base_url, max_retries=3))
    with pytest.raises(ModelError, match="HTTP 400") as info:
        await model.query(USER, ctx=ctx("reflect"))
    assert "no phase 'reflect'" in str(info.value)
    assert "generate, judge" in str(info.value)
    assert len(server.chat_requests()) == 1


async def test_error_hit_counts_are_per_run_sample_and_turn(scripted: Start) -> None:
    flaky = {"error": 503, "times": 1, "then": {"content": "ok"}}
    server = scripted({"phases": {"generate": {"default": [flaky]}}})
    model = OpenAIModel(model_config(server.base_url, max_retries=0))
    with pytest.raises(ModelError, match="HTTP 503"):
        await model.query(USER, ctx=ctx("generate", 0, run="a"))
    assert (await model.query(USER, ctx=ctx("generate", 0, run="a"))).content == "ok"
    # another sample and another run each meet the error once themselves
    with pytest.raises(ModelError):
        await model.query(USER, ctx=ctx("generate", 1, run="a"))
    with pytest.raises(ModelError):
        await model.query(USER, ctx=ctx("generate", 0, run="b"))
    statuses = [r["status"] for r in server.chat_requests()]
    assert statuses == [503, 200, 503, 503]
    assert server.chat_requests()[0]["headers"].get("x-kat-run") == "a"


async def test_models_endpoint_and_usage_follow_the_openai_shape(scripted: Start) -> None:
    server = scripted({"model": "tiny-coder", "phases": {"generate": [{"content": "abcdefgh"}]}})
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    listed = await client.models.list()
    assert [m.id for m in listed.data] == ["tiny-coder"]
    completion = await client.chat.completions.create(
        model="any",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"X-KAT-Phase": "generate"},
    )
    await client.close()
    assert completion.choices[0].message.content == "abcdefgh"
    assert completion.usage is not None and completion.usage.completion_tokens == 2
    assert completion.model == "any"
    assert [r["method"] for r in server.requests] == ["GET", "POST"]


def test_a_script_without_phases_is_refused_with_an_example(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"content": "hi"}]', encoding="utf-8")
    with pytest.raises(ValueError, match='"phases"'):
        ScriptedServer(bad)
    out = subprocess.run(
        [sys.executable, "-m", "kat_lsp.model.scripted", "--script", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert "cannot start the scripted server" in out.stderr and '"phases"' in out.stderr


async def test_process_mode_serves_logs_and_writes_its_port(tmp_path: Path) -> None:
    script = {"phases": {"generate": {"default": [{"tool": "bash", "args": {"command": "ls"}}]}}}
    log, port_file = tmp_path / "requests.jsonl", tmp_path / "port"
    args = ("--log", str(log), "--port-file", str(port_file))
    with scripted_process(script, tmp_path, *args) as proc:
        assert proc.base_url.startswith("http://127.0.0.1:") and proc.base_url.endswith("/v1")
        assert proc.base_url == f"http://127.0.0.1:{port_file.read_text()}/v1"
        model = OpenAIModel(model_config(proc.base_url, stream=True))
        response = await model.query(USER, ctx=ctx("generate", 2, run="cli"))
        await model.aclose()
        assert [(c.name, c.arguments) for c in response.tool_calls] == [("bash", {"command": "ls"})]
    assert proc.process.returncode == 0  # SIGTERM stops it cleanly
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["headers"]["x-kat-sample"] == "2" and record["headers"]["x-kat-run"] == "cli"
    assert record["body"]["messages"] == USER and record["body"]["stream"] is True
    assert record["status"] == 200
    assert (
        record["response"]["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "bash"
    )


async def test_a_logged_session_replays_as_a_script(scripted: Start, tmp_path: Path) -> None:
    original: dict[str, Any] = {
        "phases": {
            "generate": {
                "0": [
                    {"content": "look", "tool": "bash", "args": {"command": "ls"}},
                    {"tool": "submit", "args": {}},
                ],
                "1": [{"tool_calls": [{"name": "bash", "arguments": "{broken"}]}],
            },
            "reflect": {"default": [{"content": "Both samples edited f."}]},
        }
    }
    log = tmp_path / "session.jsonl"
    server = scripted(original, log=log)
    model = OpenAIModel(model_config(server.base_url))

    async def session() -> list[dict[str, Any]]:
        seen = []
        for phase, sample, turns in (("generate", 0, 2), ("generate", 1, 1), ("reflect", 0, 1)):
            messages = list(USER)
            for _ in range(turns):
                response = await model.query(messages, ctx=ctx(phase, sample))
                seen.append(response.message)
                messages.append(response.message)
        return seen

    recorded = await session()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    replay = scripted(script_from_conversations(conversations_from_log(records)))
    model = OpenAIModel(model_config(replay.base_url))
    assert await session() == recorded


async def test_a_malformed_turn_is_a_400_saying_so(scripted: Start) -> None:
    server = scripted({"phases": {"generate": ["not a turn"]}})
    with pytest.raises(ModelError, match="HTTP 400") as info:
        await OpenAIModel(model_config(server.base_url)).query(USER, ctx=ctx("generate"))
    assert "turn 0 of phase 'generate' is not an object" in str(info.value)


async def test_requests_are_answered_concurrently(scripted: Start) -> None:
    server = scripted({"phases": {"generate": [{"content": "ok", "delay": 2.0}]}})
    model = OpenAIModel(model_config(server.base_url))
    replies = await asyncio.gather(*(model.query(USER, ctx=ctx("generate", i)) for i in range(4)))
    assert [r.content for r in replies] == ["ok"] * 4
    assert server.max_in_flight == 4 and server.in_flight == 0
