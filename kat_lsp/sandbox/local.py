"""`LocalExecutor`: model commands without a sandbox (`sandbox = "none"`, and the bench baseline).

Same contract as the bubblewrap executor — new session, process-group kill, allowlisted
environment (no secrets, whatever the sandbox setting), clipped output — but the command
can read and write whatever the user can, and HOME is the user's real home.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from kat_lsp.sandbox.process import ProcessExecutor, command_env


class LocalExecutor(ProcessExecutor):
    """Runs `bash -c command` in `root` as a plain child process group."""

    def __init__(
        self,
        root: Path,
        *,
        timeout: float = 60.0,
        output_cap: int = 10_000,
        env: Mapping[str, str] | None = None,
        env_allow: Sequence[str] = (),
    ) -> None:
        super().__init__(root, timeout=timeout, output_cap=output_cap, env=env)
        self.env = command_env(env, allow=env_allow)
