"""The bash and submit tools as the model meets them, running through real bubblewrap."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from kat_lsp.agent.tools import BashTool, EditorTool, SubmitTool, make_tools, tool_schemas
from kat_lsp.config import KatConfig
from kat_lsp.exceptions import FormatError, Submitted
from kat_lsp.sandbox import BwrapExecutor, LocalExecutor

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "script.py").write_text("print('from script')\n")
    (root / "notes.txt").write_text("use vim or less\n")
    return root


BashFactory = Callable[..., BashTool]


@pytest.fixture
async def bash_tool() -> AsyncIterator[BashFactory]:
    """Makes `bash` tools over sandboxes of their own; the sandboxes stop after the test."""
    made: list[BwrapExecutor] = []

    def make(tree: Path, **settings: object) -> BashTool:
        made.append(BwrapExecutor(tree))
        return BashTool(made[-1], KatConfig(**settings))  # type: ignore[arg-type]

    yield make
    for executor in made:
        await executor.aclose()


async def test_exit_code_and_output_are_reported(tree: Path, bash_tool: BashFactory) -> None:
    tool = bash_tool(tree)
    assert await tool({"command": "echo hi; exit 4"}) == "[exit code 4]\nhi\n"
    assert await tool({"command": "true"}) == "[exit code 0] (no output)"


async def test_timeout_is_explained(tree: Path, bash_tool: BashFactory) -> None:
    tool = bash_tool(tree, command_timeout=1)
    out = await tool({"command": "echo begun; sleep 30"})
    assert out.startswith("[timed out after 1 second: the command and every process")
    assert "begun" in out and "timeout 20 CMD" in out


async def test_long_output_is_clipped_to_the_configured_cap(
    tree: Path, bash_tool: BashFactory
) -> None:
    tool = bash_tool(tree, output_cap=2000)
    out = await tool({"command": "seq 1 100000"})
    assert out.startswith("[exit code 0]\n1\n2\n3\n") and out.endswith("99999\n100000\n")
    assert "characters clipped: use head/tail/grep" in out
    assert len(out) < 2200


@pytest.mark.parametrize(
    ("command", "alternative"),
    [
        ("vim script.py", "str_replace_editor"),
        ("cd . && nano notes.txt", "str_replace_editor"),
        ("git diff | less", "sed -n"),
        ("more notes.txt", "cat FILE"),
        ("python", "python -c"),
        ("python3 -u", "python -c"),
        ("node", "node -e"),
        ("bash", "bash -c"),
        ("top", "ps aux"),
        ("man git", "--help"),
    ],
)
async def test_interactive_programs_are_refused(
    tree: Path, command: str, alternative: str, bash_tool: BashFactory
) -> None:
    out = await bash_tool(tree)({"command": f"touch ran; {command}"})
    assert out.startswith("Command refused, nothing was run")
    assert alternative in out
    assert not (tree / "ran").exists()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("python3 script.py", "from script"),
        ("python3 -c 'print(6 * 7)'", "42"),
        ("grep -c vim notes.txt", "1"),
        ("echo 'print(5)' | python3", "5"),
        ("python3 <<'EOF'\nprint('less is more')\nEOF", "less is more"),
        ("git init -q && git log 2>&1; echo done", "done"),
        ("top -b -n 1 | head -1 | cut -c1-3", "top"),
    ],
)
async def test_ordinary_commands_run(
    tree: Path, command: str, expected: str, bash_tool: BashFactory
) -> None:
    out = await bash_tool(tree)({"command": command})
    assert out.startswith("[exit code 0]\n"), out
    assert expected in out


@pytest.mark.parametrize("arguments", [{}, {"command": ""}, {"command": "  \n"}, {"command": 3}])
async def test_bad_bash_arguments_are_format_errors(
    tree: Path, arguments: dict[str, object], bash_tool: BashFactory
) -> None:
    with pytest.raises(FormatError, match="command"):
        await bash_tool(tree)(arguments)


async def test_bash_schema_tells_the_rules(tree: Path, bash_tool: BashFactory) -> None:
    schema = bash_tool(tree, command_timeout=45, output_cap=5000).schema()
    function = schema["function"]
    assert schema["type"] == "function" and function["name"] == "bash"
    assert function["parameters"]["required"] == ["command"]
    for rule in ("45 seconds", "5000 characters", "no network", "str_replace_editor"):
        assert rule in function["description"]
    assert "/tmp keeps its files from one call to the next" in function["description"]
    unsandboxed = BashTool(LocalExecutor(tree), KatConfig()).schema()["function"]["description"]
    assert "no network" not in unsandboxed


# --- submit and the tool set --------------------------------------------------------


async def test_submit_in_generate_ends_the_sample() -> None:
    with pytest.raises(Submitted) as caught:
        await SubmitTool("generate")({})
    assert caught.value.payload == {}


async def test_submit_in_testgen_carries_the_command() -> None:
    tool = SubmitTool("testgen")
    with pytest.raises(Submitted) as caught:
        await tool({"command": "python tests/test_issue.py"})
    assert caught.value.payload == {"command": "python tests/test_issue.py"}
    for bad in ({}, {"command": ""}, {"command": None}):
        with pytest.raises(FormatError, match="command"):
            await tool(bad)
    description = tool.schema()["function"]["description"]
    assert "exit 0 when the issue is fixed" in description and "non-zero" in description


async def test_tmp_persists_between_calls_but_processes_do_not(
    tree: Path, bash_tool: BashFactory
) -> None:
    tool = bash_tool(tree)
    first = await tool({"command": "echo kept > /tmp/note && (sleep 300 &) && echo bg started"})
    assert first == "[exit code 0]\nbg started\n"
    assert await tool({"command": "cat /tmp/note"}) == "[exit code 0]\nkept\n"
    assert await tool({"command": "pgrep -c sleep"}) == "[exit code 1]\n0\n"
    assert not (tree / "note").exists() and not Path("/tmp/note").exists()


@pytest.mark.parametrize("phase", ["generate", "testgen"])
async def test_make_tools_gives_the_three_tools(tree: Path, phase: str) -> None:
    executor = BwrapExecutor(tree)
    tools = make_tools(phase, tree, executor, KatConfig())  # type: ignore[arg-type]
    assert [tool.name for tool in tools] == ["bash", "str_replace_editor", "submit"]
    schemas = tool_schemas(tools)
    assert [s["function"]["name"] for s in schemas] == ["bash", "str_replace_editor", "submit"]
    editor = tools[1]
    assert isinstance(editor, EditorTool)
    await editor({"command": "create", "path": "made.txt", "file_text": "x\n"})
    out = await tools[0]({"command": "cat made.txt"})
    await executor.aclose()
    assert out == "[exit code 0]\nx\n"
    with pytest.raises(ValueError, match="judge"):
        make_tools("judge", tree, BwrapExecutor(tree), KatConfig())
