"""Shared fixtures. Every test runs with its cache/state dirs in tmp_path and no endpoint
from the developer's environment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kat_lsp.model.scripted import ScriptedServer


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAT_CACHE_DIR", str(tmp_path / "kat-cache"))
    monkeypatch.setenv("KAT_STATE_DIR", str(tmp_path / "kat-state"))
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "KAT_MODEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    """Start in-process scripted servers: `server = scripted(script, latency=...)`."""
    servers: list[ScriptedServer] = []

    def start(script: dict[str, Any] | Path, **kwargs: Any) -> ScriptedServer:
        server = ScriptedServer(script, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
