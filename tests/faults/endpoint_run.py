"""Runs for the endpoint faults: a real `kat-lsp fix` against a misbehaving endpoint.

`fault_fix(tmp_path, fault)` runs `python -m kat_lsp fix` as a subprocess on a fresh
user repository (tests/security/harness.py: real git, real bubblewrap) against
`BadServer(fault)` (tests/faults/badserver.py), with small timeouts from the repo's
`.kat.toml`, and returns what a user sees: exit code, stderr, the error line, the time
to fail, run.json, the requests the endpoint got, the repository before and after.
Each run prints a `FIGURE` line; with KAT_FAULT_FIGURES=<file> they are also appended
there as JSON lines (docs/reliability.md is filled from them).
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.faults.badserver import BadServer
from tests.security.harness import ISSUE, fingerprint, make_home, make_repo

FAST = {"request_timeout": 5, "max_retries": 1, "step_limit": 6}
"""Settings of every fault run (`.kat.toml`); a case adds its own."""


@dataclass
class FaultRun:
    case: str
    returncode: int
    stderr: str
    seconds: float
    base_url: str
    requests: list[dict[str, Any]]
    run_json: dict[str, Any] | None
    repo_before: dict[str, str]
    repo_after: dict[str, str]
    trajectories: str
    max_rss_mb: float

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("kat-lsp: error:")]

    @property
    def no_candidate_lines(self) -> list[str]:
        return [
            line
            for line in self.stderr.splitlines()
            if line.startswith("kat-lsp: no sample produced a candidate")
        ]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there any more


def toml(settings: dict[str, Any]) -> str:
    return "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())


def fault_fix(
    tmp_path: Path,
    fault: str | None,
    *,
    case: str | None = None,
    settings: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    samples: int = 2,
    timeout: float = 120,
) -> FaultRun:
    """`kat-lsp fix` with `samples` generation samples and one test sample against
    BadServer(fault) (None: a closed port, connection refused)."""
    home = make_home(tmp_path)
    repo = make_repo(tmp_path)
    (repo / ".kat.toml").write_text(toml({**FAST, **(settings or {})}))
    before = fingerprint(repo)
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "KAT_"))}
    run_env.update(
        HOME=str(home),
        KAT_CACHE_DIR=str(tmp_path / "kat-cache"),
        KAT_STATE_DIR=str(tmp_path / "kat-state"),
        KAT_MODEL="scripted",
        OPENAI_API_KEY="sk-test",
        **(env or {}),
    )
    server = BadServer(fault) if fault is not None else None
    base_url = server.base_url if server is not None else closed_port_url()
    run_env["OPENAI_BASE_URL"] = base_url
    command = [sys.executable, "-m", "kat_lsp", "fix", "--repo", str(repo), "--issue", ISSUE,
               "--samples", str(samples), "--test-samples", "1", "--out", str(tmp_path / "out")]  # fmt: skip
    try:
        if server is not None:
            server.__enter__()
        started = time.monotonic()
        proc = subprocess.run(
            command, env=run_env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        seconds = time.monotonic() - started
    finally:
        if server is not None:
            server.stop()
    runs = sorted((tmp_path / "kat-state").rglob("run.json"))
    trajectories = "".join(p.read_text() for p in (tmp_path / "kat-state").rglob("*.traj.json"))
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    run = FaultRun(
        case=case or str(fault),
        returncode=proc.returncode,
        stderr=proc.stderr,
        seconds=seconds,
        base_url=base_url,
        requests=list(server.requests) if server is not None else [],
        run_json=json.loads(runs[-1].read_text()) if runs else None,
        repo_before=before,
        repo_after=fingerprint(repo),
        trajectories=trajectories,
        max_rss_mb=rss,
    )
    report(run)
    return run


def report(run: FaultRun) -> None:
    message = (run.error_lines or run.no_candidate_lines or ["(no message)"])[-1]
    figure = {
        "case": run.case,
        "exit": run.returncode,
        "seconds": round(run.seconds, 1),
        "requests": len(run.requests),
        "message": message,
    }
    print(f"FIGURE {json.dumps(figure)}")
    if path := os.environ.get("KAT_FAULT_FIGURES"):
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(figure) + "\n")
