"""Persisted runs as the server reads them: validated, bounded, never trusted as paths.

`<state>/runs/<run-id>/run.json` is read only for a run id matching its format (so the
path cannot leave the state dir), never through a symlink, at most `RECORD_LIMIT`
bytes; every field used must have its expected type, else the run counts as absent (or
its candidate list as empty). `root` must be an absolute path; whether a candidate may
be applied there is decided against the client's workspace folders (state.py).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

from kat_lsp.paths import runs_dir
from kat_lsp.pipeline.api import RankedCandidate, RunResult
from kat_lsp.safefile import NotRegular, TooLarge, read_bounded
from kat_lsp.server.params import CANDIDATE_ID, RUN_ID

log = logging.getLogger("kat_lsp.server")

RECORD_LIMIT = 64 * 1024 * 1024
"""Largest run.json read (it holds the candidates' patches)."""
LIST_LIMIT = 500
"""Runs listed by `kat.lsp.listRuns` (the newest by folder name, which starts with the time)."""
STATUSES = ("running", "done", "cancelled", "failed", "interrupted")


def _read_bounded(path: Path) -> bytes | None:
    """A regular file's bytes (not through a symlink), None when absent, odd or too big."""
    try:
        return read_bounded(path, RECORD_LIMIT, follow=False)[0]
    except (OSError, NotRegular, TooLarge):
        return None


def _str_list(value: Any) -> list[str] | None:
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def _int_list(value: Any) -> list[int] | None:
    ok = isinstance(value, list) and all(isinstance(v, int) for v in value)
    return value if ok else None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def candidate_of(data: Any) -> RankedCandidate | None:
    """A candidate record, or None when any field has the wrong type."""
    if not isinstance(data, dict):
        return None
    cid, patch, files = data.get("id"), data.get("patch"), _str_list(data.get("files", []))
    samples, reasons = _int_list(data.get("samples", [])), _str_list(data.get("judge_reasons", []))
    score, regressions = data.get("judge_score"), data.get("regressions")
    ints = [data.get(k) for k in ("rank", "tests_passed", "tests_total", "cluster_size", "round")]
    if not (
        isinstance(cid, str)
        and CANDIDATE_ID.fullmatch(cid)
        and isinstance(patch, str)
        and files is not None
        and samples is not None
        and reasons is not None
        and all(isinstance(v, int) and not isinstance(v, bool) for v in ints)
        and (score is None or _number(score))
        and (regressions is None or isinstance(regressions, int))
    ):
        return None
    rank, passed, total, size, rnd = (int(v) for v in ints)  # type: ignore[arg-type]
    return RankedCandidate(
        cid, rank, patch, None if score is None else float(score), passed, total, size,
        samples, rnd, files, reasons, regressions,
    )  # fmt: skip


def read_record(run_id: str, base: Path | None = None) -> dict[str, Any] | None:
    """run.json of a run with a well-formed id, with checked `run_id`, `issue`, `root`,
    `status`, `created`, `error` and `candidates` (only the well-formed ones); else None."""
    if not RUN_ID.fullmatch(run_id):
        return None
    raw = _read_bounded((base or runs_dir()) / run_id / "run.json")
    try:
        data = json.loads(raw) if raw is not None else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None
    root, created, error = data.get("root"), data.get("created", 0), data.get("error")
    candidates = data.get("candidates", [])
    if not (
        data.get("run_id") == run_id
        and isinstance(data.get("issue"), str)
        and isinstance(root, str)
        and Path(root).is_absolute()
        and data.get("status") in STATUSES
        and _number(created)
        and (error is None or isinstance(error, str))
        and isinstance(candidates, list)
    ):
        log.warning("ignoring the malformed record of run %s", run_id)
        return None
    checked = [c for c in map(candidate_of, candidates) if c is not None]
    return {**data, "candidates": checked}


def _status(record: dict[str, Any]) -> str:
    from kat_lsp.workspace.rundirs import process_alive

    status = str(record["status"])
    pid, started = record.get("pid"), record.get("pid_started")
    if status == "running":
        known = started if isinstance(started, str) else None
        alive = isinstance(pid, int) and pid > 0 and process_alive(pid, known)
        return status if alive else "interrupted"
    return status


def load_run(run_id: str, base: Path | None = None) -> RunResult | None:
    record = read_record(run_id, base)
    if record is None:
        return None
    status = _status(record)
    final: Literal["done", "cancelled", "failed"] = (
        "done" if status == "done" else "cancelled" if status == "cancelled" else "failed"
    )
    return RunResult(
        run_id=run_id,
        issue=record["issue"],
        root=Path(record["root"]),
        status=final,
        candidates=record["candidates"],
        error=record.get("error"),
    )


def list_records(base: Path | None = None) -> list[dict[str, Any]]:
    """The well-formed persisted runs (with their live status), newest first."""
    folder = base or runs_dir()
    try:
        names = sorted((n for n in os.listdir(folder) if RUN_ID.fullmatch(n)), reverse=True)
    except OSError:
        return []
    records = []
    for name in names[:LIST_LIMIT]:
        if (record := read_record(name, folder)) is not None:
            records.append({**record, "status": _status(record)})
    return sorted(records, key=lambda r: r["created"], reverse=True)
