"""What the client sees of a run: its handle, work-done progress and `kat/runUpdate`.

Updates go out at most every `update_interval` seconds per run (the server's setting);
phase changes and the final state always go out at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from kat_lsp.pipeline.api import RunEvent, RunPhase, RunResult
from kat_lsp.server.shapes import run_update_json

if TYPE_CHECKING:
    from kat_lsp.server.state import KatServer

log = logging.getLogger("kat_lsp.server")


@dataclass
class RunHandle:
    """One run of this session, in flight or finished."""

    run_id: str
    issue: str
    root: Path
    created: float = field(default_factory=time.time)
    task: asyncio.Task[RunResult] | None = None
    token: int | str | None = None
    """The work-done progress token, when the client shows progress."""
    last: RunEvent | None = None
    result: RunResult | None = None
    sent_phase: str | None = None
    sent_at: float = 0.0
    timer: asyncio.TimerHandle | None = None

    @property
    def status(self) -> str:
        if self.result is not None:
            return self.result.status
        if self.task is not None and self.task.done():
            return "cancelled" if self.task.cancelled() else "failed"
        return "running"

    def candidates(self) -> list[Any]:
        if self.result is not None:
            return self.result.candidates
        return self.last.candidates if self.last else []


def first_line(text: str, limit: int = 60) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


class Updates:
    """Sends a run's state as progress and `kat/runUpdate`, at most every `interval` seconds."""

    def __init__(self, server: KatServer, handle: RunHandle) -> None:
        self.server, self.handle = server, handle

    def on_event(self, event: RunEvent) -> None:
        h = self.handle
        h.last = event
        now = time.monotonic()
        if event.phase != h.sent_phase or now - h.sent_at >= self.server.update_interval:
            self.send()
        elif h.timer is None:
            delay = self.server.update_interval - (now - h.sent_at)
            h.timer = asyncio.get_running_loop().call_later(delay, self.send)

    def send(self) -> None:
        h = self.handle
        if h.timer is not None:
            h.timer.cancel()
            h.timer = None
        if h.last is None:
            return
        h.sent_phase, h.sent_at = h.last.phase, time.monotonic()
        self.server.protocol.notify("kat/runUpdate", run_update_json(h.last, h.root))
        if h.token is not None and h.last.phase not in ("done", "cancelled", "failed"):
            self.server.work_done_progress.report(
                h.token,
                types.WorkDoneProgressReport(
                    message=f"{h.last.phase}: {h.last.message}", percentage=h.last.percentage
                ),
            )


async def start_progress(server: KatServer, handle: RunHandle, token: int | str | None) -> None:
    if token is None and server.client_supports_progress():
        token = str(uuid.uuid4())
        try:
            await server.work_done_progress.create_async(token)
        except Exception as exc:  # the client refused: run without progress
            log.info("client refused work done progress: %s", exc)
            return
    if token is None:
        return
    handle.token = token
    server.work_done_progress.begin(
        token,
        types.WorkDoneProgressBegin(
            title=f"KAT: {first_line(handle.issue)}",
            cancellable=True,
            message="taking a snapshot of the workspace",
            percentage=0,
        ),
    )


def final_event(handle: RunHandle, phase: RunPhase, message: str) -> None:
    """Make sure the last update names the end, even when the pipeline never got to say it."""
    last = handle.last
    if last is None:
        handle.last = RunEvent(handle.run_id, phase, 0, message, [], [])
    elif last.phase != phase:
        handle.last = replace(last, phase=phase, message=message)
