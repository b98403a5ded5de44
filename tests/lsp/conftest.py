"""Fixtures of the language-server tests: a buggy git repo, the scripted model over HTTP,
and `connect()`, which starts the real `kat-lsp serve` over stdio with pytest-lsp's client.

The script: generate samples 0 and 1 write two different correct fixes of `median()`,
sample 2 a wrong one; the reproduction test fails on the snapshot; the judge prefers fix A.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, client_capabilities

from kat_lsp.model.scripted import ScriptedServer
from tests.gitutil import git
from tests.lsp.editor import Editor, _plain

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "median"
SERVER_COMMAND = [sys.executable, "-m", "kat_lsp", "serve"]
BUGGY = "    middle = len(ordered) // 2\n    return ordered[middle]"
FIX_A = (
    "    middle = len(ordered) // 2\n    if len(ordered) % 2 == 0:\n"
    "        return (ordered[middle - 1] + ordered[middle]) / 2\n    return ordered[middle]"
)
FIX_B = (
    "    middle = len(ordered) // 2\n    if len(ordered) % 2:\n        return ordered[middle]\n"
    "    return (ordered[middle - 1] + ordered[middle]) / 2"
)
WRONG = "    middle = len(ordered) // 2\n    return (ordered[middle - 1] + ordered[middle]) / 2"
ISSUE = "median() returns the upper middle item for lists of even length; it should average the two middle items."


def _generate(new_str: str, *, view: bool = False) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    if view:
        turns.append(
            {"tool": "str_replace_editor", "args": {"command": "view", "path": "stats.py"}}
        )
    turns.append(
        {
            "tool": "str_replace_editor",
            "args": {
                "command": "str_replace",
                "path": "stats.py",
                "old_str": BUGGY,
                "new_str": new_str,
            },
        }
    )
    turns.append({"tool": "submit", "args": {}})
    return turns


def make_script(generate: dict[str, Any] | None = None) -> dict[str, Any]:
    test = "from stats import median\nassert median([1, 2, 3, 4]) == 2.5\nassert median([3, 1, 2]) == 2\n"
    return {
        "phases": {
            "generate": generate
            or {
                "0": _generate(FIX_A, view=True),
                "1": _generate(FIX_B),
                "default": _generate(WRONG),
            },
            "testgen": {
                "default": [
                    {
                        "tool": "str_replace_editor",
                        "args": {"command": "create", "path": "test_issue.py", "file_text": test},
                    },
                    {"tool": "submit", "args": {"command": "python3 test_issue.py"}},
                ]
            },
            "judge": {
                "default": {
                    "match": [
                        {
                            "contains": "% 2 == 0",
                            "turns": [{"tool": "score", "args": {"score": 9, "reason": "A"}}],
                        },
                        {
                            "contains": "% 2:",
                            "turns": [{"tool": "score", "args": {"score": 7, "reason": "B"}}],
                        },
                    ],
                    "turns": [{"tool": "score", "args": {"score": 2, "reason": "wrong"}}],
                }
            },
            "reflect": {"default": [{"content": "no reflection"}]},
        }
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("stats.py", "test_stats.py"):
        shutil.copy(EXAMPLE / name, root / name)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "initial")
    return root


@pytest.fixture
def model(scripted: Callable[..., ScriptedServer]) -> ScriptedServer:
    return scripted(make_script())


@pytest.fixture
def server_env(tmp_path: Path, model: ScriptedServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "KAT_", "XDG_"))}
    env.update(
        KAT_CACHE_DIR=str(tmp_path / "cache"),
        KAT_STATE_DIR=str(tmp_path / "state"),
        KAT_CONFIG_DIR=str(tmp_path / "userconf"),  # the user's trusted_folders: none
        OPENAI_BASE_URL=model.base_url,
        OPENAI_API_KEY="test-key",
        KAT_MODEL="scripted",
    )
    return env


def median_of_even(root: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", "from stats import median; print(median([1, 2, 3, 4]))"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def run_editor(command: list[str], repo: Path, env: dict[str, str], report: Path) -> dict[str, Any]:
    """Run a headless editor's driver script; its JSON report says what it saw."""
    proc = subprocess.run(
        ["timeout", "300", *command], cwd=repo, env=env, capture_output=True, text=True
    )
    data: dict[str, Any] = (
        json.loads(report.read_text()) if report.exists() else {"error": proc.stderr}
    )
    assert proc.returncode == 0 and "error" not in data, data
    candidates = data["result"]["candidates"]
    assert len(candidates) == 2
    assert data["titles"] == [c["title"] for c in candidates], "the code actions, in rank order"
    assert median_of_even(repo) == "2.5", "the preferred action fixed the bug"
    return data


FAST = {"testSamples": 1, "maxRetries": 0, "commandTimeout": 30}


def with_fast_settings(options: dict[str, Any]) -> dict[str, Any]:
    """FAST under the options, flat or inside their `kat` key (where the server looks then)."""
    if isinstance(options.get("kat"), dict):
        return {**options, "kat": {**FAST, **options["kat"]}}
    return {**FAST, **options}


@asynccontextmanager
async def connect(
    env: dict[str, str],
    root: Path,
    *,
    profile: str = "visual-studio-code",
    options: dict[str, Any] | None = None,
    args: tuple[str, ...] = (),
) -> AsyncIterator[Editor]:
    """The real server over stdio, initialized with a client profile and a workspace folder;
    `args`: more `kat-lsp serve` arguments (e.g. `--log-file`)."""
    client = await ClientServerConfig(
        server_command=[*SERVER_COMMAND, *args], server_env=env
    ).start()
    editor = Editor(client)
    uri = str(from_fs_path(str(root)))
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(profile),
            root_uri=uri,
            workspace_folders=[types.WorkspaceFolder(uri=uri, name=root.name)],
            initialization_options=with_fast_settings(options or {}),
        )
    )
    try:
        yield editor
    finally:
        await client.shutdown_session()
        await client.stop()


async def fix(editor: Editor, issue: str = ISSUE, **params: Any) -> dict[str, Any]:
    result = await editor.client.protocol.send_request_async(
        "kat/fixIssue", {"issue": issue, **params}
    )
    return dict(_plain(result))


async def command(editor: Editor, name: str, *args: Any) -> Any:
    result = await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(args))
    )
    return _plain(result)
