"""Applying candidate patches to a folder, and reading which files a patch touches.

`git apply` does the work: atomic (every file or none), file creation and deletion,
mode changes, binary patches. It runs with GIT_DIR pointed at an empty throwaway git
dir, so a target that is a git repository has neither its index nor its config read
or written (only its files change), and folders that are not repositories work the
same way. Git runs hardened (git.py): no system or global config, so no filter driver
a target's `.gitattributes` names runs while git reads the files to patch. Used by
`kat-lsp fix --apply` on the user's tree, and by the pipeline to lay test files on top
of a candidate checkout.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import unidiff

from kat_lsp.exceptions import KatError
from kat_lsp.workspace.git import init_git_dir, run_git


class PatchError(KatError):
    """A patch does not apply (or cannot be read). The message names the files."""

    def __init__(self, message: str, problems: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or {}  # file -> what is wrong with it


# git apply's complaints (LC_ALL=C) -> (file, what it means for the user)
_REASONS = (
    (re.compile(r"^error: patch failed: (.+):(\d+)$"), "the hunk at line {1} no longer matches"),
    (re.compile(r"^error: (.+): already exists in working directory$"), "it already exists"),
    (re.compile(r"^error: (.+): No such file or directory$"), "it no longer exists"),
    (re.compile(r"^error: (.+): wrong type$"), "it is no longer the same kind of file"),
    (
        re.compile(r"^error: the patch applies to '(.+)' \(\w+\), which does not match"),
        "its content changed",
    ),
    (
        re.compile(r"^error: affected file '(.+)' is beyond a symbolic link$"),
        "it is behind a symlink",
    ),
    (re.compile(r"^error: invalid path '(.+)'$"), "the path leaves the folder"),
    (re.compile(r"^error: (.+): patch does not apply$"), "the patch does not fit it"),
)
_SHA256_INDEX = re.compile(r"^index [0-9a-f]{64}\.\.", re.MULTILINE)


def apply_patch(target: Path, patch: str, *, check_only: bool = False) -> None:
    """Apply `patch` (a `git diff` of paths relative to `target`) to the files of `target`.

    All or nothing: raises PatchError naming every file that no longer fits and leaves
    `target` unchanged. `check_only` only checks. An empty patch changes nothing."""
    target = Path(target)
    if not target.is_dir():
        raise PatchError(f"cannot apply the patch: {target} is not a folder")
    if not patch.strip():
        return
    data = patch.encode(errors="surrogateescape")
    if not data.endswith(b"\n"):
        data += b"\n"
    fmt = "sha256" if _SHA256_INDEX.search(patch) else "sha1"
    with tempfile.TemporaryDirectory(prefix="kat-apply-") as empty:
        init_git_dir(Path(empty), bare=True, object_format=fmt, config={})
        args = ["apply", "--whitespace=nowarn", *(["--check"] if check_only else []), "-"]
        env = {"GIT_DIR": empty, "GIT_WORK_TREE": str(target.resolve())}
        proc = run_git(args, cwd=target, env=env, input=data, check=False)
    if proc.returncode != 0:
        raise _patch_error(target, proc.stderr.decode(errors="replace"))


def _patch_error(target: Path, stderr: str) -> PatchError:
    problems: dict[str, list[str]] = {}
    other: list[str] = []
    for line in stderr.splitlines():
        for pattern, reason in _REASONS:
            if match := pattern.match(line):
                reasons = problems.setdefault(match.group(1), [])
                if reason != _REASONS[-1][1] or not reasons:
                    reasons.append(reason.format(*match.groups()))
                break
        else:
            if line.startswith(("error:", "fatal:")):
                other.append(line.split(":", 1)[1].strip())
    if not problems:
        detail = "; ".join(other) or stderr.strip() or "git apply failed"
        return PatchError(f"the patch cannot be read ({detail}); it is not a valid git diff")
    listing = "; ".join(f"{path}: {', '.join(reasons)}" for path, reasons in problems.items())
    return PatchError(
        f"the patch no longer applies to {target} ({listing}). The files changed since the "
        "snapshot the patch was made from: nothing was changed; re-run the fix on the "
        "current files, or merge the diff by hand",
        problems,
    )


_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, '"': 34, "\\": 92}


def _unquote(name: str) -> str:
    """Undo git's C-style quoting of a path (`"a/tab\\tname"`, octal UTF-8 bytes)."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            octal = body[i + 1 : i + 4]
            if re.fullmatch(r"[0-3][0-7]{2}", octal):
                out.append(int(octal, 8))
                i += 4
                continue
            out.append(_ESCAPES.get(body[i + 1], ord(body[i + 1])))
            i += 2
            continue
        out += char.encode(errors="surrogateescape")
        i += 1
    return out.decode(errors="surrogateescape")


def _strip_side(name: str) -> str:
    name = _unquote(name)
    return name[2:] if name.startswith(("a/", "b/")) else name


def patch_files(patch: str) -> list[str]:
    """Paths the patch touches (created, changed, deleted), in patch order."""
    try:
        patch_set = unidiff.PatchSet(patch)
    except unidiff.UnidiffParseError as exc:
        raise PatchError(
            f"the patch cannot be read ({exc}); it is not a valid unified diff"
        ) from exc
    paths: list[str] = []
    for patched in patch_set:
        side = patched.source_file if patched.is_removed_file else patched.target_file
        path = _strip_side(side)
        if path not in paths:
            paths.append(path)
    return paths


def split_patch_by_file(patch: str) -> dict[str, str]:
    """One self-contained patch per touched path (git diffs are cut at `diff --git`)."""
    if not re.search(r"^diff --git ", patch, re.MULTILINE):
        return {_strip_side(p.path): str(p) for p in unidiff.PatchSet(patch)}
    chunks: list[list[str]] = []
    for line in patch.splitlines(keepends=True):
        if line.startswith("diff --git ") or not chunks:
            chunks.append([line])
        else:
            chunks[-1].append(line)
    texts = ["".join(c) for c in chunks if c[0].startswith("diff --git ")]
    return {patch_files(text)[0]: text for text in texts}
