"""One run in its own process: `python -m kat_lsp.server.worker`, spawned by the server.

The pipeline's CPU work (the model client's request building, process spawns, git,
tree-sitter) would otherwise share the language server's event loop and GIL and make
code actions and hovers wait behind it. Here it runs apart; the server stays responsive,
and a crashing run cannot take the editor's server down.

Protocol (JSON lines). stdin: first the job `{"run_id", "issue", "root", "overrides",
"config"}`, then `{"cancel": true}` whenever the run is to stop; EOF (the server is gone)
cancels too. stdout: `{"event": RunEvent}` (at most every `EVENT_INTERVAL` seconds, phase
changes at once), then one `{"result": RunResult}`, `{"cancelled": true}` or
`{"error": message, "config": bool}`. Logs go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from kat_lsp.config import KatConfig
from kat_lsp.exceptions import ConfigError
from kat_lsp.pipeline.api import RankedCandidate, RunEvent, RunResult, SampleState, TestState

EVENT_INTERVAL = 0.05
NICENESS = 5
"""Added to the worker's nice value (its samples and tests inherit it)."""


def encode_event(event: RunEvent) -> dict[str, Any]:
    return asdict(event)


def decode_event(data: dict[str, Any]) -> RunEvent:
    return RunEvent(
        run_id=data["run_id"], phase=data["phase"], percentage=data["percentage"],
        message=data["message"], samples=[SampleState(**s) for s in data["samples"]],
        candidates=[RankedCandidate(**c) for c in data["candidates"]],
        tests=[TestState(**t) for t in data.get("tests", [])],
    )  # fmt: skip


def encode_result(result: RunResult) -> dict[str, Any]:
    data = asdict(result)
    data["root"] = str(result.root)
    data["run_dir"] = str(result.run_dir) if result.run_dir else None
    return data


def decode_result(data: dict[str, Any]) -> RunResult:
    return RunResult(
        run_id=data["run_id"], issue=data["issue"], root=Path(data["root"]), status=data["status"],
        candidates=[RankedCandidate(**c) for c in data["candidates"]],
        snapshot_commit=data.get("snapshot_commit"), error=data.get("error"),
        run_dir=Path(data["run_dir"]) if data.get("run_dir") else None,
    )  # fmt: skip


def config_to_json(config: KatConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in fields(config)}


class Events:
    """Writes the latest event at most every EVENT_INTERVAL seconds; phase changes at once."""

    def __init__(self) -> None:
        self.last: RunEvent | None = None
        self.sent_phase: str | None = None
        self.sent_at = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def __call__(self, event: RunEvent) -> None:
        self.last = event
        if event.phase != self.sent_phase or time.monotonic() - self.sent_at >= EVENT_INTERVAL:
            self.flush()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(EVENT_INTERVAL, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.last is not None:
            self.sent_phase, self.sent_at = self.last.phase, time.monotonic()
            write({"event": encode_event(self.last)})
            self.last = None


def write(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message, default=str) + "\n")
    sys.stdout.flush()


def _watch_stdin(loop: asyncio.AbstractEventLoop, run: asyncio.Future[Any]) -> None:
    """Cancel the run on `{"cancel": true}` or when the server goes away (EOF). A daemon
    thread: a blocked read must not keep the process alive once the run is over."""

    def read() -> None:
        for line in sys.stdin:
            if json.loads(line).get("cancel"):
                break
        with contextlib.suppress(RuntimeError):  # the loop is closed: the run is over
            loop.call_soon_threadsafe(run.cancel)

    threading.Thread(target=read, name="kat-worker-stdin", daemon=True).start()


async def work(job: dict[str, Any]) -> dict[str, Any]:
    from kat_lsp.pipeline.runner import Pipeline

    config = KatConfig(**job["config"])
    events = Events()
    run = asyncio.ensure_future(
        Pipeline(config).run(
            job["issue"], Path(job["root"]), overrides=job.get("overrides") or {},
            on_event=events, run_id=job["run_id"],
        )
    )  # fmt: skip
    _watch_stdin(asyncio.get_running_loop(), run)
    try:
        result = await run
        return {"result": encode_result(result)}
    except asyncio.CancelledError:
        return {"cancelled": True}
    except ConfigError as exc:
        return {"error": str(exc), "config": True}
    finally:
        events.flush()


def main() -> int:
    # A background job: the editor's server (and the editor) get the CPU first.
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    job = json.loads(sys.stdin.readline())
    try:
        outcome = asyncio.run(work(job))
    except Exception as exc:  # reported to the server, which tells the user
        logging.getLogger("kat_lsp.server.worker").exception("run failed")
        outcome = {"error": f"{type(exc).__name__}: {exc}", "config": False}
    write(outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
