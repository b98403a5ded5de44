"""The KAT pipeline end to end through its library API: a pool of candidates of every
kind, reproduction tests of every kind, reflection rounds, early stop and fault
containment — real git, real bubblewrap, the scripted model over HTTP."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kat_lsp.model.openai_model import OpenAIModel
from kat_lsp.pipeline.api import RunEvent, RunResult
from kat_lsp.pipeline.runner import Pipeline
from tests.fakes.server import model_config

SOURCE = '''def clamp(x, lo, hi):
    """Clamp x into [lo, hi]."""
    if x < lo:
        return lo
    if x > hi:
        return lo
    return x
'''
ISSUE = (
    "clamp(15, 0, 10) returns 0 instead of 10: values above the range come back as the lower bound."
)
BUG = "    if x > hi:\n        return lo"

CORRECT = "    if x > hi:\n        return hi"
CORRECT_COMMENTED = "    if x > hi:\n        return hi   # the upper bound"
CORRECT_PARENS = "    if x > hi :\n        return (hi)"
FAVOURITE_WRONG = "    if x > hi:\n        return x"
HALF_RIGHT = "    if x >= hi + 1:\n        return hi"
SYNTAX_ERROR = "    if x > hi:\n        return hi)"


def fix(new: str) -> list[dict[str, Any]]:
    return [
        {
            "tool": "str_replace_editor",
            "args": {"command": "str_replace", "path": "clamp.py", "old_str": BUG, "new_str": new},
        },
        {"tool": "submit", "args": {}},
    ]


def repro_sample(name: str, body: str, command: str | None = None) -> list[dict[str, Any]]:
    return [
        {
            "tool": "str_replace_editor",
            "args": {"command": "create", "path": name, "file_text": body},
        },
        {"tool": "submit", "args": {"command": command or f"python3 {name}"}},
    ]


UPPER = "from clamp import clamp\nassert clamp(15, 0, 10) == 10\n"
FRACTION = "from clamp import clamp\nassert clamp(10.5, 0, 10) == 10\n"
PASSES_ON_BASE = "from clamp import clamp\nassert clamp(5, 0, 10) == 5\n"
BROKEN = "from clamp import clamp_values\nassert clamp_values([15], 0, 10) == [10]\n"

TESTS = {
    "0": repro_sample("test_upper.py", UPPER),
    "1": repro_sample("test_fraction.py", FRACTION),
    "2": repro_sample("test_inside.py", PASSES_ON_BASE),
    "3": repro_sample("test_broken.py", BROKEN),
}
JUDGE = {
    "default": {
        "match": [
            {
                "contains": "x >= hi + 1",
                "turns": [{"tool": "score", "args": {"score": 6, "reason": "half"}}],
            },
            {
                "contains": "+        return hi",
                "turns": [{"tool": "score", "args": {"score": 8, "reason": "right"}}],
            },
            {
                "contains": "+        return x",
                "turns": [{"tool": "score", "args": {"score": 10, "reason": "love it"}}],
            },
        ],
        "turns": [{"tool": "score", "args": {"score": 1, "reason": "?"}}],
    }
}
REFLECTION = "Returning x or shifting the bound is wrong; return hi when x > hi."
ALL_AGREE = {
    "phases": {
        "generate": {"default": fix(CORRECT)},
        "testgen": {"0": TESTS["0"]},
        "judge": JUDGE,
        "reflect": {"default": [{"content": REFLECTION}]},
    }
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "clamp.py").write_text(SOURCE)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


async def run(
    server, repo: Path, events: list[RunEvent] | None = None, **settings: Any
) -> RunResult:
    config = model_config(server.base_url, max_retries=0, **settings)
    pipeline = Pipeline(config, OpenAIModel(config))
    return await pipeline.run(ISSUE, repo, on_event=(events.append if events is not None else None))


def record(result: RunResult) -> dict[str, Any]:
    assert result.run_dir is not None
    return json.loads((result.run_dir / "run.json").read_text())


def requests(server, phase: str) -> list[dict[str, Any]]:
    return [r for r in server.requests if r["headers"].get("x-kat-phase") == phase]


async def test_the_correct_fix_wins_a_mixed_pool(repo, scripted):
    server = scripted(
        {
            "phases": {
                "generate": {
                    "0": fix(CORRECT),
                    "1": fix(CORRECT_COMMENTED),
                    "2": fix(CORRECT_PARENS),
                    "3": fix(FAVOURITE_WRONG),
                    "4": fix(HALF_RIGHT),
                    "5": fix(SYNTAX_ERROR),
                    "6": [{"tool": "submit", "args": {}}],
                },
                "testgen": TESTS,
                "judge": JUDGE,
            }
        }
    )
    events: list[RunEvent] = []
    result = await run(server, repo, events, samples=7, test_samples=4, top_k=3)
    assert result.status == "done"
    best = result.candidates[0]
    # The three formattings of the correct fix are one group of three, ranked first.
    assert (best.rank, best.samples, best.cluster_size) == (1, [0, 1, 2], 3)
    assert (best.tests_passed, best.tests_total, best.judge_score) == (2, 3, 8)
    assert "+        return hi\n" in best.patch
    # The half-right fix passes one test and comes second; the judge's favourite
    # passes none and is cut before the judge; the syntax error too.
    assert [(c.samples, c.tests_passed) for c in result.candidates] == [([0, 1, 2], 2), ([4], 1)]
    rec = record(result)
    assert {f["id"]: f["tests_passed"] for f in rec["filtered"]} == {"c3": 0, "c5": 0}
    tests = {t["command"]: (t["kept"], t["reason"]) for t in rec["tests"]}
    assert tests["python3 test_upper.py"][0] and tests["python3 test_fraction.py"][0]
    assert tests["python3 test_inside.py"] == (
        False,
        "passes on the base (does not reproduce the issue)",
    )
    assert tests["python3 test_broken.py"][0]  # fails on the base: kept, and fails everywhere
    # Only the survivors were judged, once each, with the candidate index in X-KAT-Sample.
    judged = requests(server, "judge")
    assert len(judged) == 2
    assert {r["headers"]["x-kat-sample"] for r in judged} == {"0", "2"}  # groups c0, c3, c4, c5
    # The sample that changed nothing is recorded as such.
    statuses = {s["index"]: s["status"] for s in rec["samples"]}
    assert statuses[6] == "no_change" and statuses[0] == "submitted"
    # Progress went forward through the phases and ended at 100 %.
    assert [e.percentage for e in events] == sorted(e.percentage for e in events)
    assert events[-1].phase == "done" and events[-1].percentage == 100
    assert {"generate", "execute", "judge"} <= {e.phase for e in events}


async def test_reflection_carries_into_the_next_round(repo, scripted):
    server = scripted(
        {
            "phases": {
                "generate": {
                    "0": fix(FAVOURITE_WRONG),
                    "1": fix(HALF_RIGHT),
                    "2": fix(CORRECT),
                    "3": fix(CORRECT),
                },
                "testgen": {"0": TESTS["0"], "1": TESTS["1"]},
                "judge": JUDGE,
                "reflect": {"default": [{"content": REFLECTION}]},
            }
        }
    )
    result = await run(server, repo, samples=4, rounds=2, test_samples=2)
    reflect = requests(server, "reflect")
    assert len(reflect) == 1 and reflect[0]["headers"]["x-kat-round"] == "0"
    assert "x >= hi + 1" in json.dumps(
        reflect[0]["body"]["messages"]
    )  # it saw the round's candidates
    for r in requests(server, "generate"):
        carries = REFLECTION in r["body"]["messages"][1]["content"]
        assert carries == (r["headers"]["x-kat-round"] == "1"), r["headers"]
    round1 = {
        r["headers"]["x-kat-sample"]
        for r in requests(server, "generate")
        if r["headers"]["x-kat-round"] == "1"
    }
    assert round1 == {"2", "3"}
    best = result.candidates[0]
    assert (best.samples, best.round, best.tests_passed, best.tests_total) == ([2, 3], 1, 2, 2)
    assert record(result)["reflections"] == [REFLECTION]


async def test_early_stop_when_most_samples_agree_and_pass_every_test(repo, scripted):
    server = scripted(ALL_AGREE)
    result = await run(server, repo, samples=6, rounds=3, test_samples=1)
    assert requests(server, "reflect") == []
    assert {r["headers"]["x-kat-sample"] for r in requests(server, "generate")} == {"0", "1"}
    assert result.candidates[0].cluster_size == 2
    assert any("early stop after round 1" in n for n in record(result)["notes"])


async def test_early_stop_can_be_switched_off(repo, scripted):
    server = scripted(ALL_AGREE)
    result = await run(server, repo, samples=4, rounds=2, test_samples=1, early_stop=False)
    assert len(requests(server, "reflect")) == 1
    assert result.candidates[0].cluster_size == 4


async def test_failures_are_contained(repo, scripted):
    server = scripted(
        {
            "phases": {
                "generate": {
                    "0": fix(CORRECT),
                    "1": [{"error": 500}],  # its endpoint fails for good
                    "2": [
                        {"tool": "bash", "args": {"command": "sleep 300"}}
                    ],  # runs past the time limit
                },
                "testgen": {
                    "0": TESTS["0"],
                    "1": repro_sample("test_hang.py", "import time\ntime.sleep(300)\n"),
                },
                "judge": JUDGE,
            }
        }
    )
    result = await run(server, repo, samples=3, test_samples=2, time_limit=4.0, test_timeout=2.0)
    assert result.status == "done"
    assert result.candidates[0].samples == [0]
    rec = record(result)
    exits = {s["index"]: s["exit_status"] for s in rec["samples"]}
    assert exits == {0: "submitted", 1: "model_error", 2: "limits_exceeded"}
    hang = next(t for t in rec["tests"] if t["command"] == "python3 test_hang.py")
    assert not hang["kept"] and "timed out" in hang["reason"]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 300" not in ps and "test_hang.py" not in ps


async def test_cancelling_the_run_stops_everything_and_records_it(repo, scripted, tmp_path):
    import anyio

    server = scripted(
        {
            "phases": {
                "generate": {
                    "default": [
                        {"tool": "bash", "args": {"command": "sleep 123.456"}},
                        *fix(CORRECT),
                    ]
                },
                "testgen": {"default": TESTS["0"]},
            }
        }
    )
    config = model_config(server.base_url, max_retries=0)
    pipeline = Pipeline(config, OpenAIModel(config))
    seen: list[RunEvent] = []
    async with anyio.create_task_group() as tg:

        def on_event(event: RunEvent) -> None:
            seen.append(event)
            if any(s.steps >= 1 and s.phase == "generate" for s in event.samples):
                tg.cancel_scope.cancel()

        tg.start_soon(lambda: pipeline.run(ISSUE, repo, on_event=on_event))
    run_id = seen[0].run_id
    rec = json.loads((tmp_path / "kat-state" / "runs" / run_id / "run.json").read_text())
    assert rec["status"] == "cancelled"
    assert (repo / "clamp.py").read_text() == SOURCE
    checkouts = tmp_path / "kat-cache" / "checkouts"
    assert not checkouts.exists() or not any(checkouts.rglob("clamp.py"))
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 123.456" not in ps


SUITE = """from clamp import clamp


