"""Reviewing a patch before it is applied to the user's own tree.

A candidate patch is the model's work: `review_patch` lists every path it touches and
sorts out what must never be applied (`refused`: symlinks leaving the repository or
into `.git`, paths into `.git` in any spelling, paths leaving the root or going through
a symlink already in the folder, submodule entries, a patch git would read differently) from what is applied only when the user
asks for it after reading the patch (`flagged`: files that run code when an editor,
a test runner, a shell or CI opens them, or configure such tools). The rules and the
reasons for each flagged name are in docs/reference/cli.md (`--apply`).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import unidiff

from kat_lsp.workspace.git import init_git_dir, run_git
from kat_lsp.workspace.patches import _strip_side

SYMLINK, GITLINK = "120000", "160000"
_IGNORABLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")
_EDITOR = "an editor runs or loads it when the folder is opened"
_CI = "CI runs it on the next push"
_HOOKS = "git hooks: they run on commit or push"
_TOOLS = "configures tools that run code (build backend, test plugins, [tool.kat])"
_PACKAGES = "package manager settings or scripts (registries, install scripts)"
FLAGGED_DIRS = {
    ".vscode": _EDITOR,
    ".idea": _EDITOR,
    ".devcontainer": "the dev container runs its commands on create",
    ".zed": _EDITOR,
    ".fleet": _EDITOR,
    ".helix": _EDITOR,
    ".github/workflows": _CI,
    ".github/actions": _CI,
    ".circleci": _CI,
    ".buildkite": _CI,
    ".husky": _HOOKS,
    ".githooks": _HOOKS,
}
"""Folders (at any depth) whose every file is flagged."""
FLAGGED_NAMES = {
    ".kat.toml": "kat-lsp's own settings for this repository",
    "conftest.py": "pytest runs it on every test run",
    "sitecustomize.py": "Python runs it at every start",
    "usercustomize.py": "Python runs it at every start",
    ".gitattributes": "git attributes choose filters and diff drivers",
    ".gitmodules": "submodule URLs git fetches",
    ".envrc": "direnv runs it when a shell enters the folder",
    ".env": "tools load it into their environment",
    ".exrc": _EDITOR,
    ".nvimrc": _EDITOR,
    ".nvim.lua": _EDITOR,
    ".dir-locals.el": _EDITOR,
    ".dir-locals-2.el": _EDITOR,
    ".gitlab-ci.yml": _CI,
    ".travis.yml": _CI,
    "azure-pipelines.yml": _CI,
    "bitbucket-pipelines.yml": _CI,
    "jenkinsfile": _CI,
    ".pre-commit-config.yaml": _HOOKS,
    "lefthook.yml": _HOOKS,
    ".lefthook.yml": _HOOKS,
    "pyproject.toml": _TOOLS,
    "setup.cfg": _TOOLS,
    "tox.ini": _TOOLS,
    "pytest.ini": _TOOLS,
    ".mise.toml": "mise runs its hooks and tasks when a shell enters the folder",
    "mise.toml": "mise runs its hooks and tasks when a shell enters the folder",
    "package.json": _PACKAGES,
    ".npmrc": _PACKAGES,
    ".yarnrc": _PACKAGES,
    ".yarnrc.yml": _PACKAGES,
    ".pypirc": _PACKAGES,
    "pip.conf": _PACKAGES,
}
"""File names (at any depth, any case) that are flagged."""


@dataclass
class PatchReview:
    files: list[str] = field(default_factory=list)
    """Every path the patch touches (both sides of a rename), in patch order."""
    refused: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason): never applied."""
    flagged: list[tuple[str, str]] = field(default_factory=list)
    """(path, why): applied only when the user asks for it explicitly."""


def _parts(path: str) -> list[str]:
    return [p for p in re.split(r"[/\\]", path) if p]


def _is_git_dir_name(part: str) -> bool:
    """`.git` as git itself fears it on any file system: any case, trailing dots or
    spaces (NTFS), ignorable code points (HFS+), 8.3 short names (`GIT~1`)."""
    name = _IGNORABLE.sub("", part).rstrip(". ").casefold()
    return name == ".git" or re.fullmatch(r"git~\d+", name) is not None


def path_problem(path: str) -> str | None:
    """Why a path the patch writes cannot be applied, or None."""
    if not path or path.startswith("/") or "\0" in path:
        return "the path is absolute or empty"
    parts = _parts(path)
    if any(p in (".", "..") for p in parts):
        return "the path leaves the repository"
    if any(_is_git_dir_name(p) for p in parts):
        return "the path is inside .git"
    return None


def flag_reason(path: str) -> str | None:
    """Why a path is flagged (it runs code or configures tools), or None."""
    lowered = "/".join(_parts(path)).casefold()
    name = lowered.rsplit("/", 1)[-1]
    if name in FLAGGED_NAMES:
        return FLAGGED_NAMES[name]
    if name.endswith(".pth"):
        return "Python runs its import lines at every start"
    if re.search(r"(^|/)\.cargo/config(\.toml)?$", lowered):
        return "cargo runs the programs it names (rustc-wrapper, runners)"
    for folder, why in FLAGGED_DIRS.items():
        if re.search(rf"(^|/){re.escape(folder)}/", lowered):
            return why
    return None


