"""Test helpers around the packaged scripted server (`kat_lsp.model.scripted`).

`scripted_server(script)` runs it in-process, `scripted_process(script, tmp)` as a
subprocess (as the CLI and LSP tests need it), `model_config(base_url)` a KatConfig that
points at it with short timeouts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kat_lsp.config import KatConfig
from kat_lsp.model.scripted import ScriptedServer


def model_config(base_url: str, **overrides: Any) -> KatConfig:
    """Settings for a scripted endpoint: few retries, short timeouts."""
    settings: dict[str, Any] = {
        "base_url": base_url,
        "model": "scripted-model",
        "api_key": "test-key",
        "max_retries": 2,
        "request_timeout": 30.0,
    }
    settings.update(overrides)
    return KatConfig(**settings)


@contextmanager
def scripted_server(script: dict[str, Any] | Path, **kwargs: Any) -> Iterator[ScriptedServer]:
    with ScriptedServer(script, **kwargs) as server:
        yield server


@dataclass
class ScriptedProcess:
    process: subprocess.Popen[str]
    base_url: str


@contextmanager
def scripted_process(
    script: dict[str, Any] | Path, workdir: Path, *extra_args: str
) -> Iterator[ScriptedProcess]:
    """`python -m kat_lsp.model.scripted` on a free port; stopped (SIGTERM) on exit."""
    if isinstance(script, dict):
        path = workdir / "script.json"
        path.write_text(json.dumps(script), encoding="utf-8")
        script = path
    command = [sys.executable, "-m", "kat_lsp.model.scripted", "--script", str(script)]
    process = subprocess.Popen(
        [*command, "--port", "0", *extra_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url:
            _, err = process.communicate(timeout=10)
            raise RuntimeError(f"scripted server did not start: {err}")
        yield ScriptedProcess(process, base_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
