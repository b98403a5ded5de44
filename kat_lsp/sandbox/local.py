"""`LocalExecutor`: model commands without a sandbox (`sandbox = "none"`, and the bench baseline).

Same contract as the bubblewrap executor — new session, process-group kill, allowlisted
environment (no secrets, whatever the sandbox setting), clipped output — but the command
can read and write whatever the user can, and HOME is the user's real home.
"""

from __future__ import annotations

from kat_lsp.sandbox.process import ProcessExecutor


class LocalExecutor(ProcessExecutor):
    """Runs `bash -c command` in `root` as a plain child process group."""
