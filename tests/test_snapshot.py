"""take_snapshot on real git repositories and plain folders: what a run sees, and that
the user's repository is left exactly as it was."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kat_lsp.workspace import WorkspaceError, take_snapshot
from tests.gitutil import cache_env, git, make_repo, tree_state, write_files

__all__ = ["cache_env"]


def user_view(repo: Path) -> dict[str, str]:
    """What the user sees of their repository (read without refreshing the index)."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def run(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
        ).stdout

    return {
        "head": run("rev-parse", "HEAD"),
        "branch": run("symbolic-ref", "HEAD"),
        "stash": run("stash", "list"),
        "status": run("status", "--porcelain"),
        "staged": run("diff", "--cached"),
    }


@pytest.fixture
def busy_repo(tmp_path: Path) -> Path:
    """A repository with a stash, a dirty file, a staged change, untracked and ignored files."""
    repo = make_repo(
        tmp_path / "user",
        {"app.py": "x = 1\n", "lib.py": "y = 1\n", ".gitignore": "*.log\nbuild/\n"},
    )
    (repo / "lib.py").write_text("y = 'stashed'\n")
    git(repo, "stash", "-q")
    write_files(repo, {"app.py": "x = 2  # dirty\n", "lib.py": "y = 2  # staged\n"})
    git(repo, "add", "lib.py")
    write_files(
        repo,
        {
            "lib.py": "y = 3  # staged then edited\n",
            "notes/todo.txt": "untracked\n",
            "debug.log": "ignored\n",
            "build/out.bin": b"\0ignored",
        },
    )
    return repo


def test_user_repository_is_byte_identical_after_a_snapshot(cache_env: Path, busy_repo: Path):
    view_before = user_view(busy_repo)
    state_before = tree_state(busy_repo)

    snapshot = take_snapshot(busy_repo, run_id="run1")

    assert tree_state(busy_repo) == state_before  # .git (index, refs, logs, stash) and files
    assert user_view(busy_repo) == view_before
    assert "refs/stash" in git(busy_repo, "show-ref")
    assert not (busy_repo / ".git" / "worktrees").exists()
    assert snapshot.repo.is_relative_to(cache_env)


def test_snapshot_holds_what_the_user_sees(cache_env: Path, busy_repo: Path):
    snapshot = take_snapshot(busy_repo, run_id="run1")

    assert snapshot.is_git
    assert snapshot.read_file("app.py") == b"x = 2  # dirty\n"
    assert snapshot.read_file("lib.py") == b"y = 3  # staged then edited\n"
    assert snapshot.read_file("notes/todo.txt") == b"untracked\n"
    assert snapshot.read_file("debug.log") is None
    assert snapshot.read_file("build/out.bin") is None
    assert sorted(snapshot.files()) == [".gitignore", "app.py", "lib.py", "notes/todo.txt"]
    # The snapshot commit sits on top of the user's HEAD, so history stays visible.
    parent = git(busy_repo, "rev-parse", "HEAD").strip()
    assert snapshot.head == parent
    log = git(busy_repo, f"--git-dir={snapshot.repo}", "log", "--format=%H", snapshot.commit)
    assert log.split() == [snapshot.commit, parent]


def test_unsaved_buffers_override_the_disk(cache_env: Path, busy_repo: Path, tmp_path: Path):
    overrides: dict[str | Path, str] = {
        "app.py": "x = 'from the editor'\n",
        busy_repo / "pkg" / "new_module.py": "NEW = True\n",
        "debug.log": "an ignored buffer\n",
        tmp_path / "elsewhere.py": "outside the root\n",
    }
    snapshot = take_snapshot(busy_repo, overrides=overrides, run_id="run1")

    assert snapshot.read_file("app.py") == b"x = 'from the editor'\n"
    assert snapshot.read_file("pkg/new_module.py") == b"NEW = True\n"
    assert snapshot.read_file("debug.log") is None
    assert snapshot.overridden == ("app.py", "pkg/new_module.py")
    assert (busy_repo / "app.py").read_text() == "x = 2  # dirty\n"
    assert not (busy_repo / "pkg").exists()


@pytest.mark.parametrize("with_gitignore", [True, False])
def test_plain_folder(cache_env: Path, tmp_path: Path, with_gitignore: bool):
    root = tmp_path / "plain"
    write_files(
        root,
        {
            "main.py": "print('hi')\n",
            "data/table.csv": "a,b\n",
            "node_modules/left-pad/index.js": "x\n",
            ".venv/bin/python": "#!\n",
            "pkg/__pycache__/m.cpython-311.pyc": b"\0\0",
            "secret.env": "KEY=1\n",
        },
    )
    if with_gitignore:
        (root / ".gitignore").write_text("*.env\n")

    snapshot = take_snapshot(root, run_id="plain")

    expected = {"main.py", "data/table.csv", "secret.env"}
    if with_gitignore:
        expected = expected - {"secret.env"} | {".gitignore"}
    assert not snapshot.is_git
    assert set(snapshot.files()) == expected
    assert snapshot.read_file("data/table.csv") == b"a,b\n"
    assert not (root / ".git").exists()


