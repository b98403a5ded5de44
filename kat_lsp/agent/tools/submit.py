"""`submit`: how a sample ends. Raises `Submitted` (loop control), never returns.

Phase `generate`: `submit {}` — the candidate is the checkout's diff.
Phase `testgen`: `submit {command}` — the command that runs the reproduction test.
"""

from __future__ import annotations

from typing import Any

from kat_lsp.agent.tools.args import check_arguments
from kat_lsp.exceptions import FormatError, Submitted
from kat_lsp.interfaces import Phase

GENERATE = (
    "Finish: call this once your fix is complete. Your answer is the diff of the repository "
    "against its starting state (the changes you made to its files); an unchanged repository "
    "means no answer. Remove scratch files you do not want in the diff first. Takes no arguments."
)
TESTGEN = (
    "Finish: call this once your reproduction test is written. `command` runs the test from "
    "the repository root (e.g. `python tests/test_issue.py` or `pytest -q tests/test_x.py`); it "
    "must exit 0 when the issue is fixed and non-zero while the issue still reproduces. The test "
    "is that command plus the files you created or changed."
)


class SubmitTool:
    """The `submit` tool of phase `generate` or `testgen`."""

    name = "submit"

    def __init__(self, phase: Phase) -> None:
        if phase not in ("generate", "testgen"):
            raise ValueError(f"submit exists in phases generate and testgen, not {phase!r}")
        self.phase = phase

    def schema(self) -> dict[str, Any]:
        if self.phase == "generate":
            parameters: dict[str, Any] = {"type": "object", "properties": {}}
            description = GENERATE
        else:
            command = {
                "type": "string",
                "description": "Shell command, run from the repository root, that runs the test.",
            }
            parameters = {
                "type": "object",
                "properties": {"command": command},
                "required": ["command"],
            }
            description = TESTGEN
        function = {"name": self.name, "description": description, "parameters": parameters}
        return {"type": "function", "function": function}

    async def __call__(self, arguments: dict[str, Any]) -> str:
        if self.phase == "generate":
            # Arguments cannot change what is submitted; refusing them would only cost a turn.
            raise Submitted()
        command = check_arguments(self.schema(), arguments)["command"].strip()
        if not command:
            raise FormatError(
                "submit: `command` is empty; give the shell command that runs your "
                "reproduction test from the repository root."
            )
        raise Submitted(command=command)
