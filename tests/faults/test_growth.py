"""Bounded growth of `kat-lsp fix`: samples beyond the sandbox ceiling wait (the peak of
sandboxes alive at once, sampled from /proc, stays at or below it); a trajectory stores
at most FIELD_CAP characters of any text, with the cut said; old runs are pruned by age
and size, at the start of `fix` and by `kat-lsp prune`, never a live run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from kat_lsp.agent.trajectory import FIELD_CAP
from kat_lsp.config import KatConfig
from kat_lsp.model.scripted import ScriptedServer
from kat_lsp.workspace.rundirs import start_time
from tests.faults.cli_run import (
    FIX,
    ISSUE,
    checkouts_left,
    fingerprint,
    fix_argv,
    fix_env,
    make_repo,
    run_fix,
    sandboxes_of,
    script,
)

MB = 1 << 20
DAY = 86400.0

SANDBOXES = KatConfig().sandbox_concurrency
"""The default ceiling on samples alive at once."""


def test_samples_beyond_the_ceiling_queue(tmp_path):
    samples = SANDBOXES * 2 + 3
    turns = [{"tool": "bash", "args": {"command": "sleep 0.3"}}, *FIX]
    repo = make_repo(tmp_path)
    before = fingerprint(repo)
    peaks: list[int] = []
    with ScriptedServer(script(turns, latency=0.05)) as server:
        proc = subprocess.Popen(
            fix_argv(
                "--repo",
                str(repo),
                "--issue",
                ISSUE,
                "--samples",
                str(samples),
                "--test-samples",
                "0",
                "-q",
                "--out",
                str(tmp_path / "out"),
            ),
            env=fix_env(tmp_path, server.base_url),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        stderr: list[bytes] = []
        reader = threading.Thread(target=lambda: stderr.append(proc.stderr.read()))  # type: ignore[union-attr]
        reader.start()
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            peaks.append(sandboxes_of(proc.pid))
            time.sleep(0.02)
        proc.wait(timeout=10)
        reader.join(10)
    err = b"".join(stderr).decode(errors="replace")
    peak = max(peaks)
    print(f"K={samples}: peak {peak} sandboxes alive at once (ceiling {SANDBOXES})")
    assert proc.returncode == 0, err
    assert peak <= SANDBOXES
    assert peak > SANDBOXES // 2, "the samples did not run side by side"
    ranked = json.loads((tmp_path / "out" / "ranked.json").read_text())
    assert sum(c["cluster_size"] for c in ranked["candidates"]) == samples, "a sample was lost"
    assert checkouts_left(tmp_path) == []
    assert fingerprint(repo) == before


def test_trajectory_is_bounded_with_a_5mb_observation(tmp_path):
    repo = make_repo(tmp_path)
    (repo / ".kat.toml").write_text("output_cap = 8000000\n")
    big_arg = "y" * (1 * MB)
    turns = [
        {"tool": "bash", "args": {"command": "head -c 5000000 /dev/zero | tr '\\0' x"}},
        {
            "tool": "str_replace_editor",
            "args": {"command": "create", "path": "big.txt", "file_text": big_arg},
        },
        *FIX,
    ]
    with ScriptedServer(script(turns)) as server:
        proc = run_fix(
            fix_env(tmp_path, server.base_url),
            "--repo", str(repo), "--issue", ISSUE, "--samples", "1", "--test-samples", "0",
            "-q", "--out", str(tmp_path / "out"),
        )  # fmt: skip
        sent = max(len(json.dumps(r.get("body"))) for r in server.requests)
    assert proc.returncode == 0, proc.stderr
    assert sent > 5_000_000, "the model never got the 5 MB observation"
    (traj,) = (tmp_path / "kat-state" / "runs").glob("*/trajectories/generate-0.traj.json")
    size = traj.stat().st_size
    print(f"trajectory: {size} bytes for a request of {sent} bytes")
    assert size < 1 * MB
    data = json.loads(traj.read_text())
    step = data["trajectory"][0]
    assert len(step["observation"]) <= FIELD_CAP + 100
    assert "characters cut from the trajectory" in step["observation"]
    assert step["observation"].startswith("x" * 1000) or "x" * 1000 in step["observation"]
    edit = data["trajectory"][1]["tool_call"]["arguments"]["file_text"]
    assert len(edit) <= FIELD_CAP + 100 and "characters cut" in edit
    assert all(len(json.dumps(m)) < 2 * FIELD_CAP for m in data["history"])


def make_run(base: Path, name: str, *, age_days: float, size: int = 1000, **record) -> Path:
    run = base / name
    (run / "trajectories").mkdir(parents=True)
    (run / "trajectories" / "generate-0.traj.json").write_bytes(b"t" * size)
    (run / "run.json").write_text(json.dumps({"run_id": name, "status": "done", **record}))
    when = time.time() - age_days * DAY
    for path in (run / "run.json", run):
        os.utime(path, (when, when))
    return run


def prune(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kat_lsp", "prune", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_prune_by_age_keeps_recent_and_live_runs(tmp_path):
    env = fix_env(tmp_path)
    runs = tmp_path / "kat-state" / "runs"
    old = make_run(runs, "20250101-000000-aaaaaa", age_days=40)
    recent = make_run(runs, "20260101-000000-bbbbbb", age_days=2)
    me = os.getpid()
    live = make_run(
        runs, "20250101-000000-cccccc", age_days=90, status="running", pid=me,
        pid_started=start_time(me),
    )  # fmt: skip
    outside = tmp_path / "not-a-run"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine\n")
    os.symlink(outside, runs / "20240101-000000-dddddd")

    dry = prune(env, "--older-than", "30", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would remove {old}" in dry.stdout and old.exists()

    done = prune(env, "--older-than", "30")
    print(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    assert f"removed {old}" in done.stdout
    assert "removed 1 run(s)" in done.stderr
    assert not old.exists()
    assert recent.exists() and live.exists()
    assert (outside / "keep.txt").read_text() == "mine\n"
    assert (runs / "20240101-000000-dddddd").is_symlink()


def test_prune_by_size_removes_the_oldest_first(tmp_path):
    env = fix_env(tmp_path)
    runs = tmp_path / "kat-state" / "runs"
    names = [f"2026010{i}-000000-eeeeee" for i in range(1, 5)]
    made = [make_run(runs, n, age_days=5 - i, size=MB) for i, n in enumerate(names)]
    done = prune(env, "--max-size", "2.5")
    assert done.returncode == 0, done.stderr
    assert [r.exists() for r in made] == [False, False, True, True], done.stdout


def test_fix_prunes_runs_past_retention_at_start(tmp_path):
    runs = tmp_path / "kat-state" / "runs"
    old = make_run(runs, "20240101-000000-ffffff", age_days=400)
    repo = make_repo(tmp_path)
    with ScriptedServer(script()) as server:
        proc = run_fix(
            fix_env(tmp_path, server.base_url),
            "--repo", str(repo), "--issue", ISSUE, "--samples", "1", "--test-samples", "0",
            "-q", "--out", str(tmp_path / "out"),
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not old.exists()
    assert "removed 1 run(s)" in proc.stderr and "past the retention limits" in proc.stderr
    assert len(list(runs.iterdir())) == 1  # the new run


def test_prune_refuses_negative_limits(tmp_path):
    bad = prune(fix_env(tmp_path), "--older-than", "-1")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_a_fifo_run_record_does_not_stall_retention(tmp_path):
    """A run.json that is a FIFO (no writer) is read without blocking: not a live run."""
    from kat_lsp.pipeline.retention import _alive

    run = tmp_path / "20260101-000000-abcdef"
    run.mkdir()
    os.mkfifo(run / "run.json")
    done = threading.Event()
    result: list[bool] = []
    threading.Thread(target=lambda: (result.append(_alive(run)), done.set()), daemon=True).start()
    assert done.wait(5), "retention blocked on a FIFO run.json"
    assert result == [False]
