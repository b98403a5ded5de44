"""Sample checkouts and test trees: their content, git inside a real bubblewrap sandbox,
the candidate diff read from hashed blobs, host git that runs nothing a tree planted,
trees git cannot read, test-tree reset, independence, removal and pruning."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kat_lsp.workspace import (
    Checkout,
    Snapshot,
    WorkspaceError,
    apply_patch,
    checkouts,
    create_checkout,
    prune_stale,
    remove_run_checkouts,
    take_snapshot,
    testtree,
)
from kat_lsp.workspace.checkouts import MAX_DEDUP_BYTES
from kat_lsp.workspace.rundirs import OWNER_FILE, remove_tree
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


def test_changes_come_from_hashed_blobs_never_from_following_paths(
    snapshot: Snapshot, tmp_path: Path
):
    """A symlink to a secret, to a FIFO, or to a huge file: the host reads what git
    hashed (a symlink's target text), so it neither leaks, hangs nor bloats."""
    checkout = create_checkout(snapshot, "s0")
    secret = tmp_path / "id_rsa"
    secret.write_text("SECRET-KEY\n")
    os.mkfifo(tmp_path / "fifo")
    (checkout.path / "key").symlink_to(secret)
    (checkout.path / "pipe").symlink_to(tmp_path / "fifo")
    os.mkfifo(checkout.path / "fifo-in-tree")
    (checkout.path / "app.py").write_text("x = 3\n")
    big = os.urandom(MAX_DEDUP_BYTES + 1)
    (checkout.path / "big.bin").write_bytes(big)
    (checkout.path / "docs" / "guide.md").unlink()

    changes = checkout.changes()

    assert changes.files["key"] == str(secret).encode()
    assert changes.files["pipe"] == str(tmp_path / "fifo").encode()
    assert changes.files["app.py"] == b"x = 3\n"
    assert changes.files["docs/guide.md"] is None
    assert changes.files["big.bin"].startswith(b"object ") and len(changes.files["big.bin"]) < 100
    assert "fifo-in-tree" not in changes.files
    assert "SECRET-KEY" not in changes.patch
    assert changes.patch == checkout.diff()


def test_a_tree_git_cannot_stage_raises_a_workspace_error(
    snapshot: Snapshot, monkeypatch: pytest.MonkeyPatch
):
    """`.GIT/x` (a path git refuses), more new content than a candidate may hold, and a
    nested repository whose HEAD is a FIFO (git would block on it forever) end with
    WorkspaceError, within the tree timeout."""
    refused = create_checkout(snapshot, "s0")
    (refused.path / ".GIT").mkdir()
    (refused.path / ".GIT" / "x").write_text("x\n")
    with pytest.raises(WorkspaceError, match=r"\.GIT/x"):
        refused.changes()

    bloated = create_checkout(snapshot, "s2")
    monkeypatch.setattr(checkouts, "MAX_CHANGED_BYTES", 1000)
    (bloated.path / "big.bin").write_bytes(b"x" * 1001)
    with pytest.raises(WorkspaceError, match=r"big\.bin"):
        bloated.changes()

    monkeypatch.setattr(checkouts, "TREE_TIMEOUT", 2.0)
    stalled = create_checkout(snapshot, "s1")
    (stalled.path / "sub").mkdir()
    git(stalled.path / "sub", "init", "-q")
    (stalled.path / "sub" / ".git" / "HEAD").unlink()
    os.mkfifo(stalled.path / "sub" / ".git" / "HEAD")
    with pytest.raises(WorkspaceError, match="timed out"):
        stalled.changes()


def test_nested_repository_and_attributes_run_nothing_on_the_host(
    snapshot: Snapshot, tmp_path: Path
):
    """A nested repository with fsmonitor/hooks/worktree settings, and attributes
    naming filter and diff drivers defined in the checkout's config: staging and
    diffing the tree run none of them."""
    checkout = create_checkout(snapshot, "s0")
    marker = tmp_path / "PWNED"
    evil = f"touch {marker}; cat"
    sub = checkout.path / "sub"
    sub.mkdir()
    git(sub, "init", "-q")
    (sub / "f.txt").write_text("nested\n")
    git(sub, "add", "f.txt")
    git(sub, "commit", "-qm", "nested")
    for config in (sub / ".git" / "config", checkout.path / ".git" / "config"):
        with open(config, "a") as out:
            out.write(f'[core]\n\tfsmonitor = "{evil}"\n\thooksPath = hooks\n')
            out.write(f'[filter "x"]\n\tclean = "{evil}"\n\tsmudge = "{evil}"\n')
            out.write(f'[diff "x"]\n\ttextconv = "{evil}"\n\tcommand = "{evil}"\n')
    for hooks in (sub / "hooks", checkout.path / "hooks"):
        hooks.mkdir()
        for name in ("post-checkout", "pre-commit", "reference-transaction", "post-index-change"):
            (hooks / name).write_text(f"#!/bin/sh\ntouch {marker}\n")
            (hooks / name).chmod(0o755)
    (checkout.path / ".gitattributes").write_text("* filter=x diff=x\n")
    (checkout.path / "app.py").write_text("x = 4\n")

    changes = checkout.changes()

    assert "+x = 4" in changes.patch and "Subproject commit" in changes.patch
    assert changes.files["sub"] == f"object {git(sub, 'rev-parse', 'HEAD').strip()}\n".encode()
    assert not marker.exists()


def test_test_tree_keeps_its_git_dir_outside_and_restores_everything(snapshot: Snapshot):
    """A test tree has no `.git` inside; restore() removes what a test left (ignored
    files, a nested repository whose HEAD is a FIFO, a planted `.git`, `.GIT/x`,
    read-only and chmod 000 folders, a symlink in place of a tracked folder, never
    following it) and rewrites tracked files."""
    tree = create_checkout(snapshot, "exec-c0", inner_git=False)
    assert not (tree.path / ".git").exists() and tree.git_dir.is_dir()
    assert not tree.git_dir.is_relative_to(tree.path)
    (tree.path / "app.py").write_text("x = 5  # candidate\n")
    base = testtree.record_tree(tree)
    expected = worktree_files(tree.path)

    (tree.path / "app.py").write_text("x = 6  # test scribbled\n")
    (tree.path / "run.sh").unlink()
    (tree.path / ".gitignore").write_text("*.log\n")
    (tree.path / "out.log").write_text("ignored\n")
    (tree.path / "nested").mkdir()
    git(tree.path / "nested", "init", "-q")
    os.mkfifo(tree.path / "nested" / ".git" / "HEAD.fifo")
    (tree.path / "nested" / ".git" / "HEAD").unlink()
    (tree.path / "nested" / ".git" / "HEAD.fifo").rename(tree.path / "nested" / ".git" / "HEAD")
    (tree.path / ".git").mkdir()
    (tree.path / ".git" / "config").write_text('[core]\n\tfsmonitor = "false"\n')
    (tree.path / ".GIT").mkdir()
    (tree.path / ".GIT" / "x").write_text("x\n")
    outside = tree.path.parent / "outside-docs"
    outside.mkdir()
    (outside / "keep.md").write_text("keep\n")
    shutil.rmtree(tree.path / "docs")
    (tree.path / "docs").symlink_to(outside)
    locked = tree.path / "locked" / "deep"
    locked.mkdir(parents=True)
    (locked / "f").write_text("x\n")
    locked.chmod(0o000)
    (tree.path / "locked").chmod(0o555)

    testtree.restore(tree, base)

    assert worktree_files(tree.path) == expected
    assert (outside / "keep.md").read_text() == "keep\n"
    assert sorted(p.name for p in tree.path.iterdir()) == sorted(
        {Path(p).parts[0] for p in expected}
    )
    tree.remove()
    assert not tree.path.exists() and not tree.git_dir.exists()


def _hostile_tree(doomed: Path, outside: Path) -> None:
    """What a sample can leave: a symlink out, chmod 000 and read-only folders, and
    folders nested 3,000 deep (Python's recursive rmtree dies of RecursionError)."""
    (doomed / "a").mkdir(parents=True)
    (doomed / "a" / "link").symlink_to(outside)
    (doomed / "a" / "f").write_text("x\n")
    fd = os.open(doomed, os.O_RDONLY)
    for _ in range(3000):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    (doomed / "a").chmod(0o000)
    doomed.chmod(0o555)


def test_remove_tree_stays_inside_the_cache_and_never_follows_symlinks(
    cache_env: Path, tmp_path: Path
):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep\n")
    outside.chmod(0o555)
    doomed = cache_env / "checkouts" / "r" / "s0"
    _hostile_tree(doomed, outside)

    remove_tree(doomed)

    assert not doomed.exists() and (outside / "keep").read_text() == "keep\n"
    assert outside.stat().st_mode & 0o777 == 0o555  # never chmod-ed through the link
    with pytest.raises(ValueError, match="not inside"):
        remove_tree(outside)
    assert outside.exists()


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or not Path("/usr/bin/python3").exists(),
    reason="needs root to switch to an unprivileged user (root ignores permissions)",
)
def test_remove_tree_copes_with_permissions_as_an_unprivileged_user():
    """As a normal user (root bypasses permissions), chmod 000 and read-only folders
    are made writable through their own fds and removed."""
    base = Path(tempfile.mkdtemp(prefix="kat-perm-", dir="/tmp"))
    base.chmod(0o755)
    cache = base / "cache"
    doomed = cache / "checkouts" / "r" / "s0"
    outside = base / "outside"
    outside.mkdir()
    _hostile_tree(doomed, outside)
    subprocess.run(["chown", "-R", "nobody", str(cache), str(outside)], check=True)
    script = (
        "import importlib.util, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "spec = importlib.util.spec_from_file_location('rd', sys.argv[2]);"
        "rd = importlib.util.module_from_spec(spec); spec.loader.exec_module(rd);"
        "rd.remove_tree(Path(sys.argv[3]))"
    )
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
         "-c", script, str(root), str(root / "kat_lsp/workspace/rundirs.py"), str(doomed)],
        env={"KAT_CACHE_DIR": str(cache), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    removed, kept = not doomed.exists(), outside.is_dir()
    subprocess.run(["rm", "-rf", str(base)], check=True)
    assert proc.returncode == 0, proc.stderr
    assert removed and kept


def test_test_tree_keeps_a_submodule_folder_empty_across_resets(cache_env: Path, tmp_path: Path):
    """A gitlink of the snapshot stays an empty folder: what a test puts into it goes,
    the folder stays, and the next reset finds the tree clean."""
    repo = make_repo(tmp_path / "user", {"app.py": "x = 1\n"})
    make_repo(repo / "sub", {"n.txt": "nested\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "submodule")
    tree = create_checkout(take_snapshot(repo, run_id="run1"), "exec-c0", inner_git=False)
    base = testtree.record_tree(tree)

    for _ in range(2):
        (tree.path / "sub" / "x").write_text("left by a test\n")
        testtree.restore(tree, base)
        assert sorted(os.listdir(tree.path)) == ["app.py", "sub"]
        assert os.listdir(tree.path / "sub") == []
