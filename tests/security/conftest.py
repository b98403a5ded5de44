"""The escape suite's tests get a `tmp_path` outside /tmp, /var/tmp and the homes.

A user's home, projects and kat-lsp's folders do not live under /tmp, which the sandbox
replaces by its own private tmpfs anyway: a secret planted under /tmp would be invisible
inside for that reason alone, and a test could pass without proving anything.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# The language-server fixtures (a repository, the scripted model, the server's environment).
from tests.lsp.conftest import model, repo, server_env  # noqa: F401

CANDIDATE_PARENTS = ("/srv", "/opt", "/mnt", os.getcwd())


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    for parent in CANDIDATE_PARENTS:
        if os.access(parent, os.W_OK) and not Path(parent).resolve().is_relative_to("/tmp"):
            folder = Path(tempfile.mkdtemp(prefix="kat-sec-", dir=parent)).resolve()
            yield folder
            shutil.rmtree(folder, ignore_errors=True)
            return
    pytest.skip("no writable folder outside /tmp (/srv, /opt, /mnt, the current folder)")
