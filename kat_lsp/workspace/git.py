"""Running git for the workspace: one sync runner with a hardened environment, and the
few repository-layout helpers that let us build private git dirs by hand.

Hardened means no git the host runs can be made to execute anything: no system or
global config (GIT_CONFIG_NOSYSTEM, GIT_CONFIG_GLOBAL=/dev/null), no system attributes,
and SAFE_CONFIG passed as command-line config (GIT_CONFIG_COUNT/KEY/VALUE), which wins
over every config file: no fsmonitor, hooks from an empty path, no protocols, no
submodule recursion. Callers also always name a git dir the sandbox cannot write, so
no config file, hook, attribute file, alternates or worktree setting a sandboxed
process wrote is ever read (docs/architecture/workspace.md).

Private repositories (snapshots, checkouts) are laid out in Python rather than with
`git init`: it saves a process per checkout and lets us write alternates, config and
refs in one go. Everything else goes through the real `git` binary.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from kat_lsp.exceptions import KatError

# `git rev-parse --local-env-vars`: a caller's GIT_DIR (e.g. kat-lsp started from a git
# hook) must never redirect our commands to another repository.
_LOCAL_ENV_VARS = (
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT", "GIT_OBJECT_DIRECTORY", "GIT_DIR", "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE", "GIT_GRAFT_FILE", "GIT_INDEX_FILE", "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE", "GIT_PREFIX", "GIT_INTERNAL_SUPER_PREFIX", "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_LITERAL_PATHSPECS",
)  # fmt: skip

# Variables of the host's environment that make git run a program.
_EXEC_ENV_VARS = (
    "GIT_EXTERNAL_DIFF", "GIT_PAGER", "PAGER", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR",
    "GIT_SSH", "GIT_SSH_COMMAND", "GIT_PROXY_COMMAND", "GIT_ASKPASS", "SSH_ASKPASS",
    "GIT_EXEC_PATH", "GIT_TEMPLATE_DIR",
)  # fmt: skip

SAFE_CONFIG = (
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),  # no hook can exist below a non-directory
    ("core.pager", "cat"),
    ("core.sshCommand", "false"),
    ("core.askPass", "false"),
    ("protocol.allow", "never"),
    ("submodule.recurse", "false"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("commit.gpgSign", "false"),
)
"""Settings every host git runs with, above any config file a repository may hold."""

GIT_TIMEOUT = 600.0
"""Seconds any host git may take (snapshots of large trees included)."""

AGENT_NAME = "kat-lsp"
AGENT_EMAIL = "kat-lsp@localhost"


class WorkspaceError(KatError):
    """A snapshot or checkout could not be made or read. The message says what to do."""


class GitError(WorkspaceError):
    """A git command failed; the message carries the command and git's own words."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        self.args_ = list(args)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"`git {' '.join(args)}` failed (exit {returncode}): {self.stderr}")


def git_env(extra: Mapping[str, str] | None = None, *, user_config: bool = False) -> dict[str, str]:
    """The process environment without repository-locating or program-naming variables,
    hardened (SAFE_CONFIG), plus `extra`. `user_config` keeps the user's system and
    global config files readable (only for read-only commands on the user's own
    repository: where it is, which settings to copy)."""
    dropped = (*_LOCAL_ENV_VARS, *_EXEC_ENV_VARS)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in dropped and not k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))
    }
    if not user_config:
        env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", GIT_ATTR_NOSYSTEM="1")
    env["GIT_CONFIG_COUNT"] = str(len(SAFE_CONFIG))
    for i, (key, value) in enumerate(SAFE_CONFIG):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    env.update(
        GIT_OPTIONAL_LOCKS="0",  # never refresh an index we only read
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",  # error messages are parsed (patches.py)
        GIT_AUTHOR_NAME=AGENT_NAME,
        GIT_AUTHOR_EMAIL=AGENT_EMAIL,
        GIT_COMMITTER_NAME=AGENT_NAME,
        GIT_COMMITTER_EMAIL=AGENT_EMAIL,
    )
    env.update(extra or {})
    return env


