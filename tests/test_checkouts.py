"""Sample checkouts: their content, git inside a real bubblewrap sandbox, the candidate
diff, independence, removal and pruning."""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kat_lsp.workspace import (
    Checkout,
    Snapshot,
    WorkspaceError,
    apply_patch,
    create_checkout,
    prune_stale,
    remove_run_checkouts,
    take_snapshot,
)
from kat_lsp.workspace.rundirs import OWNER_FILE
from tests.gitutil import cache_env, git, make_repo, tree_state, worktree_files, write_files

__all__ = ["cache_env"]

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    repo = make_repo(
        tmp_path / "user",
        {"app.py": "x = 1\n", "docs/guide.md": "# guide\n", "run.sh": "#!/bin/sh\necho hi\n"},
    )
    (repo / "run.sh").chmod(0o755)
    (repo / "link.py").symlink_to("app.py")
    write_files(repo, {"app.py": "x = 2  # dirty\n", "extra.txt": "untracked\n"})
    return repo


@pytest.fixture
def snapshot(cache_env: Path, user_repo: Path) -> Snapshot:
    return take_snapshot(user_repo, run_id="run1")


def in_sandbox(checkout: Checkout, script: str) -> subprocess.CompletedProcess[str]:
    """Run bash in bubblewrap: read-only root, only the checkout (and a private /tmp)
    writable; the object dirs the checkout borrows are bound read-only because
    `--tmpfs /tmp` hides tmp_path."""
    args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for objects in checkout.snapshot.object_dirs:
        args += ["--ro-bind", str(objects), str(objects)]
    args += ["--bind", str(checkout.path), str(checkout.path)]
    args += ["--unshare-net", "--unshare-pid", "--new-session", "--die-with-parent"]
    args += ["--cap-drop", "ALL", "--chdir", str(checkout.path), "bash", "-c", script]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_checkout_holds_the_snapshot(snapshot: Snapshot):
    checkout = create_checkout(snapshot, "s0")

    files = worktree_files(checkout.path)
    assert sorted(files) == sorted(snapshot.files())
    assert all(files[name] == snapshot.read_file(name) for name in files)
    assert files["app.py"] == b"x = 2  # dirty\n"
    assert os.access(checkout.path / "run.sh", os.X_OK)
    assert os.readlink(checkout.path / "link.py") == "app.py"
    assert git(checkout.path, "rev-parse", "HEAD").strip() == snapshot.commit
    assert git(checkout.path, "status", "--porcelain") == ""
    assert checkout.diff() == ""
    assert checkout.changed_files() == []


@needs_bwrap
def test_git_works_inside_the_sandbox_and_diff_sees_through_commits(
    snapshot: Snapshot, user_repo: Path
):
    checkout = create_checkout(snapshot, "s0")
    user_before = tree_state(user_repo)
    script = f"""set -e
    echo 'x = 3  # fixed' > app.py
    mkdir -p pkg && echo 'NEW = 1' > pkg/new.py
    printf '\\000\\001\\002binary\\377' > data.bin
    git status --porcelain
    git diff --stat
    git add -A
    git stash -q
    test "$(cat app.py)" = 'x = 2  # dirty'
    git stash pop -q
    git add -A
    git commit -q -m 'agent commit'
    git log --format=%s -n 2
    for d in {" ".join(str(d) for d in snapshot.object_dirs)}; do
        if touch "$d/probe" 2>/dev/null; then echo "$d WRITABLE"; fi
    done
    """
    proc = in_sandbox(checkout, script)

    assert proc.returncode == 0, proc.stderr
    assert "agent commit\nkat-lsp snapshot" in proc.stdout
    assert "WRITABLE" not in proc.stdout
    assert len(snapshot.object_dirs) == 2  # the snapshot's and the user's
    patch = checkout.diff()
    assert "-x = 2  # dirty\n+x = 3  # fixed\n" in patch
    assert "+++ b/pkg/new.py" in patch
    assert "diff --git a/data.bin b/data.bin" in patch and "GIT binary patch" in patch
    assert checkout.changed_files() == ["app.py", "data.bin", "pkg/new.py"]
    # The patch rebuilds the sample's tree on a fresh checkout of the snapshot.
    fresh = create_checkout(snapshot, "s1")
    apply_patch(fresh.path, patch)
    assert worktree_files(fresh.path) == worktree_files(checkout.path)
    assert tree_state(user_repo) == user_before


