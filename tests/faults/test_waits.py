"""Every wait on the model endpoint is bounded, and a bounded reply is all that is read.

A real `kat-lsp fix` against tests/faults/badserver.py: a reply dripping one byte a
second ends at request_timeout (the whole request, not per read); a stream that stalls
ends at the stall timeout and is retried; a stream closed before `[DONE]` is retried,
not taken as complete; a 40 MB reply is cut at the size cap without growing the
process; tool-call arguments nested 50 000 deep are a format error the model is told
about. Each message counts the attempts really made; the user's repository is untouched.
"""

from __future__ import annotations

import json
from pathlib import Path

from kat_lsp.model.wire import MAX_REPLY_BYTES
from tests.faults.endpoint_run import FaultRun, fault_fix

BOUND = 30.0
"""A generous upper bound: each case takes 2 to 7 s with the settings below."""


def contained(run: FaultRun, *says: str) -> str:
    """The run ended without a candidate (exit 3) and said why; the repo is untouched."""
    assert run.returncode == 3, run.stderr
    [line] = run.no_candidate_lines
    assert "every sample failed on the model endpoint" in line
    for text in says:
        assert text in line
    assert "Traceback" not in run.stderr
    assert run.repo_after == run.repo_before
    assert run.seconds < BOUND
    return line


def test_a_dripping_reply_ends_at_the_whole_request_deadline(tmp_path: Path) -> None:
    run = fault_fix(tmp_path, "drip", settings={"request_timeout": 3, "max_retries": 0})
    contained(run, "did not answer within request_timeout = 3 s (after 1 attempt)")
    assert len(run.requests) == 3, "one attempt per sample, as max_retries = 0 says"
    assert run.seconds < 3 * 4, "the deadline is the whole request, not a read"


def test_a_stalled_stream_ends_at_the_stall_timeout_and_is_retried(tmp_path: Path) -> None:
    run = fault_fix(
        tmp_path,
        "stall",
        settings={
            "stream": True,
            "request_timeout": 20,
            "max_retries": 1,
            "stream_stall_timeout": 1,
        },
    )
    contained(run, "stalled for 1 s (after 2 attempts)", "stream = false")
    assert len(run.requests) == 3 * 2, "each sample retried its stalled stream once"
    assert run.seconds < 20, "the stall timeout ended it, long before request_timeout"


def test_a_stream_cut_before_done_is_retried_not_taken_as_complete(tmp_path: Path) -> None:
    run = fault_fix(tmp_path, "cut", settings={"stream": True, "max_retries": 2})
    contained(run, "closed before its end (no [DONE]) (after 3 attempts)")
    assert len(run.requests) == 3 * 3
    assert "I will look at" not in run.trajectories, "a cut reply is never used"


def test_a_huge_reply_is_cut_at_the_cap_and_not_retried(tmp_path: Path) -> None:
    run = fault_fix(tmp_path, "huge")
    contained(run, f"larger than {MAX_REPLY_BYTES >> 20} MiB", "not retried")
    assert len(run.requests) == 3
    print(f"FIGURE huge: largest child RSS {run.max_rss_mb:.0f} MB")
    assert run.max_rss_mb < 400, "a 40 MB reply (x3 samples) must not grow the process"


def test_arguments_nested_50k_deep_are_a_format_error_for_the_model(tmp_path: Path) -> None:
    run = fault_fix(tmp_path, "deep", settings={"format_error_limit": 2})
    assert run.returncode == 3, run.stderr
    assert "RecursionError" not in run.stderr + run.trajectories
    assert "Traceback" not in run.stderr
    told = [
        message["content"]
        for request in run.requests
        for message in request["body"]["messages"]
        if message["role"] in ("tool", "user") and "levels deep" in str(message["content"])
    ]
    assert told, "the model is told what was wrong with its arguments"
    assert len(run.requests) == 3 * 2, "each sample got format_error_limit turns"
    record = run.run_json
    assert record is not None and record["status"] == "done"
    statuses = {sample["exit_status"] for sample in record["samples"]}
    assert statuses == {"limits_exceeded"}, json.dumps(record["samples"])
    assert run.repo_after == run.repo_before
    assert run.seconds < BOUND
