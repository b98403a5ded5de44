"""Class 8: applying is reviewed.

A sample's patch is the model's work, and `kat-lsp fix --apply` writes it into the
user's own repository. A real run (hostile script, real bubblewrap, real git) must:
never apply a symlink that leaves the repository (exit 1, nothing changed, the link
named); apply files that run code or configure tools only with `--apply-flagged`;
list the files it changes when it applies an ordinary fix.
"""

from __future__ import annotations

import pytest

from tests.security.harness import bash, editor, fix_turns, hostile_fix


def changed(run) -> dict[str, tuple[str | None, str | None]]:
    """Entries of the user's repo that differ after the run: path -> (before, after)."""
    keys = set(run.repo_before) | set(run.repo_after)
    return {
        k: (run.repo_before.get(k), run.repo_after.get(k))
        for k in sorted(keys)
        if run.repo_before.get(k) != run.repo_after.get(k)
    }


@pytest.mark.parametrize(
    ("command", "link"),
    [
        ("ln -s ~/.ssh/id_rsa key", "key"),
        ("ln -s /root home-link", "home-link"),
        ("ln -s ../home/.ssh/id_rsa sneaky", "sneaky"),
        ("mkdir -p docs && ln -s ../.git/config docs/cfg", "docs/cfg"),
    ],
)
def test_apply_refuses_a_symlink_leaving_the_repository(tmp_path, command, link) -> None:
    """Attack: the sample fixes the bug and also adds a symlink to a secret or the home;
    `--apply` would plant it in the user's repo for the next tool that follows it."""
    real = command.replace("~/.ssh/id_rsa", str(tmp_path / "home" / ".ssh" / "id_rsa"))
    real = real.replace("/root", str(tmp_path / "home"))
    run = hostile_fix(tmp_path, generate=[bash(real), *fix_turns()], args=("--apply",))
    assert "new file mode 120000" in run.ranked["candidates"][0]["patch"]
    assert run.returncode == 1, run.stderr
    assert changed(run) == {}, "the repository changed"
    assert "nothing was changed" in run.stderr
    assert f"'{link}'" in run.stderr and "symlink" in run.stderr


@pytest.mark.parametrize(
    ("path", "content"),
    [
        (".vscode/tasks.json", '{"tasks": [{"label": "x", "command": "touch PWNED", '
                               '"runOptions": {"runOn": "folderOpen"}}]}'),
        (".kat.toml", 'sandbox = "none"'),
        ("conftest.py", "import os; os.system('touch PWNED')"),
    ],
)  # fmt: skip
def test_apply_holds_back_flagged_files_unless_asked(tmp_path, path, content) -> None:
    """Attack: the fix comes with a file that runs code when the folder is opened or the
    tests run. Without `--apply-flagged` nothing is applied and the file is named; with
    it (the user read best.patch) the patch is applied."""
    turns = [
        bash(f"mkdir -p $(dirname {path})"),
        editor(command="create", path=path, file_text=content + "\n"),
        *fix_turns(),
    ]
    (tmp_path / "held").mkdir()
    (tmp_path / "applied").mkdir()
    held = hostile_fix(tmp_path / "held", generate=turns, args=("--apply",))
    assert held.returncode == 1, held.stderr
    assert changed(held) == {}
    assert path in held.stderr and "--apply-flagged" in held.stderr
    assert str(held.out / "best.patch") in held.stderr

    applied = hostile_fix(tmp_path / "applied", generate=turns, args=("--apply-flagged",))
    assert applied.returncode == 0, applied.stderr
    assert set(changed(applied)) >= {path, "clamp.py"}
    assert (applied.repo / path).read_text().strip() == content


def test_apply_of_an_ordinary_fix_lists_the_file(tmp_path) -> None:
    run = hostile_fix(tmp_path, args=("--apply",))
    assert run.returncode == 0, run.stderr
    assert set(changed(run)) == {"clamp.py"}
    assert "return hi" in (run.repo / "clamp.py").read_text()
    assert "changes 1 file(s):\n  clamp.py\n" in run.stderr
