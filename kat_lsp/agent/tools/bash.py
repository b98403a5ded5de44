"""`bash {command}`: one shell command in the sample's checkout, through its executor.

The observation always starts with the outcome (`[exit code N]` or the timeout), says
`(no output)` when there was none, and keeps the executor's clipped head and tail.
Interactive programs are refused before anything runs (see `interactive`).
"""

from __future__ import annotations

from typing import Any

from kat_lsp.agent.tools.args import check_arguments
from kat_lsp.agent.tools.interactive import refusal
from kat_lsp.config import KatConfig
from kat_lsp.exceptions import FormatError
from kat_lsp.interfaces import CommandResult, Executor
from kat_lsp.sandbox.bwrap import BwrapExecutor

DESCRIPTION = """\
Run a bash command in the repository. Every call starts a fresh shell at the repository root: `cd` and variables do not carry over (chain commands with &&).
{sandbox}The command and everything it started are killed after {timeout}; processes left in the background do not outlive the call.
stdout and stderr come back together, capped at {cap} characters (the beginning and the end are kept): narrow big outputs with head, tail or grep.
There is no terminal and no stdin: interactive programs (vi/nano/emacs, less/more, man, top, bare python/node/bash sessions) are refused. Edit files with str_replace_editor, read them with cat/sed -n/grep, run code with python -c '...' or a script."""
SANDBOXED = (
    "It runs in a sandbox: no network; only the repository and /tmp are writable. /tmp keeps "
    "its files from one call to the next, but it is private to this sandbox and lost when "
    "the task ends (keep what matters in the repository).\n"
)


def seconds(value: float) -> str:
    return f"{value:g} second" + ("" if value == 1 else "s")


def describe(result: CommandResult, timeout: float) -> str:
    """The observation the model reads for one command."""
    output = result.output if result.output else "(no output)"
    if result.timed_out:
        return (
            f"[timed out after {seconds(timeout)}: the command and every process it started "
            f"were killed]\n{output}\n"
            "Hint: make it finish sooner: a smaller input or a narrower test selection (one "
            "test file, -k NAME), or bound a long step inside the same command, e.g. "
            "`timeout 20 CMD`, or `CMD > /tmp/log 2>&1 & sleep 20; tail -50 /tmp/log`."
        )
    if result.exit_code is not None and result.exit_code < 0:
        status = f"[killed by signal {-result.exit_code}]"
    else:
        status = f"[exit code {result.exit_code}]"
    separator = " " if not result.output else "\n"
    return f"{status}{separator}{output}"


class BashTool:
    """The `bash` tool: runs a command with the configured timeout and output cap."""

    name = "bash"

    def __init__(self, executor: Executor, config: KatConfig) -> None:
        self.executor = executor
        self.timeout = config.command_timeout
        self.output_cap = config.output_cap
        self._schema = self._build_schema()  # checked against on every call: build it once

    def schema(self) -> dict[str, Any]:
        return self._schema

    def _build_schema(self) -> dict[str, Any]:
        sandbox = SANDBOXED if isinstance(self.executor, BwrapExecutor) else ""
        description = DESCRIPTION.format(
            sandbox=sandbox, timeout=seconds(self.timeout), cap=self.output_cap
        )
        command = {"type": "string", "description": "The bash command to run."}
        parameters = {"type": "object", "properties": {"command": command}, "required": ["command"]}
        function = {"name": self.name, "description": description, "parameters": parameters}
        return {"type": "function", "function": function}

    async def __call__(self, arguments: dict[str, Any]) -> str:
        command = arguments.get("command") if len(arguments) == 1 else None
        if not isinstance(command, str):  # the common well-formed call skips the full check
            command = check_arguments(self._schema, arguments)["command"]
        if not command.strip():
            raise FormatError("bash: `command` is empty; give the shell command to run.")
        if reason := refusal(command):
            return reason
        result = await self.executor.run(command, timeout=self.timeout, output_cap=self.output_cap)
        return describe(result, self.timeout)
