"""`kat-lsp doctor`: a real subprocess tells what protects a run here and what a run uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def doctor(repo: Path, **env: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "kat_lsp", "doctor", "--json", "--repo", str(repo)],
        env={**os.environ, "KAT_CONFIG_DIR": str(repo.parent / "userconf"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    data = json.loads(proc.stdout)
    return proc.returncode, {c["check"]: c for c in data["checks"]}


def test_doctor_names_ignored_workspace_settings_and_the_limit_mechanism(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".kat.toml").write_text('sandbox = "none"\nsandbox_memory_mb = 0\n')
    code, checks = doctor(repo, KAT_SANDBOX_CGROUPS="off", OPENAI_API_KEY="sk-secret")
    assert code == 0
    assert checks["workspace trust"]["status"] == "warn"
    assert "sandbox, sandbox_memory_mb" in checks["workspace trust"]["detail"]
    assert checks["sandbox"]["status"] == "ok"  # the repository's "none" did not apply
    assert "memory 2048 MiB (setrlimit RLIMIT_DATA" in checks["limits"]["detail"]
    assert "OPENAI_API_KEY" not in checks["environment"]["detail"]
    assert checks["endpoint"]["status"] == "warn"


def test_doctor_fails_when_no_sandbox_can_start(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    bin_dir = tmp_path / "bin"  # git and python, but no bwrap on PATH
    bin_dir.mkdir()
    for tool in ("git", "bash", "sh"):
        (bin_dir / tool).symlink_to(f"/usr/bin/{tool}")
    code, checks = doctor(repo, PATH=str(bin_dir))
    assert code == 2
    assert checks["sandbox"]["status"] == "fail"
    assert "apt-get install bubblewrap" in checks["sandbox"]["detail"]
