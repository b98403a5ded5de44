"""`kat-lsp fix` end to end: a real subprocess, a real git repo, the scripted model over
HTTP, real bubblewrap. The bundled example's recorded session drives the model."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kat_lsp.model.scripted import ScriptedServer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "median"
SESSION = json.loads((EXAMPLE / "session.json").read_text())


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def make_repo(tmp_path: Path) -> Path:
    """The example as a user's repo with everything a snapshot must not disturb:
    a stash, a staged change, a dirty file, an untracked and an ignored file."""
    repo = tmp_path / "user-repo"
    repo.mkdir()
    for name in ("stats.py", "test_stats.py"):
        shutil.copy(EXAMPLE / name, repo / name)
    (repo / ".gitignore").write_text("*.log\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "initial")
    (repo / "test_stats.py").write_text((repo / "test_stats.py").read_text() + "\n# stashed\n")
    git(repo, "stash", "-q")
    (repo / "README.txt").write_text("staged\n")
    git(repo, "add", "README.txt")
    (repo / "test_stats.py").write_text((repo / "test_stats.py").read_text() + "\n# dirty\n")
    (repo / "notes.txt").write_text("untracked\n")
    (repo / "debug.log").write_text("ignored\n")
    return repo


def fingerprint(repo: Path) -> dict[str, str]:
    """Every file under the repo, .git included, by content hash; plus git's own views."""
    state = {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file()
    }
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    for args in (
        ["rev-parse", "HEAD"],
        ["branch", "--show-current"],
        ["stash", "list"],
        ["status", "--porcelain"],
    ):
        state[" ".join(args)] = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
        ).stdout
    return state


def median_of_1_to_4(folder: Path) -> str:
    """What the project in `folder` says median([1, 2, 3, 4]) is."""
    code = "from stats import median; print(median([1, 2, 3, 4]))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True)
    return proc.stdout.strip() or proc.stderr


@pytest.fixture
def kat_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "KAT_"))}
    env.update(
        KAT_CACHE_DIR=str(tmp_path / "cache"),
        KAT_STATE_DIR=str(tmp_path / "state"),
        KAT_MODEL="scripted",
    )
    return env


def run_fix(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kat_lsp", "fix", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_fix_ranks_the_right_candidate_and_leaves_the_repo_alone(tmp_path, kat_env):
    repo = make_repo(tmp_path)
    before = fingerprint(repo)
    out = tmp_path / "out"
    with ScriptedServer(SESSION) as server:
        kat_env["OPENAI_BASE_URL"] = server.base_url
        proc = run_fix(
            kat_env,
            "--repo",
            str(repo),
            "--issue-file",
            str(EXAMPLE / "ISSUE.md"),
            "--samples",
            "3",
            "--test-samples",
            "2",
            "--out",
            str(out),
        )
        requests = list(server.requests)
    assert proc.returncode == 0, proc.stderr
    assert fingerprint(repo) == before, "the user's repository changed"
    # The progress (plain lines: stderr is no terminal) shows samples, tests and the ranking.
    assert "generate #2 submitted" in proc.stderr
    assert "test #0 kept: python3 test_median_issue.py" in proc.stderr
    assert "test #1 dropped: python3 test_median_weak.py - passes on the base" in proc.stderr
    assert "1 candidate(s)" in proc.stderr and "stats.py" in proc.stderr

    ranked = json.loads((out / "ranked.json").read_text())
    assert set(ranked) == {"run_id", "issue", "candidates"}
    assert "even number of items" in ranked["issue"]
    best = ranked["candidates"][0]
    assert set(best) == {
        "id",
        "rank",
        "patch",
        "judge_score",
        "tests_passed",
        "tests_total",
        "cluster_size",
        "samples",
        "round",
    }
    # Samples 0 and 1 wrote the same fix formatted differently: one group of two.
    assert (best["rank"], best["samples"], best["cluster_size"]) == (1, [0, 1], 2)
    assert (best["tests_passed"], best["tests_total"]) == (1, 1)
    assert best["judge_score"] == 9
    # Sample 2's unconditional average fails the reproduction test and is cut.
    assert all(2 not in c["samples"] for c in ranked["candidates"])
    assert (out / "best.patch").read_text() == best["patch"]

    # The patch really fixes the bug: apply it to a copy and run the reproduction.
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy)
    subprocess.run(["git", "apply"], input=best["patch"], text=True, cwd=copy, check=True)
    assert median_of_1_to_4(copy) == "2.5"

    # Every request carried the X-KAT headers; every phase ran.
    phases = {r["headers"]["x-kat-phase"] for r in requests}
    assert phases == {"generate", "testgen", "judge"}
    assert {r["headers"]["x-kat-run"] for r in requests} == {ranked["run_id"]}
    # Run state persisted; no checkout left behind.
    run_dir = tmp_path / "state" / "runs" / ranked["run_id"]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "done"
    assert [t["kept"] for t in record["tests"]] == [True, False]
    assert "passes on the base" in record["tests"][1]["reason"]
    assert len(list((run_dir / "trajectories").glob("*.traj.json"))) == 5
    checkouts = tmp_path / "cache" / "checkouts"
    assert not checkouts.exists() or not any(checkouts.rglob("*.py"))


