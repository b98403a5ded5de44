"""Batch Emacs with eglot runs docs/howto/emacs.md's configuration (tests/lsp/emacs/kat.el)
through a fix and the preferred code action, against the real server and model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lsp.conftest import run_editor

EMACS_DIR = Path(__file__).parent / "emacs"
DOC = Path(__file__).resolve().parents[2] / "docs" / "howto" / "emacs.md"


def eglot_available() -> bool:
    if shutil.which("emacs") is None:
        return False
    probe = subprocess.run(
        ["emacs", "--batch", "--eval", "(require 'eglot)"], capture_output=True, timeout=60
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not eglot_available(), reason="needs emacs with eglot (apt-get install emacs-nox elpa-eglot)"
)
def test_batch_emacs_fixes_the_bug_with_the_documented_config(
    repo: Path, server_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "emacs-report.json"
    env = {
        **server_env,
        "HOME": str(tmp_path / "home"),
        "KAT_EMACS_OUT": str(report),
        "KAT_EMACS_DIR": str(EMACS_DIR),
        "KAT_EMACS_FILE": str(repo / "stats.py"),
        "KAT_EMACS_CMD": json.dumps([sys.executable, "-m", "kat_lsp", "serve"]),
    }
    data = run_editor(["emacs", "--batch", "-l", str(EMACS_DIR / "drive.el")], repo, env, report)
    assert "    if len(ordered) % 2 == 0:\n" in data["text"]


def test_the_emacs_how_to_shows_the_tested_config() -> None:
    assert (EMACS_DIR / "kat.el").read_text() in DOC.read_text()
