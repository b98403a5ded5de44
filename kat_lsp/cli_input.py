"""Checking what a user hands `kat-lsp fix` before anything starts: the repository
folder, the issue text, the counts and the output folder. Each problem is one
`UsageError` (exit 2, one line) saying what is wrong and what to do; nothing here
writes anything.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

from kat_lsp.cli import UsageError

MAX_ISSUE_BYTES = 256 * 1024
"""Largest issue text accepted: every sample's prompt holds all of it."""


def _read_capped(source: str, path: Path | None) -> bytes:
    if path is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError(
                "--issue-file -: standard input is a terminal; pipe the issue in "
                "(kat-lsp fix ... --issue-file - < issue.md) or pass --issue"
            )
        return sys.stdin.buffer.read(MAX_ISSUE_BYTES + 1)
    try:
        with open(path, "rb") as handle:
            if stat.S_ISDIR(os.fstat(handle.fileno()).st_mode):
                raise IsADirectoryError
            return handle.read(MAX_ISSUE_BYTES + 1)
    except IsADirectoryError as exc:
        raise UsageError(f"{source} is a folder: pass a text file holding the issue") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror}") from exc


def read_issue(args: argparse.Namespace) -> str:
    """The issue text of --issue, --issue-file FILE, or --issue-file - (standard input)."""
    if args.issue_file is not None:
        stdin = str(args.issue_file) == "-"
        source = "--issue-file -" if stdin else f"--issue-file {args.issue_file}"
        data = _read_capped(source, None if stdin else args.issue_file)
    else:
        source = "--issue"
        data = str(args.issue).encode("utf-8", "surrogateescape")
    if len(data) > MAX_ISSUE_BYTES:
        raise UsageError(
            f"{source} is over {MAX_ISSUE_BYTES // 1024} KB: shorten the issue to the problem, "
            "the error and the steps to reproduce (every sample's prompt holds all of it)"
        )
    if b"\0" in data:
        raise UsageError(f"{source} holds binary data: pass UTF-8 text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{source} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
        ) from exc
    if not text.strip():
        raise UsageError(
            f"the issue text is empty ({source}): describe the problem with --issue or --issue-file"
        )
    return text


def check_repo(repo: Path, given: Path) -> None:
    """The folder to fix must be a readable folder and, if in git, have a work tree."""
    if not os.path.lexists(repo):
        raise UsageError(f"--repo {given}: no such folder; pass the folder of the project to fix")
    if not repo.is_dir():
        raise UsageError(f"--repo {given} is not a folder: pass the folder of the project to fix")
    try:
        os.listdir(repo)
    except OSError as exc:
        raise UsageError(
            f"--repo {given}: cannot read the folder ({exc.strerror}); fix its permissions"
        ) from exc
    from kat_lsp.workspace import WorkspaceError
    from kat_lsp.workspace.userrepo import locate

    try:
        locate(repo)
    except WorkspaceError as exc:
        if "work tree" in str(exc):
            raise UsageError(
                f"--repo {given} is a bare git repository or its .git folder (no working "
                "tree): pass the folder of a checkout (git clone it first)"
            ) from exc
        detail = str(exc).replace("\n", " ")
        raise UsageError(f"--repo {given}: {detail}") from exc


def check_out(out: Path | None) -> None:
    """--out must be a folder, or a path where one can be made."""
    if out is None:
        return
    if out.exists() and not out.is_dir():
        raise UsageError(
            f"--out {out} is a file: pass a folder (it will hold ranked.json and best.patch)"
        )
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"--out {out}: {parent} is a file, so the folder cannot be made")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: {parent} is not writable; pass a folder you can write")


def check_counts(args: argparse.Namespace) -> None:
    """The counts given on the command line, before the settings are built."""
    from kat_lsp.pipeline.capacity import MAX_SAMPLES

    least = {"samples": 1, "rounds": 1, "top_k": 1, "test_samples": 0, "step_limit": 1}
    for name, low in least.items():
        value = getattr(args, name)
        flag = "--" + name.replace("_", "-")
        if value is not None and value < low:
            raise UsageError(f"{flag} {value}: use {low} or more")
    for name in ("samples", "test_samples"):
        value = getattr(args, name)
        if value is not None and value > MAX_SAMPLES:
            flag = "--" + name.replace("_", "-")
            raise UsageError(
                f"{flag} {value} is above the ceiling of {MAX_SAMPLES} (max_samples): "
                f"use {MAX_SAMPLES} or fewer, or spread them over runs"
            )