def _modes(patched: unidiff.PatchedFile) -> tuple[str | None, str | None]:
    """(old mode, new mode) from the git header lines, as git apply reads them."""
    old = new = index = None
    for line in patched.patch_info or []:
        words = str(line).split()
        if line.startswith(("old mode ", "deleted file mode ")):
            old = words[-1]
        elif line.startswith(("new mode ", "new file mode ")):
            new = words[-1]
        elif line.startswith("index ") and len(words) == 3:
            index = words[2]
    return old or index, new or index


def _link_target(patched: unidiff.PatchedFile) -> str | None:
    """What a symlink entry points at: its post-image, which is one line."""
    lines = [line.value for hunk in patched for line in hunk if line.line_type in "+ "]
    if patched.is_binary_file or len(lines) != 1:
        return None
    return lines[0].removesuffix("\n")


def link_problem(link: str, target: str, root: Path, links: set[str]) -> str | None:
    """Why a symlink at `link` (repository path) pointing at `target` cannot be applied.

    The target is walked lexically from the link's folder; stepping out of the
    repository, into `.git`, or through another symlink (of the patch or on disk,
    which could make `..` go anywhere) refuses it."""
    if not target or target.startswith("/"):
        return f"a symlink to {target!r}: it leaves the repository"
    stack = _parts(link)[:-1]
    for part in _parts(target):
        if part == "..":
            if not stack:
                return f"a symlink to {target!r}: it leaves the repository"
            stack.pop()
        elif part != ".":
            stack.append(part)
            if _is_git_dir_name(part):
                return f"a symlink to {target!r}: it points into .git"
            prefix = "/".join(stack)
            if prefix in links or os.path.islink(root / prefix):
                return f"a symlink to {target!r}: it goes through the symlink {prefix}"
    return None


def disk_problem(path: str, root: Path, creates: bool) -> str | None:
    """Why writing `path` would go through a symlink already in the folder: a parent that
    is one (git apply refuses that; an editor's edit would follow it), or a new file over
    one (the edit would write through it)."""
    parts = _parts(path)
    for depth in range(1, len(parts)):
        prefix = "/".join(parts[:depth])
        if os.path.islink(root / prefix):
            return f"the path goes through the symlink {prefix} in the folder"
    if creates and os.path.islink(root / path):
        return "a symlink in the folder: the new file would be written through it"
    return None


def _git_paths(patch: str) -> set[str] | None:
    """The paths `git apply` itself would write (None when git cannot read the patch)."""
    with tempfile.TemporaryDirectory(prefix="kat-review-") as empty:
        git_dir = Path(empty) / "git"
        init_git_dir(git_dir, bare=True, object_format="sha1", config={})
        env = {"GIT_DIR": str(git_dir), "GIT_WORK_TREE": empty}
        data = patch.encode(errors="surrogateescape")
        proc = run_git(
            ["apply", "--numstat", "-z", "-"], cwd=Path(empty), env=env, input=data, check=False
        )
    if proc.returncode != 0:
        return None
    records = proc.stdout.decode(errors="surrogateescape").split("\0")
    return {r.split("\t", 2)[2] for r in records if r.count("\t") >= 2}


def review_patch(patch: str, root: Path) -> PatchReview:
    """Review `patch` (a git diff relative to `root`) before it is applied to `root`."""
    review = PatchReview()
    if not patch.strip():
        return review
    try:
        patch_set = unidiff.PatchSet(patch)
    except unidiff.UnidiffParseError as exc:
        review.refused.append(("(patch)", f"the patch cannot be read ({exc})"))
        return review
    written: set[str] = set()
    created: set[str] = set()
    links: dict[str, unidiff.PatchedFile] = {}
    for patched in patch_set:
        sides = [patched.source_file, patched.target_file]
        paths = [_strip_side(s) for s in sides if s != "/dev/null"]
        for path in paths:
            if path not in review.files:
                review.files.append(path)
        written.add(paths[0] if patched.is_removed_file else paths[-1])
        if patched.is_added_file:
            created.add(paths[-1])
        old_mode, new_mode = _modes(patched)
        if GITLINK in (old_mode, new_mode):
            review.refused.append((paths[-1], "a submodule entry; apply it with git by hand"))
        elif not patched.is_removed_file and (
            # without a mode git keeps the kind of what is on disk: a link stays one
            new_mode == SYMLINK or (new_mode is None and os.path.islink(root / paths[-1]))
        ):
            links[paths[-1]] = patched
    for path in review.files:
        if problem := path_problem(path) or disk_problem(path, root, path in created):
            review.refused.append((path, problem))
        elif reason := flag_reason(path):
            review.flagged.append((path, reason))
    for path, patched in links.items():
        target = _link_target(patched)
        if target is None:
            problem = "a symlink whose target is not one line of the patch"
        else:
            problem = link_problem(path, target, root, set(links))
        if problem:
            review.refused.append((path, problem))
    git_paths = _git_paths(patch)
    if git_paths is not None and git_paths != written:
        differ = ", ".join(sorted(git_paths ^ written))
        review.refused.append(("(patch)", f"git reads the patch's paths differently: {differ}"))
    return review
