"""The agent's tools in phases `generate` and `testgen`: bash, str_replace_editor, submit.

`make_tools` builds them for one sample's checkout; `tool_schemas` gives the OpenAI
function-tool definitions sent with every request. docs/reference/tools.md describes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kat_lsp.agent.tools.bash import BashTool
from kat_lsp.agent.tools.editor import EditorTool
from kat_lsp.agent.tools.submit import SubmitTool
from kat_lsp.config import KatConfig
from kat_lsp.interfaces import Executor, Phase, Tool

__all__ = ["BashTool", "EditorTool", "SubmitTool", "make_tools", "tool_schemas"]


def make_tools(phase: Phase, root: Path, executor: Executor, config: KatConfig) -> list[Tool]:
    """bash (through `executor`), str_replace_editor (confined to `root`) and submit."""
    if phase not in ("generate", "testgen"):
        raise ValueError(f"phase {phase!r} has no agent tools (only generate and testgen do)")
    return [BashTool(executor, config), EditorTool(root, config), SubmitTool(phase)]


def tool_schemas(tools: list[Tool]) -> list[dict[str, Any]]:
    return [tool.schema() for tool in tools]
