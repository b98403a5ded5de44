"""Bad input to `kat-lsp fix`, as a stranger would give it: each case exits 2 with one
line on stderr saying what is wrong and what to do, no traceback, and the user's
repository unchanged. `--issue-file -` reads the issue from standard input."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kat_lsp.model.scripted import ScriptedServer
from tests.faults.cli_run import (
    ISSUE,
    fingerprint,
    fix_argv,
    fix_env,
    git,
    make_repo,
    run_fix,
    script,
)

MB = 1 << 20


def bare_repo(tmp: Path, _repo: Path) -> list[str]:
    bare = tmp / "bare.git"
    git(tmp, "clone", "-q", "--bare", str(_repo), str(bare))
    return ["--repo", str(bare), "--issue", ISSUE]


def dot_git(tmp: Path, repo: Path) -> list[str]:
    return ["--repo", str(repo / ".git"), "--issue", ISSUE]


def file_as_repo(tmp: Path, repo: Path) -> list[str]:
    return ["--repo", str(repo / "clamp.py"), "--issue", ISSUE]


def fifo_as_repo(tmp: Path, repo: Path) -> list[str]:
    os.mkfifo(tmp / "fifo")
    return ["--repo", str(tmp / "fifo"), "--issue", ISSUE]


def missing_repo(tmp: Path, repo: Path) -> list[str]:
    return ["--repo", str(tmp / "nope"), "--issue", ISSUE]


def binary_issue(tmp: Path, repo: Path) -> list[str]:
    (tmp / "issue.bin").write_bytes(bytes(range(256)) * 8)
    return ["--repo", str(repo), "--issue-file", str(tmp / "issue.bin")]


def latin1_issue(tmp: Path, repo: Path) -> list[str]:
    (tmp / "issue.txt").write_bytes("clamp f\xe4llt um".encode("latin-1"))
    return ["--repo", str(repo), "--issue-file", str(tmp / "issue.txt")]


def huge_issue(tmp: Path, repo: Path) -> list[str]:
    (tmp / "issue.md").write_text("clamp is wrong. " * (4 * MB // 16))
    return ["--repo", str(repo), "--issue-file", str(tmp / "issue.md")]


def whitespace_issue(tmp: Path, repo: Path) -> list[str]:
    (tmp / "issue.md").write_text(" \n\t\n  \n")
    return ["--repo", str(repo), "--issue-file", str(tmp / "issue.md")]


def folder_issue(tmp: Path, repo: Path) -> list[str]:
    return ["--repo", str(repo), "--issue-file", str(tmp)]


def missing_issue(tmp: Path, repo: Path) -> list[str]:
    return ["--repo", str(repo), "--issue-file", str(tmp / "nope.md")]


def samples(value: str, flag: str = "--samples"):
    def case(tmp: Path, repo: Path) -> list[str]:
        return ["--repo", str(repo), "--issue", ISSUE, flag, value]

    case.__name__ = f"{flag[2:]}_{value}"
    return case


def out_is_file(tmp: Path, repo: Path) -> list[str]:
    (tmp / "out.txt").write_text("mine\n")
    return ["--repo", str(repo), "--issue", ISSUE, "--out", str(tmp / "out.txt")]


def out_below_file(tmp: Path, repo: Path) -> list[str]:
    (tmp / "out.txt").write_text("mine\n")
    return ["--repo", str(repo), "--issue", ISSUE, "--out", str(tmp / "out.txt" / "sub")]


CASES = {
    bare_repo: "bare git repository",
    dot_git: "bare git repository or its .git folder",
    file_as_repo: "is not a folder",
    fifo_as_repo: "is not a folder",
    missing_repo: "no such folder",
    binary_issue: "binary",
    latin1_issue: "not UTF-8 text",
    huge_issue: "is over 256 KB",
    whitespace_issue: "is empty",
    folder_issue: "is a folder",
    missing_issue: "No such file",
    samples("0"): "--samples 0: use 1 or more",
    samples("-1"): "--samples -1: use 1 or more",
    samples("1000"): "above the ceiling of 64 (max_samples)",
    samples("65"): "above the ceiling of 64 (max_samples)",
    samples("99999999999999999999999"): "above the ceiling",
    samples("-1", "--test-samples"): "--test-samples -1: use 0 or more",
    samples("500", "--test-samples"): "above the ceiling of 64",
    samples("0", "--step-limit"): "--step-limit 0: use 1 or more",
    samples("0", "--top-k"): "--top-k 0: use 1 or more",
    out_is_file: "is a file: pass a folder",
    out_below_file: "is a file, so the folder cannot be made",
}


@pytest.mark.parametrize("case", list(CASES), ids=lambda c: c.__name__)
def test_bad_input_is_one_line_and_exit_2(tmp_path, case):
    repo = make_repo(tmp_path)
    before = fingerprint(repo)
    args = case(tmp_path, repo)
    proc = run_fix(fix_env(tmp_path), *args, timeout=60)
    lines = proc.stderr.strip().splitlines()
    print(f"{case.__name__}: exit {proc.returncode}: {proc.stderr.strip()}")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1 and lines[0].startswith("kat-lsp: error: "), proc.stderr
    assert CASES[case] in lines[0]
    assert fingerprint(repo) == before
    assert not (tmp_path / "kat-state" / "runs").exists() or not any(
        (tmp_path / "kat-state" / "runs").iterdir()
    ), "a run started"


def test_ceiling_from_the_workspace_settings_is_a_usage_error(tmp_path):
    repo = make_repo(tmp_path)
    (repo / ".kat.toml").write_text("samples = 500\n")
    proc = run_fix(fix_env(tmp_path), "--repo", str(repo), "--issue", ISSUE, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "samples = 500 is outside 0..64 (the ceiling max_samples)" in proc.stderr


def test_issue_file_dash_reads_stdin(tmp_path):
    repo = make_repo(tmp_path)
    before = fingerprint(repo)
    with ScriptedServer(script()) as server:
        proc = run_fix(
            fix_env(tmp_path, server.base_url),
            "--repo", str(repo), "--issue-file", "-", "--samples", "1", "--test-samples", "0",
            "--out", str(tmp_path / "out"), "-q",
            stdin=ISSUE.encode(),
        )  # fmt: skip
        bodies = [r["body"] for r in server.requests if isinstance(r.get("body"), dict)]
    assert proc.returncode == 0, proc.stderr
    assert any(ISSUE in str(b.get("messages")) for b in bodies), "the model never saw the issue"
    assert fingerprint(repo) == before


def test_issue_file_dash_with_nothing_piped_is_a_usage_error(tmp_path):
    repo = make_repo(tmp_path)
    proc = run_fix(fix_env(tmp_path), "--repo", str(repo), "--issue-file", "-", stdin=b"")
    assert proc.returncode == 2 and "is empty" in proc.stderr and "Traceback" not in proc.stderr


def test_repo_without_commits_is_fixed(tmp_path):
    """An `git init` with files but no commit yet: a snapshot without a parent."""
    repo = make_repo(tmp_path, commit=False)
    before = fingerprint(repo)
    with ScriptedServer(script()) as server:
        proc = run_fix(
            fix_env(tmp_path, server.base_url),
            "--repo", str(repo), "--issue", ISSUE, "--samples", "1", "--test-samples", "0",
            "--out", str(tmp_path / "out"), "-q",
        )  # fmt: skip
    print(proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert "return hi" in (tmp_path / "out" / "best.patch").read_text()
    assert fingerprint(repo) == before


def test_unreadable_repo_folder(tmp_path):
    """Only meaningful for a user that permissions bind (root reads everything)."""
    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    repo = make_repo(tmp_path)
    repo.chmod(0)
    try:
        proc = run_fix(fix_env(tmp_path), "--repo", str(repo), "--issue", ISSUE, timeout=60)
    finally:
        repo.chmod(0o755)
    assert proc.returncode == 2 and "cannot read the folder" in proc.stderr


def test_help_of_fix_names_the_stdin_form():
    proc = subprocess.run(fix_argv("--help"), capture_output=True, text=True, timeout=60)
    assert "'-' reads standard input" in proc.stdout
