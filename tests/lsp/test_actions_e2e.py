"""Code actions, applying candidates and fix-from-diagnostic against the real server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lsprotocol import types

from kat_lsp.model.scripted import ScriptedServer
from tests.lsp.conftest import (
    BUGGY,
    FIX_A,
    _generate,
    command,
    connect,
    fix,
    make_script,
    median_of_even,
)
from tests.lsp.editor import Editor


async def code_actions(
    editor: Editor, path: Path, diagnostics: list[types.Diagnostic] | None = None
) -> list[types.CodeAction]:
    result = await editor.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=editor.uri(path)),
            range=types.Range(
                start=types.Position(line=14, character=0), end=types.Position(line=14, character=0)
            ),
            context=types.CodeActionContext(diagnostics=diagnostics or []),
        )
    )
    return [a for a in result or [] if isinstance(a, types.CodeAction)]


async def test_code_actions_in_rank_order_and_the_preferred_one_fixes_the_bug(
    repo: Path, server_env: dict[str, str]
) -> None:
    stats = repo / "stats.py"
    async with connect(server_env, repo) as editor:
        editor.open(stats)
        result = await fix(editor, samples=3)
        actions = await code_actions(editor, stats)
        assert [a.title for a in actions] == [c["title"] for c in result["candidates"]]
        assert actions[0].title.startswith("KAT #1 · score 9.0 · tests 1/1")
        assert [a.is_preferred for a in actions] == [True, None]
        assert all(a.kind == types.CodeActionKind.QuickFix for a in actions)
        edit = actions[0].edit
        assert edit is not None and edit.document_changes and not edit.changes
        [doc_edit] = edit.document_changes
        assert isinstance(doc_edit, types.TextDocumentEdit) and doc_edit.text_document.version == 1
        assert len(doc_edit.edits) == 1, "one minimal edit, not a whole-file replacement"
        editor.apply(edit)
        assert median_of_even(repo) == "2.5"
        # Applied: the candidates no longer fit the buffer, so no action is enabled.
        after = await code_actions(editor, stats)
        assert all(a.disabled is not None for a in after)


async def test_neovim_profile_gets_a_plain_changes_map_and_apply_candidate_works(
    repo: Path, server_env: dict[str, str]
) -> None:
    stats = repo / "stats.py"
    async with connect(server_env, repo, profile="neovim@v0.7") as editor:
        result = await fix(editor, samples=3)
        editor.open(stats)
        actions = await code_actions(editor, stats)
        assert len(actions) == 2
        edit = actions[1].edit
        assert edit is not None and edit.document_changes is None
        assert list(edit.changes or {}) == [editor.uri(stats)]
        second = result["candidates"][1]
        answer = await command(
            editor,
            "kat.lsp.applyCandidate",
            {"runId": result["runId"], "candidateId": second["id"]},
        )
        assert answer == {"applied": True, "files": ["stats.py"]}
        assert editor.applied and editor.applied[0].changes
    assert median_of_even(repo) == "2.5"
    assert "if len(ordered) % 2:" in stats.read_text()


async def test_a_stale_document_gets_no_action_and_apply_is_refused(
    repo: Path, server_env: dict[str, str]
) -> None:
    stats = repo / "stats.py"
    async with connect(server_env, repo, profile="neovim@v0.7") as editor:
        editor.open(stats)
        result = await fix(editor, samples=3)
        assert len(await code_actions(editor, stats)) == 2
        editor.change(
            stats, stats.read_text().replace(BUGGY, "    return sorted(values)[len(values) // 2]")
        )
        assert await code_actions(editor, stats) == []
        first = result["candidates"][0]
        answer = await command(
            editor, "kat.lsp.applyCandidate", {"runId": result["runId"], "candidateId": first["id"]}
        )
        assert answer["applied"] is False
        assert "changed since the run's snapshot" in answer["message"]
        assert "stats.py" in answer["message"]
        assert editor.applied == []
        assert any("no longer fits" in m.message for m in editor.client.messages)
    assert BUGGY in stats.read_text(), "nothing was written"


async def test_vscode_profile_sees_stale_candidates_disabled_with_a_reason(
    repo: Path, server_env: dict[str, str]
) -> None:
    stats = repo / "stats.py"
    async with connect(server_env, repo) as editor:
        editor.open(stats)
        await fix(editor, samples=3)
        editor.change(
            stats, stats.read_text().replace(BUGGY, "    return sorted(values)[len(values) // 2]")
        )
        actions = await code_actions(editor, stats)
        assert len(actions) == 2
        assert all(a.disabled and "no longer matches" in a.disabled.reason for a in actions)
        assert all(a.edit is None and not a.is_preferred for a in actions)


async def test_rejected_apply_edit_is_reported(repo: Path, server_env: dict[str, str]) -> None:
    async with connect(server_env, repo) as editor:
        result = await fix(editor, samples=3)
        editor.accept = lambda edit: False
        answer = await command(
            editor,
            "kat.lsp.applyCandidate",
            {"runId": result["runId"], "candidateId": result["candidates"][0]["id"]},
        )
    assert answer == {"applied": False, "message": answer["message"]}
    assert "rejected by the user" in answer["message"]
    assert BUGGY in (repo / "stats.py").read_text()


async def test_fix_this_problem_from_a_diagnostic_starts_a_run(
    repo: Path, server_env: dict[str, str], model: ScriptedServer
) -> None:
    stats = repo / "stats.py"
    diagnostic = types.Diagnostic(
        range=types.Range(
            start=types.Position(line=15, character=4), end=types.Position(line=15, character=26)
        ),
        message="median([1, 2, 3, 4]) returned 3, expected 2.5",
        source="pytest",
        code="E-MEDIAN",
    )
    async with connect(server_env, repo, options={"samples": 3}) as editor:
        editor.open(stats)
        assert await code_actions(editor, stats) == []
        [action] = await code_actions(editor, stats, [diagnostic])
        assert action.title == "KAT: fix this problem"
        assert action.command is not None and action.command.command == "kat.lsp.fixIssue"
        [args] = action.command.arguments or []
        issue = args["issue"]
        assert "stats.py:16" in issue and "returned 3, expected 2.5" in issue
        assert "pytest E-MEDIAN" in issue and "return ordered[middle]" in issue
        result = await command(editor, action.command.command, *action.command.arguments)
        assert result["status"] == "done" and len(result["candidates"]) == 2
        assert len(await code_actions(editor, stats, [diagnostic])) == 3
    prompts = [str(r["body"]["messages"]) for r in model.chat_requests("generate")]
    assert prompts and all("returned 3, expected 2.5" in p for p in prompts)


@pytest.mark.parametrize("profile", ["visual-studio-code", "neovim@v0.7"])
async def test_a_candidate_that_creates_and_deletes_files_applies_fully(
    repo: Path, server_env: dict[str, str], scripted: Callable[..., ScriptedServer], profile: str
) -> None:
    turns = [
        *_generate(FIX_A)[:-1],
        {
            "tool": "str_replace_editor",
            "args": {"command": "create", "path": "MEDIAN.md", "file_text": "even: mean\n"},
        },
        {"tool": "bash", "args": {"command": "rm test_stats.py"}},
        {"tool": "submit", "args": {}},
    ]
    server_env["OPENAI_BASE_URL"] = scripted(make_script({"default": turns})).base_url
    stats = repo / "stats.py"
    async with connect(server_env, repo, profile=profile, options={"samples": 1}) as editor:
        editor.open(stats)
        result = await fix(editor)
        [candidate] = result["candidates"]
        assert sorted(candidate["files"]) == sorted(
            editor.uri(repo / p) for p in ("MEDIAN.md", "stats.py", "test_stats.py")
        )
        [action] = await code_actions(editor, stats)
        assert action.edit is not None
        editor.apply(action.edit)
        if profile == "visual-studio-code":
            kinds = [type(c).__name__ for c in action.edit.document_changes or []]
            assert sorted(kinds) == [
                "CreateFile",
                "DeleteFile",
                "TextDocumentEdit",
                "TextDocumentEdit",
            ]
            assert action.command is None
        else:  # no resource operations: the action's command creates and deletes on disk
            assert (
                action.command is not None
                and action.command.command == "kat.lsp.applyFileOperations"
            )
            assert list(action.edit.changes or {}) == [editor.uri(stats)]
            assert await command(
                editor, action.command.command, *action.command.arguments or []
            ) == {"applied": True}
    assert (repo / "MEDIAN.md").read_text() == "even: mean\n"
    assert not (repo / "test_stats.py").exists()
    assert median_of_even(repo) == "2.5"
