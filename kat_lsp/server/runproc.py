"""The server's side of a run's worker process (`kat_lsp.server.worker`): spawn it with
the job, turn its stdout lines back into `RunEvent`s and the `RunResult`, ask it to
cancel, and make sure it is gone when the run ends. Its stderr goes to the server log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from kat_lsp.config import KatConfig
from kat_lsp.pipeline.api import RunEvent, RunResult
from kat_lsp.server.worker import config_to_json, decode_event, decode_result

log = logging.getLogger("kat_lsp.server.worker")

LINE_LIMIT = 64 * 1024 * 1024
"""Largest stdout line (an event carries the candidates' patches)."""


class RunFailed(Exception):
    """The worker reported an error, or died. `config`: a configuration problem."""

    def __init__(self, message: str, config: bool = False) -> None:
        super().__init__(message)
        self.config = config


class RunProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self._stderr = asyncio.ensure_future(self._forward_stderr())

    @classmethod
    async def spawn(
        cls, run_id: str, issue: str, root: str, overrides: dict[str, str], config: KatConfig
    ) -> RunProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kat_lsp.server.worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=LINE_LIMIT,
        )  # fmt: skip
        job = {
            "run_id": run_id, "issue": issue, "root": root, "overrides": overrides,
            "config": config_to_json(config),
        }  # fmt: skip
        self = cls(proc)
        self._send(job)
        return self

    def _send(self, message: dict[str, Any]) -> None:
        stdin = self.proc.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(json.dumps(message).encode() + b"\n")

    async def _forward_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr_tail.append(line)
            log.warning("%s", line)

    def cancel(self) -> None:
        self._send({"cancel": True})

    async def outcome(self, on_event: Callable[[RunEvent], None]) -> RunResult | None:
        """Events until the end: the result, None when cancelled; RunFailed on an error."""
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            message = json.loads(line)
            if "event" in message:
                on_event(decode_event(message["event"]))
            elif "result" in message:
                return decode_result(message["result"])
            elif "cancelled" in message:
                return None
            elif "error" in message:
                raise RunFailed(message["error"], bool(message.get("config")))
        code = await self.proc.wait()
        await asyncio.wait({self._stderr}, timeout=1)
        tail = " | ".join(self.stderr_tail) or "no output"
        raise RunFailed(f"the run's process ended unexpectedly (exit code {code}): {tail}")

    async def close(self, grace: float = 30.0) -> None:
        """Let the worker exit (it does once stdin closes), else kill it."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), grace)
        except TimeoutError:
            log.warning("run worker %s did not exit; killing it", self.proc.pid)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        await asyncio.wait({self._stderr}, timeout=1)
