"""Headless Neovim 0.7 runs docs/howto/neovim.md's configuration (tests/lsp/nvim/kat.lua)
through a fix and the preferred code action, against the real server and model."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.lsp.conftest import run_editor

NVIM_DIR = Path(__file__).parent / "nvim"
DOC = Path(__file__).resolve().parents[2] / "docs" / "howto" / "neovim.md"


@pytest.mark.skipif(shutil.which("nvim") is None, reason="needs nvim (apt-get install neovim)")
def test_headless_neovim_fixes_the_bug_with_the_documented_config(
    repo: Path, server_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "nvim-report.json"
    xdg = tmp_path / "xdg"
    env = {
        **server_env,
        "KAT_NVIM_OUT": str(report),
        "KAT_NVIM_DIR": str(NVIM_DIR),
        "KAT_NVIM_FILE": str(repo / "stats.py"),
        "KAT_NVIM_CMD": json.dumps([sys.executable, "-m", "kat_lsp", "serve"]),
        **{f"XDG_{k}_HOME": str(xdg / k.lower()) for k in ("CONFIG", "DATA", "STATE", "CACHE")},
    }
    data = run_editor(
        [
            "nvim",
            "--headless",
            "-u",
            "NONE",
            "-i",
            "NONE",
            "-n",
            "-c",
            f"luafile {NVIM_DIR / 'drive.lua'}",
        ],
        repo,
        env,
        report,
    )
    assert "    if len(ordered) % 2 == 0:" in data["lines"]


def test_the_neovim_how_to_shows_the_tested_config() -> None:
    assert (NVIM_DIR / "kat.lua").read_text() in DOC.read_text()
