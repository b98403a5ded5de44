"""Helpers of the fault suite: a `kat-lsp fix` subprocess with its own cache, state and
HOME, against the scripted model server, and what the user would observe of it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.security.harness import fingerprint, git

CLAMP = "def clamp(x, lo, hi):\n    if x > hi:\n        return lo\n    return max(x, lo)\n"
ISSUE = "clamp(15, 0, 10) returns 0 instead of 10."
FIX = [
    {
        "tool": "str_replace_editor",
        "args": {
            "command": "str_replace",
            "path": "clamp.py",
            "old_str": "        return lo\n    return max",
            "new_str": "        return hi\n    return max",
        },
    },
    {"tool": "submit", "args": {}},
]


def script(generate: list[dict[str, Any]] | None = None, latency: float = 0.0) -> dict[str, Any]:
    return {
        "latency": latency,
        "phases": {
            "generate": {"default": generate if generate is not None else FIX},
            "testgen": {"default": []},
            "judge": {"default": [{"tool": "score", "args": {"score": 7, "reason": "ok"}}]},
            "reflect": [{"content": "no notes"}],
        },
    }


def make_repo(tmp_path: Path, *, commit: bool = True) -> Path:
    repo = tmp_path / "user-repo"
    repo.mkdir()
    (repo / "clamp.py").write_text(CLAMP)
    git(repo, "init", "-q", "-b", "main")
    if commit:
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "initial")
    return repo


def fix_env(tmp_path: Path, base_url: str = "http://127.0.0.1:9/v1") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "KAT_"))}
    env.update(
        HOME=str(tmp_path / "home"),
        KAT_CACHE_DIR=str(tmp_path / "kat-cache"),
        KAT_STATE_DIR=str(tmp_path / "kat-state"),
        KAT_MODEL="scripted",
        OPENAI_BASE_URL=base_url,
        OPENAI_API_KEY="sk-test",
    )
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


def fix_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "kat_lsp", "fix", *args]


def run_fix(
    env: dict[str, str], *args: str, stdin: bytes | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        fix_argv(*args),
        env=env,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )  # fmt: skip


def checkouts_left(tmp_path: Path) -> list[str]:
    """Sample checkouts and snapshot repositories still under the cache dir."""
    base = tmp_path / "kat-cache"
    return [
        f"{kind}/{p.name}"
        for kind in ("checkouts", "snapshots")
        if (base / kind).is_dir()
        for p in (base / kind).iterdir()
    ]


__all__ = ["fingerprint", "git"]


def children(root_pid: int) -> dict[int, tuple[int, str]]:
    """Every live process below `root_pid`: pid -> (ppid, comm)."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] in "ZX":
            continue
        table[int(entry.name)] = (int(fields[1]), comm)
    below: dict[int, tuple[int, str]] = {}
    frontier = {root_pid}
    while frontier:
        frontier = {p for p, (pp, _) in table.items() if pp in frontier and p not in below}
        below.update({p: table[p] for p in frontier})
    return below


def sandboxes_of(root_pid: int) -> int:
    """Sandboxes alive below `root_pid`: bwrap processes whose parent is no bwrap (bwrap
    forks itself once inside its namespaces)."""
    procs = children(root_pid)
    return sum(
        1
        for pid, (ppid, comm) in procs.items()
        if comm == "bwrap" and procs.get(ppid, (0, ""))[1] != "bwrap"
    )