def run_git(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    user_config: bool = False,
    timeout: float = GIT_TIMEOUT,
) -> subprocess.CompletedProcess[bytes]:
    """Run `git args...` (hardened, see git_env); raise GitError on a non-zero exit when
    `check`, and always when it runs longer than `timeout` seconds (a tree can hold a
    FIFO where git expects a file: a nested repository's HEAD). Callers name the git dir
    (GIT_DIR) unless `user_config` (the user's repo)."""
    argv = [os.fspath(a) for a in args]
    try:
        proc = subprocess.run(
            ["git", *argv],
            cwd=cwd,
            env=git_env(env, user_config=user_config),
            input=input,
            capture_output=True,
            stdin=None if input is not None else subprocess.DEVNULL,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise GitError(argv, -1, f"timed out after {timeout:g} s") from None
    if check and proc.returncode != 0:
        raise GitError(argv, proc.returncode, proc.stderr.decode(errors="replace"))
    return proc


def git_text(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
) -> str:
    """stdout of a successful git command, decoded and stripped."""
    proc = run_git(args, cwd=cwd, env=env, input=input)
    return proc.stdout.decode(errors="surrogateescape").strip()


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_text(sections: Mapping[str, Mapping[str, str]]) -> str:
    """Render `{section: {key: value}}` as a git config file (values quoted)."""
    lines: list[str] = []
    for section, values in sections.items():
        name, _, sub = section.partition(".")
        lines.append(f'[{name} "{sub}"]' if sub else f"[{name}]")
        lines.extend(f"\t{key} = {_quote(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


def init_git_dir(
    git_dir: Path,
    *,
    bare: bool,
    object_format: str,
    config: Mapping[str, Mapping[str, str]],
    alternates: Sequence[Path] = (),
    exclude: bytes = b"",
    head_ref: str = "refs/heads/main",
) -> None:
    """Lay out a minimal git dir (what `git init --template=` would write, and no hooks)."""
    for sub in ("objects/info", "objects/pack", "refs/heads", "refs/tags", "info"):
        (git_dir / sub).mkdir(parents=True, exist_ok=True)
    core = {
        "repositoryformatversion": "1" if object_format != "sha1" else "0",
        "bare": "true" if bare else "false",
        "logallrefupdates": "false" if bare else "true",
    }
    sections: dict[str, Mapping[str, str]] = {"core": {**core, **config.get("core", {})}}
    sections.update({k: v for k, v in config.items() if k != "core"})
    if object_format != "sha1":
        sections["extensions"] = {"objectformat": object_format}
    (git_dir / "config").write_text(config_text(sections))
    if alternates:
        set_alternates(git_dir / "objects", alternates)
    (git_dir / "info" / "exclude").write_bytes(exclude)
    (git_dir / "HEAD").write_text(f"ref: {head_ref}\n")


def set_alternates(objects: Path, borrowed: Sequence[Path]) -> None:
    """Let the object dir `objects` read (never write) the objects of `borrowed`.

    Git "freshens" (touches the mtime of) an object it is asked to write when it finds
    it in an alternate: commands that write objects must therefore run before the
    user's objects are borrowed, or with an object dir that borrows nothing."""
    lines = "".join(f"{os.fspath(p)}\n" for p in borrowed)
    (objects / "info").mkdir(parents=True, exist_ok=True)
    (objects / "info" / "alternates").write_text(lines)


def write_ref(git_dir: Path, ref: str, sha: str) -> None:
    path = git_dir / ref
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sha + "\n")


def write_object(git_dir: Path, kind: str, data: bytes, object_format: str = "sha1") -> str:
    """Store a loose object (`kind` = blob/tree) in a private repository; return its id."""
    raw = f"{kind} {len(data)}\0".encode() + data
    sha = hashlib.new(object_format, raw).hexdigest()
    path = git_dir / "objects" / sha[:2] / sha[2:]
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        tmp.write_bytes(zlib.compress(raw, 1))
        tmp.replace(path)
    return sha


def object_dir_chain(objects: Path) -> list[Path]:
    """`objects` and every object dir it borrows from through alternates, transitively."""
    chain: list[Path] = []
    todo = [objects]
    while todo and len(chain) < 16:
        current = todo.pop(0)
        if current in chain:
            continue
        chain.append(current)
        alternates = current / "info" / "alternates"
        if alternates.is_file():
            for line in alternates.read_text(errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    todo.append((current / line).resolve())
    return chain