def test_diff_follows_the_working_tree_not_commits_or_stashes(snapshot: Snapshot):
    checkout = create_checkout(snapshot, "s0")
    (checkout.path / "app.py").write_text("x = 99\n")
    git(checkout.path, "commit", "-qam", "change")
    git(checkout.path, "revert", "--no-edit", "HEAD")
    assert checkout.diff() == ""

    (checkout.path / "docs" / "guide.md").write_text("# stashed\n")
    git(checkout.path, "stash", "-q")
    assert checkout.diff() == ""

    (checkout.path / "docs" / "guide.md").unlink()
    assert checkout.changed_files() == ["docs/guide.md"]
    assert "deleted file mode 100644" in checkout.diff()


def test_diff_never_touches_the_user_repository(snapshot: Snapshot, user_repo: Path):
    """Restoring the committed version writes a blob the user's repo already has."""
    before = tree_state(user_repo)
    checkout = create_checkout(snapshot, "s0")
    (checkout.path / "app.py").write_text("x = 1\n")

    assert "-x = 2  # dirty\n+x = 1\n" in checkout.diff()
    assert tree_state(user_repo) == before


def test_diff_ignores_commands_planted_in_the_checkout_config(snapshot: Snapshot, tmp_path: Path):
    checkout = create_checkout(snapshot, "s0")
    marker = tmp_path / "planted-command-ran"
    with open(checkout.path / ".git" / "config", "a") as config:
        config.write(f'[core]\n\tfsmonitor = "touch {marker}"\n')
        config.write(f'[filter "evil"]\n\tclean = "touch {marker}; cat"\n')
    (checkout.path / ".gitattributes").write_text("* filter=evil\n")
    (checkout.path / "app.py").write_text("x = 5\n")

    assert "+x = 5" in checkout.diff()
    assert not marker.exists()


def test_checkouts_are_independent_and_can_be_made_concurrently(snapshot: Snapshot):
    with ThreadPoolExecutor(4) as pool:
        checkouts = list(pool.map(lambda i: create_checkout(snapshot, f"s{i}"), range(4)))

    expected = worktree_files(checkouts[0].path)
    assert all(worktree_files(c.path) == expected for c in checkouts)
    (checkouts[0].path / "app.py").write_text("x = 'only in s0'\n")
    git(checkouts[1].path, "commit", "-q", "--allow-empty", "-m", "only in s1")
    assert checkouts[0].changed_files() == ["app.py"]
    assert [c.diff() for c in checkouts[1:]] == ["", "", ""]
    assert git(checkouts[2].path, "log", "--format=%s", "-n1").startswith("kat-lsp snapshot")


def test_bad_names_and_duplicates_are_refused(snapshot: Snapshot):
    create_checkout(snapshot, "s0")
    with pytest.raises(WorkspaceError, match="already exists"):
        create_checkout(snapshot, "s0")
    with pytest.raises(ValueError, match="invalid checkout name"):
        create_checkout(snapshot, "../s1")


def test_removal_leaves_nothing(cache_env: Path, snapshot: Snapshot):
    first = create_checkout(snapshot, "s0")
    create_checkout(snapshot, "s1")
    (first.path / "new.txt").write_text("x\n")
    first.diff()

    first.remove()
    assert not first.path.exists() and not first.base_index.exists()
    remove_run_checkouts(snapshot.run_id)
    snapshot.remove()
    assert [p for p in cache_env.rglob("*") if "run1" in str(p)] == []


def test_prune_stale_removes_dead_runs_and_keeps_live_ones(cache_env: Path, user_repo: Path):
    live = take_snapshot(user_repo, run_id="live")
    create_checkout(live, "s0")
    dead = take_snapshot(user_repo, run_id="dead")
    create_checkout(dead, "s0")
    finished = subprocess.Popen(["true"])
    finished.wait()
    for kind in ("snapshots", "checkouts"):
        (cache_env / kind / "dead" / OWNER_FILE).write_text(f"{finished.pid}\n")
    recycled = cache_env / "checkouts" / "recycled"  # our pid, another process's start time
    recycled.mkdir()
    (recycled / OWNER_FILE).write_text(f"{os.getpid()}\n1\n")
    orphan_old, orphan_new = cache_env / "checkouts" / "old", cache_env / "checkouts" / "new"
    orphan_old.mkdir()
    orphan_new.mkdir()
    os.utime(orphan_old, (0, 0))

    removed = prune_stale(max_age=300)

    assert sorted(p.relative_to(cache_env).as_posix() for p in removed) == [
        "checkouts/dead", "checkouts/old", "checkouts/recycled", "snapshots/dead",
    ]  # fmt: skip
    assert (cache_env / "checkouts" / "live" / "s0" / "app.py").exists()
    assert live.read_file("app.py") == b"x = 2  # dirty\n"
    assert orphan_new.exists()
