"""Where kat-lsp keeps things: checkouts under the user cache dir, runs under the state dir.

`KAT_CACHE_DIR` and `KAT_STATE_DIR` override both (tests point them into tmp_path).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Private snapshot repositories and sample checkouts (safe to delete when idle)."""
    if env := os.environ.get("KAT_CACHE_DIR"):
        return Path(env)
    from platformdirs import user_cache_path

    return user_cache_path("kat-lsp", appauthor=False)


def state_dir() -> Path:
    """Persisted runs: `<state>/runs/<run-id>/` (DESIGN.md §4 Persistence)."""
    if env := os.environ.get("KAT_STATE_DIR"):
        return Path(env)
    from platformdirs import user_state_path

    return user_state_path("kat-lsp", appauthor=False)


def runs_dir() -> Path:
    return state_dir() / "runs"
