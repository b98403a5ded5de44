"""apply_patch on real git repositories and plain folders; reading and splitting patches."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kat_lsp.workspace import (
    PatchError,
    apply_patch,
    create_checkout,
    patch_files,
    split_patch_by_file,
    take_snapshot,
)
from tests.gitutil import cache_env, git, make_repo, tree_state, worktree_files, write_files

__all__ = ["cache_env"]

BEFORE: dict[str, str | bytes] = {
    "app.py": "def f():\n    return 1\n",
    "old.txt": "to be deleted\n",
    "img.bin": b"\x89PNG\0\1\2\3",
    "sp ace é.txt": "odd name\n",
}
AFTER: dict[str, str | bytes] = {
    "app.py": "def f():\n    return 2\n",
    "img.bin": b"\x89PNG\0\x09\x09\xff",
    "new/dir/n.py": "N = 1\n",
    "sp ace é.txt": "odd name, changed\n",
    "tab\tname.txt": "quoted by git\n",
}


def make_patch(where: Path, before: dict[str, str | bytes], after: dict[str, str | bytes]) -> str:
    """The `git diff --binary` that turns `before` into `after`, made by real git."""
    repo = make_repo(where, before)
    for name in set(before) - set(after):
        (repo / name).unlink()
    write_files(repo, after)
    git(repo, "add", "-A")
    return git(repo, "-c", "core.quotepath=false", "diff", "--cached", "--binary", "HEAD")


@pytest.fixture
def patch(cache_env: Path, tmp_path: Path) -> str:
    return make_patch(tmp_path / "source", BEFORE, AFTER)


def plain_folder(path: Path, files: dict[str, str | bytes]) -> Path:
    write_files(path, files)
    return path


def as_bytes(files: dict[str, str | bytes]) -> dict[str, bytes]:
    return {k: v if isinstance(v, bytes) else v.encode() for k, v in files.items()}


def test_applies_to_a_git_repo_without_touching_its_index(tmp_path: Path, patch: str):
    repo = make_repo(tmp_path / "user", BEFORE)
    git_before = tree_state(repo / ".git")

    apply_patch(repo, patch)

    assert worktree_files(repo) == as_bytes(AFTER)
    assert tree_state(repo / ".git") == git_before
    assert git(repo, "diff", "--cached") == ""  # nothing staged: the user decides
    status = git(repo, "-c", "core.quotepath=false", "status", "--porcelain")
    assert " D old.txt" in status and " M app.py" in status and "?? new/" in status


def test_applies_to_a_plain_folder(tmp_path: Path, patch: str):
    folder = plain_folder(tmp_path / "plain", BEFORE)

    apply_patch(folder, patch)

    assert worktree_files(folder) == as_bytes(AFTER)
    assert not (folder / ".git").exists()


def test_a_patch_that_no_longer_fits_is_refused_whole(tmp_path: Path, patch: str):
    changed = {**BEFORE, "app.py": "def f():\n    return 'edited by the user'\n"}
    folder = plain_folder(tmp_path / "plain", changed)
    (folder / "new" / "dir").mkdir(parents=True)
    (folder / "new" / "dir" / "n.py").write_text("already here\n")
    (folder / "old.txt").unlink()
    before = tree_state(folder)

    with pytest.raises(PatchError) as caught:
        apply_patch(folder, patch)

    message = str(caught.value)
    assert "app.py: the hunk at line 1 no longer matches" in message
    assert "new/dir/n.py: it already exists" in message
    assert "old.txt: it no longer exists" in message
    assert "re-run the fix" in message
    assert set(caught.value.problems) == {"app.py", "new/dir/n.py", "old.txt"}
    assert tree_state(folder) == before  # all or nothing: the fitting files are untouched


def test_check_only_changes_nothing(tmp_path: Path, patch: str):
    folder = plain_folder(tmp_path / "plain", BEFORE)
    before = tree_state(folder)

    apply_patch(folder, patch, check_only=True)
    assert tree_state(folder) == before

    (folder / "img.bin").write_bytes(b"changed by the user")
    with pytest.raises(PatchError, match=r"img\.bin: its content changed"):
        apply_patch(folder, patch, check_only=True)


def test_unreadable_and_escaping_patches(tmp_path: Path, patch: str):
    folder = plain_folder(tmp_path / "plain", BEFORE)
    with pytest.raises(PatchError, match="not a valid git diff"):
        apply_patch(folder, "this is not a diff\n")
    victim = tmp_path / "app.py"
    victim.write_text(str(BEFORE["app.py"]))
    escaping = patch.replace("a/app.py", "a/../app.py").replace("b/app.py", "b/../app.py")
    with pytest.raises(PatchError, match=r"\.\./app\.py: the path leaves the folder"):
        apply_patch(folder, escaping)
    assert victim.read_text() == BEFORE["app.py"]
    with pytest.raises(PatchError, match="is not a folder"):
        apply_patch(folder / "missing", patch)
    apply_patch(folder, "")
    assert worktree_files(folder) == as_bytes(BEFORE)


def test_patch_files_names_every_touched_path(patch: str):
    assert sorted(patch_files(patch)) == sorted(set(BEFORE) | set(AFTER))


def test_split_patch_pieces_apply_one_by_one(tmp_path: Path, patch: str):
    pieces = split_patch_by_file(patch)

    assert sorted(pieces) == sorted(set(BEFORE) | set(AFTER))
    assert "".join(pieces.values()) == patch
    for number, (name, piece) in enumerate(pieces.items()):
        folder = plain_folder(tmp_path / f"p{number}", BEFORE)
        apply_patch(folder, piece)
        changed = {k for k, v in worktree_files(folder).items() if as_bytes(BEFORE).get(k) != v}
        removed = set(BEFORE) - set(worktree_files(folder))
        assert changed | removed == {name}
        shutil.rmtree(folder)


def test_split_plain_unified_diffs():
    text = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n--- y.py\n+++ y.py\n@@ -1 +1 @@\n-c\n+d\n"
    pieces = split_patch_by_file(text)
    assert list(pieces) == ["x.py", "y.py"]
    assert "+d" in pieces["y.py"] and "+b" not in pieces["y.py"]


def test_a_candidate_from_a_subfolder_checkout_applies_to_the_users_folder(
    cache_env: Path, tmp_path: Path
):
    repo = make_repo(tmp_path / "mono", {"pkg/calc.py": "def add(a, b):\n    return a - b\n"})
    (repo / "pkg" / "notes.txt").write_text("untracked, unsaved in the editor\n")
    snapshot = take_snapshot(repo / "pkg", run_id="sub")
    checkout = create_checkout(snapshot, "s0")
    (checkout.path / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (checkout.path / "test_calc.py").write_text("assert __import__('calc').add(1, 2) == 3\n")
    git_before = tree_state(repo / ".git")

    apply_patch(repo / "pkg", checkout.diff())

    assert (repo / "pkg" / "calc.py").read_text().endswith("return a + b\n")
    assert (repo / "pkg" / "test_calc.py").exists()
    assert tree_state(repo / ".git") == git_before


def test_apply_runs_no_filter_a_target_names(cache_env: Path, tmp_path: Path):
    """The target's `.gitattributes` names a filter driver that a config defines (here the
    global one): `git apply` would run its clean command on the host to read the
    preimage. apply_patch runs git without global config, so nothing runs."""
    marker = tmp_path / "PWNED"
    with open(tmp_path / "gitconfig", "a") as config:
        config.write(f'[filter "x"]\n\tclean = "touch {marker}; cat"\n')
    patch = make_patch(tmp_path / "source", BEFORE, AFTER)
    target = plain_folder(tmp_path / "target", {**BEFORE, ".gitattributes": "* filter=x\n"})

    apply_patch(target, patch)

    assert (target / "app.py").read_text() == AFTER["app.py"]
    assert not marker.exists()