def test_subfolder_root_snapshots_only_that_folder(cache_env: Path, tmp_path: Path):
    repo = make_repo(
        tmp_path / "mono",
        {"README.md": "top\n", "pkg/src/a.py": "a = 1\n", "pkg/.gitignore": "*.tmp\n"},
    )
    write_files(repo, {"pkg/src/a.py": "a = 2\n", "pkg/b.py": "b\n", "pkg/x.tmp": "t\n"})

    snapshot = take_snapshot(repo / "pkg", overrides={"src/c.py": "c\n"}, run_id="sub")

    assert snapshot.prefix == "pkg/"
    assert snapshot.toplevel == repo.resolve()
    assert sorted(snapshot.files()) == [".gitignore", "b.py", "src/a.py", "src/c.py"]
    assert snapshot.read_file("src/a.py") == b"a = 2\n"
    assert snapshot.read_file("README.md") is None


def test_repository_without_commits(cache_env: Path, tmp_path: Path):
    repo = make_repo(tmp_path / "fresh", {"a.py": "a\n", "b.py": "b\n"}, commit=False)
    git(repo, "add", "a.py")
    before = tree_state(repo)

    snapshot = take_snapshot(repo, run_id="fresh")

    assert snapshot.head is None
    assert sorted(snapshot.files()) == ["a.py", "b.py"]
    parents = git(
        repo, f"--git-dir={snapshot.repo}", "rev-list", "--parents", "-n1", snapshot.commit
    )
    assert parents.split() == [snapshot.commit]
    assert tree_state(repo) == before


def test_user_worktree(cache_env: Path, tmp_path: Path):
    repo = make_repo(tmp_path / "main", {"f.py": "main\n"})
    git(repo, "worktree", "add", "-q", "-b", "feature", str(tmp_path / "wt"))
    worktree = tmp_path / "wt"
    (worktree / "f.py").write_text("feature, dirty\n")
    (worktree / "g.py").write_text("untracked in the worktree\n")
    before = tree_state(repo)

    snapshot = take_snapshot(worktree, run_id="wt")

    assert snapshot.read_file("f.py") == b"feature, dirty\n"
    assert snapshot.read_file("g.py") == b"untracked in the worktree\n"
    assert snapshot.head == git(worktree, "rev-parse", "HEAD").strip()
    assert tree_state(repo) == before  # includes .git/worktrees/wt/index
    assert git(worktree, "status", "--porcelain") == " M f.py\n?? g.py\n"


def test_odd_names_symlinks_modes_and_submodules(cache_env: Path, tmp_path: Path):
    sub = make_repo(tmp_path / "sub", {"s.txt": "sub\n"})
    repo = make_repo(tmp_path / "user", {"plain.txt": "p\n"})
    git(repo, "submodule", "add", "-q", str(sub), "vendor/sub")
    git(repo, "commit", "-q", "-m", "add submodule")
    write_files(repo, {"sp ace é.txt": "odd\n", "run.sh": "#!/bin/sh\n", "vendor/sub/s.txt": "x\n"})
    (repo / "run.sh").chmod(0o755)
    (repo / "link").symlink_to("plain.txt")

    snapshot = take_snapshot(repo, run_id="odd")

    listing = git(repo, f"--git-dir={snapshot.repo}", "ls-tree", "-r", "-z", snapshot.commit)
    modes = {e.split("\t")[1]: e.split()[0] for e in listing.split("\0") if e}
    assert modes["sp ace é.txt"] == "100644"
    assert modes["run.sh"] == "100755"
    assert modes["link"] == "120000"
    assert modes["vendor/sub"] == "160000"  # recorded as it is, not recursed into
    assert snapshot.read_file("link") == b"plain.txt"
    assert snapshot.read_file("sp ace é.txt") == b"odd\n"


def test_errors_and_removal(cache_env: Path, tmp_path: Path):
    with pytest.raises(WorkspaceError, match="not a folder"):
        take_snapshot(tmp_path / "missing", run_id="r")
    root = make_repo(tmp_path / "r", {"a": "a\n"})
    snapshot = take_snapshot(root, run_id="r")
    with pytest.raises(WorkspaceError, match="already exists"):
        take_snapshot(root, run_id="r")
    with pytest.raises(ValueError, match="invalid run id"):
        take_snapshot(root, run_id="../escape")
    snapshot.remove()
    assert not snapshot.repo.exists()
    assert snapshot.read_file("a") is None


def test_user_settings_count_but_nothing_executable_runs(cache_env: Path, tmp_path: Path):
    """The user's global excludes file and autocrlf still shape the snapshot; the hooks,
    fsmonitor and filter drivers their config (global or the repository's) names do not
    run: the snapshot's git reads no global config and overrides the rest."""
    marker = tmp_path / "PWNED"
    repo = make_repo(tmp_path / "user", {"app.py": "x = 1\n"})
    excludes = tmp_path / "global-ignore"
    excludes.write_text("*.secret\n")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for name in ("post-index-change", "reference-transaction", "pre-commit"):
        (hooks / name).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (hooks / name).chmod(0o755)
    with open(tmp_path / "gitconfig", "a") as config:
        config.write(f"[core]\n\texcludesFile = {excludes}\n\tautocrlf = input\n")
        config.write(f'[filter "x"]\n\tclean = "touch {marker}; cat"\n')
    git(repo, "config", "core.fsmonitor", f"touch {marker}; false")
    git(repo, "config", "core.hooksPath", str(hooks))
    write_files(
        repo,
        {".gitattributes": "*.txt filter=x\n", "a.txt": "line\r\n", "key.secret": "s\n"},
    )

    snapshot = take_snapshot(repo, run_id="run1")

    assert "key.secret" not in snapshot.files()
    assert snapshot.read_file("a.txt") == b"line\n"  # autocrlf=input from the global config
    assert not marker.exists()
