"""Writing runs under the user state dir (docs/reference/lsp.md, persistence).

`<state>/runs/<run-id>/run.json` holds the issue, settings, phase, timings, usage,
tests and candidates; `candidates/<id>.patch` the patches, `tests/<n>.patch` the
reproduction tests, `trajectories/<sample>.traj.json` every sample's trajectory.
Reading them back is `kat_lsp.server.records`, which validates every field: a record
is not trusted just because it lies in the state dir.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kat_lsp.paths import runs_dir
from kat_lsp.workspace.rundirs import start_time


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class RunStore:
    """The folder of one run."""

    path: Path

    @classmethod
    def create(cls, run_id: str, base: Path | None = None) -> RunStore:
        path = (base or runs_dir()) / run_id
        (path / "candidates").mkdir(parents=True, exist_ok=True)
        (path / "tests").mkdir(exist_ok=True)
        (path / "trajectories").mkdir(exist_ok=True)
        return cls(path)

    def save(self, record: dict[str, Any]) -> None:
        pid = os.getpid()
        record = {**record, "pid": pid, "pid_started": start_time(pid), "updated": time.time()}
        _write_json(self.path / "run.json", record)

    def save_patch(self, folder: str, name: str, patch: str) -> str:
        target = self.path / folder / f"{name}.patch"
        target.write_text(patch, encoding="utf-8")
        return str(target.relative_to(self.path))
