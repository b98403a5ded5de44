"""Persistence of runs under the user state dir (DESIGN.md §4 Persistence).

`<state>/runs/<run-id>/run.json` holds the issue, settings, phase, timings, usage,
tests and candidates; `candidates/<id>.patch` the patches, `tests/<n>.patch` the
reproduction tests, `trajectories/<sample>.traj.json` every sample's trajectory.
A restarted server lists and serves runs from here; a run left `running` by a dead
process is reported as `interrupted`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kat_lsp.paths import runs_dir
from kat_lsp.pipeline.api import RankedCandidate, RunResult
from kat_lsp.workspace.rundirs import process_alive, start_time


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class RunStore:
    """The folder of one run."""

    path: Path

    @classmethod
    def create(cls, run_id: str, base: Path | None = None) -> RunStore:
        path = (base or runs_dir()) / run_id
        (path / "candidates").mkdir(parents=True, exist_ok=True)
        (path / "tests").mkdir(exist_ok=True)
        (path / "trajectories").mkdir(exist_ok=True)
        return cls(path)

    def save(self, record: dict[str, Any]) -> None:
        pid = os.getpid()
        record = {**record, "pid": pid, "pid_started": start_time(pid), "updated": time.time()}
        _write_json(self.path / "run.json", record)

    def save_patch(self, folder: str, name: str, patch: str) -> str:
        target = self.path / folder / f"{name}.patch"
        target.write_text(patch, encoding="utf-8")
        return str(target.relative_to(self.path))


def _status(record: dict[str, Any]) -> str:
    status = str(record.get("status", "unknown"))
    pid = int(record.get("pid", 0) or 0)
    if status == "running" and not (pid and process_alive(pid, record.get("pid_started"))):
        return "interrupted"
    return status


def read_run(run_id: str, base: Path | None = None) -> dict[str, Any] | None:
    """The run.json of a run with its live status, or None when there is no such run."""
    path = (base or runs_dir()) / run_id / "run.json"
    try:
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    record["status"] = _status(record)
    return record


def list_runs(base: Path | None = None) -> list[dict[str, Any]]:
    """Every persisted run, newest first."""
    folder = base or runs_dir()
    if not folder.is_dir():
        return []
    records = [r for d in folder.iterdir() if (r := read_run(d.name, folder)) is not None]
    return sorted(records, key=lambda r: r.get("created", 0), reverse=True)


def load_result(run_id: str, base: Path | None = None) -> RunResult | None:
    """A persisted run as a RunResult (candidates in rank order, patches included)."""
    record = read_run(run_id, base)
    if record is None:
        return None
    status = record["status"]
    return RunResult(
        run_id=record["run_id"],
        issue=record["issue"],
        root=Path(record["root"]),
        status=status if status in ("done", "cancelled", "failed") else "failed",
        candidates=[candidate_from_record(c) for c in record.get("candidates", [])],
        snapshot_commit=record.get("snapshot_commit"),
        error=record.get("error"),
        run_dir=(base or runs_dir()) / run_id,
    )


def candidate_from_record(data: dict[str, Any]) -> RankedCandidate:
    fields = RankedCandidate.__dataclass_fields__
    return RankedCandidate(**{k: v for k, v in data.items() if k in fields})
