"""OpenAIModel against the scripted server over real HTTP, through the real openai client."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from kat_lsp.config import KatConfig
from kat_lsp.exceptions import (
    ConfigError,
    EndpointError,
    FormatError,
    ModelError,
    RequestRejected,
)
from kat_lsp.interfaces import Model, RequestContext
from kat_lsp.model import OpenAIModel, parse_action, render_tool_instructions
from kat_lsp.model.scripted import ScriptedServer
from kat_lsp.model.wire import ReplyTooLarge
from tests.fakes.server import model_config
from tests.faults.badserver import BadServer

Start = Callable[..., ScriptedServer]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "bash",
            "description": "Run a shell command in the repository.",
            "parameters": {
                "type": "object",
                "properties": {"command": {"type": "string", "description": "the command"}},
                "required": ["command"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "str_replace_editor",
            "description": "View and edit files.",
            "parameters": {
                "type": "object",
                "properties": {
                    "command": {"type": "string", "enum": ["view", "create", "str_replace"]},
                    "path": {"type": "string"},
                },
                "required": ["command", "path"],
            },
        },
    },
    {
        "type": "function",
        "function": {"name": "submit", "description": "Finish.", "parameters": {"type": "object"}},
    },
]
NAMES = ["bash", "str_replace_editor", "submit"]
USER = [{"role": "system", "content": "You fix bugs."}, {"role": "user", "content": "Fix it."}]


def ctx(phase: str = "generate", sample: int = 0, run: str = "run-1", round: int = 0) -> Any:
    return RequestContext(phase, run, round=round, sample=sample)  # type: ignore[arg-type]


def one_phase(turns: list[dict[str, Any]], phase: str = "generate") -> dict[str, Any]:
    return {"phases": {phase: {"default": turns}}}


async def test_headers_tools_and_phase_temperatures_reach_the_endpoint(scripted: Start) -> None:
    server = scripted(
        {
            "phases": {
                "generate": {"default": [{"tool": "bash", "args": {"command": "ls"}}]},
                "judge": {"default": [{"tool": "score", "args": {"score": 7, "reason": "ok"}}]},
            }
        }
    )
    model = OpenAIModel(model_config(server.base_url, max_tokens=512))
    assert isinstance(model, Model)
    await model.query(USER, ctx=ctx("generate", sample=5, run="abc", round=1), tools=TOOLS)
    await model.query(USER, ctx=ctx("judge", sample=2, run="abc"))
    await model.query(USER, ctx=ctx("judge", sample=2, run="abc"), temperature=0.0)

    first, judge, explicit = server.chat_requests()
    assert {k: first["headers"][k] for k in first["headers"] if k.startswith("x-kat-")} == {
        "x-kat-phase": "generate",
        "x-kat-run": "abc",
        "x-kat-round": "1",
        "x-kat-sample": "5",
    }
    assert judge["headers"]["x-kat-phase"] == "judge"
    assert judge["headers"]["x-kat-sample"] == "2"
    assert first["body"]["tools"] == TOOLS
    assert "tools" not in judge["body"]
    assert first["body"]["temperature"] == 1.0  # temperature_generate
    assert judge["body"]["temperature"] == 0.2  # temperature_judge
    assert explicit["body"]["temperature"] == 0.0
    assert first["body"]["model"] == "scripted-model"
    assert first["body"]["max_tokens"] == 512
    assert "parallel_tool_calls" not in first["body"]
    assert first["headers"]["authorization"] == "Bearer test-key"


async def test_max_tokens_is_left_to_the_endpoint_when_not_configured(scripted: Start) -> None:
    server = scripted(one_phase([{"content": "hi"}]))
    await OpenAIModel(model_config(server.base_url)).query(USER, ctx=ctx())
    assert "max_tokens" not in server.chat_requests()[0]["body"]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_transient_errors_are_retried_until_success(scripted: Start, status: int) -> None:
    server = scripted(one_phase([{"error": status, "times": 2, "then": {"content": "done"}}]))
    response = await OpenAIModel(model_config(server.base_url, max_retries=2)).query(
        USER, ctx=ctx()
    )
    assert response.content == "done"
    assert [r["status"] for r in server.chat_requests()] == [status, status, 200]


async def test_persistent_server_error_raises_model_error_after_all_retries(
    scripted: Start,
) -> None:
    server = scripted(one_phase([{"error": 500, "message": "CUDA out of memory"}]))
    model = OpenAIModel(model_config(server.base_url, max_retries=3))
    with pytest.raises(ModelError) as info:
        await model.query(USER, ctx=ctx())
    message = str(info.value)
    assert server.base_url in message
    assert "HTTP 500" in message
    assert "after 4 attempts" in message
    assert "CUDA out of memory" in message
    assert "server" in message and "log" in message
    assert len(server.chat_requests()) == 4


@pytest.mark.parametrize(
    ("status", "hint"),
    [(401, "API key"), (404, "ends with /v1"), (400, 'tool_mode = "text"')],
)
async def test_client_errors_are_not_retried_and_say_what_to_check(
    scripted: Start, status: int, hint: str
) -> None:
    server = scripted(one_phase([{"error": status}]))
    model = OpenAIModel(model_config(server.base_url, max_retries=3))
    with pytest.raises(ModelError, match=f"HTTP {status}") as info:
        await model.query(USER, ctx=ctx(), tools=TOOLS)
    assert hint in str(info.value)
    assert len(server.chat_requests()) == 1


async def test_a_timed_out_request_is_retried(scripted: Start) -> None:
    slow_once = {"content": "late", "delay": 5.0, "times": 1, "then": {"content": "on time"}}
    server = scripted(one_phase([slow_once]))
    model = OpenAIModel(model_config(server.base_url, request_timeout=0.5, max_retries=1))
    response = await model.query(USER, ctx=ctx())
    assert response.content == "on time"
    assert len(server.chat_requests()) == 2


async def test_a_request_that_always_times_out_names_the_setting(scripted: Start) -> None:
    server = scripted(one_phase([{"content": "late", "delay": 5.0}]))
    model = OpenAIModel(model_config(server.base_url, request_timeout=0.3, max_retries=0))
    with pytest.raises(ModelError, match=r"request_timeout = 0\.3 s"):
        await model.query(USER, ctx=ctx())


async def test_dropped_connections_are_retried(scripted: Start) -> None:
    server = scripted(one_phase([{"error": "disconnect", "times": 1, "then": {"content": "ok"}}]))
    response = await OpenAIModel(model_config(server.base_url)).query(USER, ctx=ctx())
    assert response.content == "ok"
    assert len(server.chat_requests()) == 2


async def test_unreachable_endpoint_says_to_check_the_server_and_url() -> None:
    closed = ScriptedServer(one_phase([]))
    url = closed.base_url
    closed.stop()  # the port is now free: nothing listens there
    model = OpenAIModel(model_config(url, max_retries=0))
    with pytest.raises(ModelError, match="cannot reach the model endpoint") as info:
        await model.query(USER, ctx=ctx())
    assert url in str(info.value) and "/v1" in str(info.value)


def test_missing_endpoint_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        OpenAIModel(KatConfig(model="m"))


TOOL_TURNS: dict[str, dict[str, Any]] = {
    "valid": {"content": "Looking.", "tool": "bash", "args": {"command": "ls -la"}},
    "invalid_json": {"tool_calls": [{"name": "bash", "arguments": '{"command": "ls'}]},
    "not_object": {"tool_calls": [{"name": "bash", "arguments": '["ls"]'}]},
    "unknown_tool": {"tool": "rm_everything", "args": {"path": "/"}},
    "no_call": {"content": "I think the bug is in parse()."},
    "two_calls": {
        "tool_calls": [
            {"name": "bash", "arguments": {"command": "ls"}},
            {"name": "submit", "arguments": "{}"},
        ]
    },
    "empty_arguments": {"tool_calls": [{"name": "submit", "arguments": ""}]},
    "empty_reply": {},
}


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls_are_decoded_and_problems_reported(scripted: Start, stream: bool) -> None:
    server = scripted(
        {"phases": {"generate": {str(i): [t] for i, t in enumerate(TOOL_TURNS.values())}}}
    )
    model = OpenAIModel(model_config(server.base_url, stream=stream))
    got = {}
    for i, name in enumerate(TOOL_TURNS):
        got[name] = await model.query(USER, ctx=ctx(sample=i), tools=TOOLS)

    valid = got["valid"]
    assert [(c.name, c.arguments) for c in valid.tool_calls] == [("bash", {"command": "ls -la"})]
    assert valid.content == "Looking." and valid.format_errors == []

    invalid = got["invalid_json"]
    assert invalid.tool_calls == []
    assert len(invalid.format_errors) == 1
    assert "not valid JSON" in invalid.format_errors[0]
    assert '{"command": "ls' in invalid.format_errors[0]  # quotes what was sent
    # the raw arguments stay in the message, so the conversation shows what the model did
    assert invalid.message["tool_calls"][0]["function"]["arguments"] == '{"command": "ls'

    not_object = got["not_object"]
    assert not_object.tool_calls == []
    assert "must be a JSON object" in not_object.format_errors[0]

    unknown = got["unknown_tool"]
    assert [c.name for c in unknown.tool_calls] == ["rm_everything"]
    assert unknown.format_errors == []

    no_call = got["no_call"]
    assert no_call.tool_calls == [] and no_call.format_errors == []
    assert no_call.message == {"role": "assistant", "content": "I think the bug is in parse()."}

    two = got["two_calls"]
    assert [(c.name, c.arguments) for c in two.tool_calls] == [
        ("bash", {"command": "ls"}),
        ("submit", {}),
    ]
    assert len({c.id for c in two.tool_calls}) == 2

    assert [(c.name, c.arguments) for c in got["empty_arguments"].tool_calls] == [("submit", {})]

    # an empty reply still gives a message that endpoints accept back (content "", not null)
    assert got["empty_reply"].message == {"role": "assistant", "content": ""}
    assert got["empty_reply"].tool_calls == [] and got["empty_reply"].format_errors == []


async def test_streaming_and_non_streaming_give_the_same_response(scripted: Start) -> None:
    turns: list[dict[str, Any]] = [
        {"content": "First I look around. " * 5, "tool": "bash", "args": {"command": "ls -la src"}},
        {
            "tool_calls": [
                {"name": "bash", "arguments": '{"comm'},
                {"name": "submit", "arguments": {}},
            ]
        },
        {"content": "A plain answer with ünïcödé and a long tail " * 3},
    ]
    server = scripted(one_phase(turns))
    results = {}
    for stream in (False, True):
        model = OpenAIModel(model_config(server.base_url, stream=stream))
        messages = list(USER)
        replies = []
        for _ in turns:
            response = await model.query(messages, ctx=ctx(), tools=TOOLS)
            replies.append(
                (
                    response.message,
                    response.content,
                    response.tool_calls,
                    response.format_errors,
                    response.usage.prompt_tokens,
                    response.usage.completion_tokens,
                )
            )
            messages.append(response.message)
        results[stream] = replies
    assert results[False] == results[True]
    streamed = [r for r in server.chat_requests() if r["body"].get("stream")]
    assert len(streamed) == 3
    assert streamed[0]["body"]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("stream", [False, True])
async def test_appended_message_is_what_the_next_request_sends(
    scripted: Start, stream: bool
) -> None:
    turns: list[dict[str, Any]] = [
        {
            "content": "Let me see.",
            "tool": "str_replace_editor",
            "args": {"command": "view", "path": "a.py"},
        },
        {"tool": "bash", "args": {"command": "python -c 'print(1)'"}},
        {"content": "done"},
    ]
    server = scripted(one_phase(turns))
    model = OpenAIModel(model_config(server.base_url, stream=stream))
    messages = list(USER)
    sent = []
    for _ in range(3):
        response = await model.query(messages, ctx=ctx(), tools=TOOLS)
        sent.append(response.message)
        messages.append(response.message)
        for call in response.tool_calls:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": "ok"})
    bodies = [r["body"]["messages"] for r in server.chat_requests()]
    # each request's messages extend the previous request's, byte for byte
    for before, after in itertools.pairwise(bodies):
        assert json.dumps(after[: len(before)]) == json.dumps(before)
    # and the assistant messages arrive exactly as the model object built them
    received = [m for m in bodies[-1] if m["role"] == "assistant"]
    assert [json.dumps(m) for m in received] == [json.dumps(m) for m in sent[:2]]


async def test_usage_per_request_running_total_and_cost(scripted: Start) -> None:
    server = scripted(one_phase([{"content": "x" * 400}, {"content": "y" * 40}]))
    model = OpenAIModel(
        model_config(server.base_url, price_input_per_mtok=2.0, price_output_per_mtok=10.0)
    )
    first = await model.query(USER, ctx=ctx())
    second = await model.query([*USER, first.message], ctx=ctx())
    assert first.usage.completion_tokens == 100  # the server counts len(text) // 4
    assert second.usage.completion_tokens == 10
    assert first.usage.prompt_tokens > 0 and first.usage.requests == 1
    assert second.usage.prompt_tokens > first.usage.prompt_tokens
    assert first.usage.cost == pytest.approx(
        (first.usage.prompt_tokens * 2.0 + 100 * 10.0) / 1_000_000
    )
    assert model.usage.requests == 2
    assert model.usage.completion_tokens == 110
    assert first.usage.cost is not None and second.usage.cost is not None
    assert model.usage.cost == pytest.approx(first.usage.cost + second.usage.cost)
    assert model.usage.model_seconds >= first.usage.model_seconds > 0


async def test_cost_is_unknown_without_prices(scripted: Start) -> None:
    server = scripted(one_phase([{"content": "hello"}]))
    model = OpenAIModel(model_config(server.base_url, price_input_per_mtok=2.0))
    response = await model.query(USER, ctx=ctx())
    assert response.usage.cost is None and model.usage.cost is None
    assert response.usage.completion_tokens == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_a_response_without_usage_counts_zero_tokens(scripted: Start, stream: bool) -> None:
    server = scripted({"usage": False, **one_phase([{"tool": "bash", "args": {"command": "ls"}}])})
    model = OpenAIModel(
        model_config(
            server.base_url, stream=stream, price_input_per_mtok=1.0, price_output_per_mtok=1.0
        )
    )
    response = await model.query(USER, ctx=ctx(), tools=TOOLS)
    assert [c.name for c in response.tool_calls] == ["bash"]
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (0, 0)
    assert response.usage.requests == 1 and response.usage.cost == 0.0


# --- text tool mode ---


def test_tool_instructions_list_tools_arguments_and_the_reply_format() -> None:
    text = render_tool_instructions(TOOLS)
    assert text == render_tool_instructions(TOOLS)  # deterministic: keeps the prompt prefix stable
    assert "exactly ONE action block" in text
    assert '```str_replace_editor\n{"command": "view", "path": "src/app.py"}\n```' in text
    assert "```bash\nls -la\n```" in text
    assert "### bash\nRun a shell command in the repository." in text
    assert "- command (string; required): the command" in text
    assert '- command (string; required; one of "view", "create", "str_replace")' in text
    assert "### submit\nFinish.\nArguments: none" in text


@pytest.mark.parametrize(
    ("reply", "name", "arguments"),
    [
        (
            'I will look.\n```str_replace_editor\n{"command": "view", "path": "a.py"}\n```\n',
            "str_replace_editor",
            {"command": "view", "path": "a.py"},
        ),
        ("```bash\nls -la | head\n```", "bash", {"command": "ls -la | head"}),
        ('```bash\n{"command": "pytest -q"}\n```', "bash", {"command": "pytest -q"}),
        (
            "```bash\n{ echo a; echo b; } > out.txt\n```",
            "bash",
            {"command": "{ echo a; echo b; } > out.txt"},
        ),
        ("Done.\n```submit\n```", "submit", {}),
        (
            "Here is the bug:\n```python\nx = 1\n```\nNow:\n```bash\ncat a.py\n```",
            "bash",
            {"command": "cat a.py"},
        ),
        (
            '````str_replace_editor\n{"command": "create", "path": "r.md",\n "file_text": "```\ncode\n```\n"}\n````',
            "str_replace_editor",
            {"command": "create", "path": "r.md", "file_text": "```\ncode\n```\n"},
        ),
    ],
)
def test_parse_action_accepts_one_action_block(
    reply: str, name: str, arguments: dict[str, Any]
) -> None:
    call = parse_action(reply, NAMES, call_id="text-3")
    assert (call.id, call.name, call.arguments) == ("text-3", name, arguments)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("I would run ls.", "No action block found"),
        ("```python\nprint(1)\n```", "```python is not a tool"),
        ("```bash\nls\n```\n```bash\npwd\n```", "2 action blocks"),
        ('```str_replace_editor\n{"command": "view", path}\n```', "not valid JSON"),
        ('```bash\n{"command": "ls"\n```', "not valid JSON"),
        ('```str_replace_editor\n["view"]\n```', "must be a JSON object"),
        ("```str_replace_editor\n```", "is empty"),
    ],
)
def test_parse_action_explains_the_format_when_the_reply_is_wrong(
    reply: str, expected: str
) -> None:
    with pytest.raises(FormatError) as info:
        parse_action(reply, NAMES)
    message = str(info.value)
    assert expected in message
    assert "exactly one action block" in message  # every error restates the format
    assert "bash, str_replace_editor, submit" in message


async def test_text_mode_sends_no_tools_and_parses_the_reply(scripted: Start) -> None:
    turns = [
        {"content": 'Look first.\n```str_replace_editor\n{"command": "view", "path": "a.py"}\n```'},
        {"content": "Now run it:\n```bash\npython a.py\n```"},
        {"content": "I am not sure what to do."},
    ]
    server = scripted(one_phase(turns))
    model = OpenAIModel(model_config(server.base_url, tool_mode="text"))
    messages = list(USER)
    replies = []
    for _ in turns:
        replies.append(await model.query(messages, ctx=ctx(), tools=TOOLS))
        messages += [replies[-1].message, {"role": "user", "content": "(result)"}]
    assert [(c.id, c.name, c.arguments) for r in replies[:2] for c in r.tool_calls] == [
        ("text-0", "str_replace_editor", {"command": "view", "path": "a.py"}),
        ("text-1", "bash", {"command": "python a.py"}),
    ]
    assert replies[0].message == {"role": "assistant", "content": turns[0]["content"]}
    assert replies[2].tool_calls == []
    assert len(replies[2].format_errors) == 1
    assert "No action block" in replies[2].format_errors[0]
    assert all("tools" not in r["body"] for r in server.chat_requests())


async def test_text_mode_without_tools_is_a_plain_reply(scripted: Start) -> None:
    server = scripted(one_phase([{"content": "The round showed ```bash``` misuse."}], "reflect"))
    model = OpenAIModel(model_config(server.base_url, tool_mode="text"))
    response = await model.query(USER, ctx=ctx("reflect"))
    assert response.content == "The round showed ```bash``` misuse."
    assert response.tool_calls == [] and response.format_errors == []


def test_importing_the_model_package_does_not_import_openai() -> None:
    code = "import sys, kat_lsp.model; print('openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_a_call_cut_off_at_max_tokens_is_reported_as_such(scripted: Start) -> None:
    cut = {"tool_calls": [{"name": "bash", "arguments": '{"command": "cat > a.py <<EOF\\nimp'}]}
    server = scripted(one_phase([{**cut, "finish_reason": "length"}]))
    model = OpenAIModel(model_config(server.base_url, max_tokens=16))
    response = await model.query(USER, ctx=ctx(), tools=TOOLS)
    assert response.tool_calls == []
    assert "not valid JSON" in response.format_errors[0]
    assert "cut off at the token limit (max_tokens)" in response.format_errors[0]


@pytest.mark.parametrize(("retries", "said"), [(0, "after 1 attempt"), (2, "after 3 attempts")])
async def test_messages_count_the_attempts_really_made(
    scripted: Start, retries: int, said: str
) -> None:
    server = scripted(one_phase([{"error": 500}]))
    model = OpenAIModel(model_config(server.base_url, max_retries=retries))
    with pytest.raises(ModelError, match=said) as info:
        await model.query(USER, ctx=ctx())
    assert not isinstance(info.value, EndpointError), "a 5xx is transient: one sample ends"
    assert len(server.chat_requests()) == retries + 1


@pytest.mark.parametrize(
    ("fault", "kind"),
    [("401", EndpointError), ("404-model", EndpointError), ("400-tools", EndpointError),
     ("html-200", EndpointError), ("400-context", RequestRejected)],
)  # fmt: skip
async def test_configuration_errors_are_endpoint_errors(fault: str, kind: type) -> None:
    with BadServer(fault) as server:
        model = OpenAIModel(model_config(server.base_url, max_retries=3))
        with pytest.raises(kind):
            await model.query(USER, ctx=ctx(), tools=TOOLS)
        assert len(server.requests) == 1, "not retried"


@pytest.mark.parametrize(
    ("fault", "stream"), [("huge", False), ("huge", True), ("huge-error", False)]
)
async def test_a_reply_past_the_size_cap_fails_without_retries(fault: str, stream: bool) -> None:
    with BadServer(fault) as server:
        model = OpenAIModel(model_config(server.base_url, stream=stream, max_retries=2))
        with pytest.raises(ReplyTooLarge, match="larger than 16 MiB"):
            await model.query(USER, ctx=ctx())
        assert len(server.requests) == 1


async def test_arguments_nested_too_deep_are_a_format_error() -> None:
    with BadServer("deep") as server:
        response = await OpenAIModel(model_config(server.base_url)).query(
            USER, ctx=ctx(), tools=TOOLS
        )
    assert response.tool_calls == []
    [error] = response.format_errors
    assert "'bash' call nest arrays or objects more than 32 levels deep" in error


async def test_a_server_gone_after_answering_is_transient_not_a_configuration_error(
    scripted: Start,
) -> None:
    server = scripted(one_phase([{"content": "hi"}]))
    model = OpenAIModel(model_config(server.base_url, max_retries=0))
    await model.query(USER, ctx=ctx())
    server.stop()
    with pytest.raises(ModelError, match=r"broke off|cannot reach") as info:
        await model.query(USER, ctx=ctx())
    assert not isinstance(info.value, EndpointError)