def test_inside():
    assert clamp(5, 0, 10) == 5


def test_below():
    assert clamp(-1, 0, 10) == 0
"""
DROPS_LOWER_BOUND = [
    {
        "tool": "str_replace_editor",
        "args": {
            "command": "str_replace",
            "path": "clamp.py",
            "old_str": "    if x < lo:\n        return lo\n" + BUG,
            "new_str": "    if x > hi:\n        return hi",
        },
    },
    {"tool": "submit", "args": {}},
]


@pytest.mark.parametrize("top_k", [2, 1])
async def test_the_projects_own_tests_count_new_failures(repo, scripted, top_k):
    (repo / "test_suite.py").write_text(SUITE)
    server = scripted(
        {
            "phases": {
                "generate": {"0": fix(CORRECT), "1": DROPS_LOWER_BOUND},
                "testgen": {"0": TESTS["0"]},
                "judge": JUDGE,
            }
        }
    )
    result = await run(
        server, repo, samples=2, test_samples=1, top_k=top_k,
        test_command="python3 -m pytest -q -p no:cacheprovider test_suite.py",
    )  # fmt: skip
    regressions = {c.samples[0]: (c.tests_passed, c.regressions) for c in result.candidates}
    if top_k == 2:  # both fix the reported bug; sample 1 breaks test_below
        assert regressions == {0: (1, 0), 1: (1, 1)}
    else:  # at the cut, fewer new failures win the tie on tests passed
        assert regressions == {0: (1, 0)}
