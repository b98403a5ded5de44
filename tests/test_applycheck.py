"""Reviewing a patch before `--apply`: which paths it touches, what is refused (symlinks
out of the repository or into .git, paths into .git or out of the root), what is flagged
(files that run code or configure tools). Patches are made by real git where git can
make them, and by hand where only an attacker would write them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kat_lsp.workspace.applycheck import review_patch


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "mod.py").write_text("x = 1\n")
    (repo / "data.bin").write_bytes(b"\0\1\2")
    (repo / "old.txt").write_text("old\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "i")
    return repo


def diff_of(repo: Path, change) -> str:
    """The git diff of `change(repo)`, then the repo is put back as it was."""
    change(repo)
    git(repo, "add", "-A")
    patch = git(repo, "diff", "--cached", "-M", "--binary")
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-qfdx")
    return patch


def symlink(name: str, target: str):
    def change(repo: Path) -> None:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, repo / name)

    return change


def write(name: str, text: str = "x\n"):
    def change(repo: Path) -> None:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)

    return change


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        (symlink("passwd", "/etc/passwd"), "passwd", "leaves the repository"),
        (symlink("key", "../../.ssh/id_rsa"), "key", "leaves the repository"),
        (symlink("pkg/up", "../.."), "pkg/up", "leaves the repository"),
        (symlink("home", "/root"), "home", "leaves the repository"),
        (symlink("cfg", ".git/config"), "cfg", "into .git"),
        (symlink("pkg/hooks", "../.GIT/hooks"), "pkg/hooks", "into .git"),
    ],
)
def test_symlinks_leaving_the_repository_are_refused(repo, change, path, reason) -> None:
    review = review_patch(diff_of(repo, change), repo)
    assert [p for p, _ in review.refused] == [path]
    assert reason in review.refused[0][1]
    assert review.files == [path]


def test_a_symlink_inside_the_repository_is_fine(repo) -> None:
    review = review_patch(diff_of(repo, symlink("pkg/alias.py", "mod.py")), repo)
    assert (review.files, review.refused, review.flagged) == (["pkg/alias.py"], [], [])


def test_a_symlink_through_another_new_symlink_is_refused(repo) -> None:
    """`pkg/l1 -> ..` is inside, but `l2 -> pkg/l1/..` walks out through it."""

    def change(r: Path) -> None:
        symlink("pkg/l1", "..")(r)
        symlink("l2", "pkg/l1/..")(r)

    review = review_patch(diff_of(repo, change), repo)
    assert [p for p, _ in review.refused] == ["l2"]
    assert "through the symlink pkg/l1" in review.refused[0][1]


def test_retargeting_an_existing_symlink_is_checked(repo) -> None:
    symlink("pkg/link", "mod.py")(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "link")

    def change(r: Path) -> None:
        (r / "pkg" / "link").unlink()
        symlink("pkg/link", "/etc/shadow")(r)

    review = review_patch(diff_of(repo, change), repo)
    assert [p for p, _ in review.refused] == ["pkg/link"]


HAND_MADE_INTO_GIT = """diff --git a/{p} b/{p}
new file mode 100755
--- /dev/null
+++ b/{p}
@@ -0,0 +1 @@
+#!/bin/sh
"""


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (".git/hooks/pre-commit", "inside .git"),
        (".GIT/hooks/x", "inside .git"),
        (".Git/config", "inside .git"),
        ("sub/.git/config", "inside .git"),
        (".git./config", "inside .git"),
        ("GIT~1/config", "inside .git"),
        (".g\u200cit/config", "inside .git"),
        ("../outside.sh", "leaves the repository"),
        ("pkg/../../outside.sh", "leaves the repository"),
    ],
)
def test_paths_into_git_or_out_of_the_root_are_refused(repo, path, reason) -> None:
    review = review_patch(HAND_MADE_INTO_GIT.format(p=path), repo)
    assert review.files == [path]
    assert [p for p, r in review.refused if reason in r] == [path], review.refused


def test_absolute_paths_are_refused(repo) -> None:
    patch = "--- /dev/null\n+++ /etc/cron.d/x\n@@ -0,0 +1 @@\n+* * * * * root sh\n"
    review = review_patch(patch, repo)
    assert review.refused and review.refused[0][0].startswith("/etc/cron.d/x")


@pytest.mark.parametrize(
    "path",
    [
        ".vscode/tasks.json",
        ".vscode/settings.json",
        ".vscode/launch.json",
        ".vscode/extensions.json",
        ".VSCode/tasks.json",
        ".idea/workspace.xml",
        ".devcontainer/devcontainer.json",
        ".kat.toml",
        "conftest.py",
        "tests/deep/conftest.py",
        "pyproject.toml",
        "setup.cfg",
        ".pre-commit-config.yaml",
        ".gitattributes",
        ".gitmodules",
        ".github/workflows/ci.yml",
        ".gitlab-ci.yml",
        ".envrc",
        ".env",
        "evil.pth",
        "sitecustomize.py",
        "usercustomize.py",
        ".husky/pre-commit",
        ".githooks/pre-push",
        "package.json",
        ".npmrc",
        ".pypirc",
        ".cargo/config.toml",
    ],
)
def test_files_that_run_code_or_configure_tools_are_flagged(repo, path) -> None:
    review = review_patch(diff_of(repo, write(path, "{}\n")), repo)
    assert [p for p, _ in review.flagged] == [path]
    assert review.refused == []


@pytest.mark.parametrize(
    "path", ["pkg/new.py", "Makefile", ".gitignore", ".editorconfig", "README.md", "docs/env.md"]
)
def test_ordinary_files_are_not_flagged(repo, path) -> None:
    review = review_patch(diff_of(repo, write(path)), repo)
    assert (review.files, review.refused, review.flagged) == ([path], [], [])


def test_quoted_and_unusual_paths_are_listed_as_they_are_on_disk(repo) -> None:
    names = ["tab\there.py", "spa ce.py", "ünï.py", 'quo"te.py', "new\nline.py"]
    patch = diff_of(repo, lambda r: [write(n)(r) for n in names])
    review = review_patch(patch, repo)
    assert sorted(review.files) == sorted(names)
    assert review.refused == review.flagged == []


def test_a_quoted_path_into_git_is_still_refused(repo) -> None:
    """git quotes `\\056` for `.`: the path is read unquoted, as git apply reads it."""
    quoted = '"{side}/\\056git/hooks/pre-commit"'
    patch = (
        f"diff --git {quoted.format(side='a')} {quoted.format(side='b')}\n"
        f"new file mode 100755\n--- /dev/null\n+++ {quoted.format(side='b')}\n"
        "@@ -0,0 +1 @@\n+#!/bin/sh\n"
    )
    review = review_patch(patch, repo)
    assert review.refused[0] == (".git/hooks/pre-commit", "the path is inside .git")


def test_binary_changes_renames_and_deletions_list_every_path(repo) -> None:
    def change(r: Path) -> None:
        (r / "data.bin").write_bytes(b"\0\7\6\5")
        (r / "pkg" / "mod.py").rename(r / "pkg" / "moved.py")
        (r / "old.txt").unlink()

    review = review_patch(diff_of(repo, change), repo)
    assert sorted(review.files) == ["data.bin", "old.txt", "pkg/mod.py", "pkg/moved.py"]
    assert review.refused == review.flagged == []


def test_renaming_into_a_flagged_name_is_flagged(repo) -> None:
    review = review_patch(
        diff_of(repo, lambda r: (r / "pkg" / "mod.py").rename(r / "pkg" / "conftest.py")), repo
    )
    assert [p for p, _ in review.flagged] == ["pkg/conftest.py"]


def test_a_rename_git_reads_differently_is_refused(repo) -> None:
    """The `diff --git` names say "pkg/mod.py is changed" (unidiff's reading); git apply
    follows `rename to` into .git/hooks. A patch read two ways is refused as a whole."""
    patch = (
        "diff --git a/pkg/mod.py b/pkg/mod.py\nsimilarity index 100%\n"
        "rename from pkg/mod.py\nrename to .git/hooks/post-checkout\n"
    )
    review = review_patch(patch, repo)
    assert review.files == ["pkg/mod.py"]
    assert [p for p, _ in review.refused] == ["(patch)"]
    assert ".git/hooks/post-checkout" in review.refused[0][1]


def test_unreadable_patch_is_refused(repo) -> None:
    review = review_patch("@@ -1 +1 @@\n-a\n+b\n", repo)
    assert review.refused


def test_empty_patch_touches_nothing(repo) -> None:
    review = review_patch("", repo)
    assert (review.files, review.refused, review.flagged) == ([], [], [])


def test_writing_through_a_symlink_already_in_the_folder_is_refused(repo, tmp_path) -> None:
    """The user's folder (not the patch) holds `docs -> outside` and a dangling
    `new.py -> outside/new.py`: creating docs/x.py or new.py would write outside."""
    patch = diff_of(repo, write("docs/x.py")) + diff_of(repo, write("new.py"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "docs").symlink_to(outside)
    (repo / "new.py").symlink_to(outside / "new.py")
    review = review_patch(patch, repo)
    assert dict(review.refused) == {
        "docs/x.py": "the path goes through the symlink docs in the folder",
        "new.py": "a symlink in the folder: the new file would be written through it",
    }