def test_apply_writes_the_best_patch_into_the_working_tree(tmp_path, kat_env):
    repo = make_repo(tmp_path)
    with ScriptedServer(SESSION) as server:
        kat_env["OPENAI_BASE_URL"] = server.base_url
        proc = run_fix(
            kat_env,
            "--repo",
            str(repo),
            "--issue",
            (EXAMPLE / "ISSUE.md").read_text(),
            "--samples",
            "1",
            "--test-samples",
            "1",
            "--apply",
            "--json",
            "-q",
        )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["candidates"][0]["rank"] == 1
    assert median_of_1_to_4(repo) == "2.5"
    assert "changes 1 file(s):\n  stats.py\n" in proc.stderr  # the files it touches, listed
    # The dirty and untracked files the user had are still there, untouched.
    assert (repo / "test_stats.py").read_text().endswith("# dirty\n")
    assert (repo / "notes.txt").read_text() == "untracked\n"


def test_no_candidate_exits_3(tmp_path, kat_env):
    repo = make_repo(tmp_path)
    script = {
        "phases": {
            "generate": {"default": [{"tool": "submit", "args": {}}]},
            "testgen": {"default": [{"tool": "submit", "args": {"command": "true"}}]},
        }
    }
    with ScriptedServer(script) as server:
        kat_env["OPENAI_BASE_URL"] = server.base_url
        proc = run_fix(
            kat_env,
            "--repo",
            str(repo),
            "--issue",
            "x",
            "--samples",
            "2",
            "--test-samples",
            "1",
            "--out",
            str(tmp_path / "out"),
        )
    assert proc.returncode == 3, proc.stderr
    assert "no sample produced a candidate" in proc.stderr
    assert json.loads((tmp_path / "out" / "ranked.json").read_text())["candidates"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--issue", "x"], "OPENAI_BASE_URL"),
        (
            ["--issue", "  ", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"],
            "issue text is empty",
        ),
        (["--issue-file", "/nonexistent/issue.md"], "cannot read --issue-file"),
        (
            [
                "--issue",
                "x",
                "--samples",
                "2",
                "--rounds",
                "3",
                "--base-url",
                "http://127.0.0.1:9/v1",
                "--model",
                "m",
            ],
            "rounds (3) cannot exceed samples (2)",
        ),
    ],
)
def test_usage_errors_exit_2_and_name_the_fix(tmp_path, kat_env, args, message):
    repo = make_repo(tmp_path)
    proc = run_fix(kat_env, "--repo", str(repo), *args)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_missing_repo_folder_exits_2(tmp_path, kat_env):
    proc = run_fix(kat_env, "--repo", str(tmp_path / "nope"), "--issue", "x")
    assert proc.returncode == 2
    assert "no such folder" in proc.stderr
