"""`kat-lsp fix`: run the pipeline with a progress display, write ranked.json and
best.patch, optionally apply the best patch to the user's tree: reviewed first
(kat_lsp.workspace.applycheck), never with a refused path, with flagged files only
under `--apply-flagged`; the files it touches are listed.

SIGTERM and SIGHUP end a run as Ctrl-C does: the run is cancelled (samples stop, their
checkouts are removed, run.json says "cancelled") and the exit code is 128 + the signal
(143, 129; Ctrl-C gives 130). Old runs are pruned at start (kat_lsp.pipeline.retention).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

import anyio

from kat_lsp.config import KatConfig
from kat_lsp.display import make_display, print_ranked
from kat_lsp.pipeline.api import RunResult
from kat_lsp.pipeline.runner import Pipeline, new_run_id

TERMINATING = (signal.SIGTERM, signal.SIGHUP)
"""Signals that cancel the run like Ctrl-C (SIGINT, which asyncio turns into a cancel)."""


async def run_cancellable(pipeline: Pipeline, display: Any, **kwargs: Any) -> RunResult | int:
    """Run the pipeline; a terminating signal cancels it: then the signal's number."""
    received: list[int] = []
    result: RunResult | None = None
    with anyio.open_signal_receiver(*TERMINATING) as signals:
        async with anyio.create_task_group() as tg:
            run_scope = anyio.CancelScope()

            async def watch() -> None:
                async for signum in signals:  # a second signal changes nothing
                    if not received:
                        received.append(int(signum))
                        run_scope.cancel()

            tg.start_soon(watch)
            with run_scope, display:
                result = await pipeline.run(**kwargs)
            tg.cancel_scope.cancel()
    if result is None:  # only a signal's cancel ends the run without a result
        return received[0]
    return result


def write_outputs(result: RunResult, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "ranked.json").write_text(
        json.dumps(result.ranked_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    best = result.candidates[0].patch if result.candidates else ""
    (out / "best.patch").write_text(best, encoding="utf-8")


def apply_best(patch: str, repo: Path, best: Path, *, flagged_ok: bool) -> str | None:
    """Review rank 1's patch and apply it to the user's tree; the reason when it is not
    applied (then nothing changed). Prints the files it touches either way."""
    from kat_lsp.workspace.applycheck import review_patch
    from kat_lsp.workspace.patches import PatchError, apply_patch

    review = review_patch(patch, repo)
    print(f"kat-lsp: the best patch changes {len(review.files)} file(s):", file=sys.stderr)
    for path in review.files:
        print(f"  {path!r}" if not path.isprintable() else f"  {path}", file=sys.stderr)
    if review.refused:
        listing = "".join(f"\n  {path!r}: {reason}" for path, reason in review.refused)
        return f"the patch holds what is never applied:{listing}"
    if review.flagged and not flagged_ok:
        listing = "".join(f"\n  {path}: {why}" for path, why in review.flagged)
        return (
            f"the patch changes files that run code or configure tools:{listing}\n"
            f"Read {best}; if you want these changes, apply it with `git apply {best}` "
            "or re-run with --apply-flagged"
        )
    try:
        apply_patch(repo, patch)
    except PatchError as exc:
        return str(exc)
    return None


def execute_fix(args: argparse.Namespace, config: KatConfig, repo: Path, issue: str) -> int:
    from kat_lsp.cli import EXIT_APPLY_FAILED, EXIT_NO_CANDIDATE, EXIT_OK, EXIT_USAGE
    from kat_lsp.workspace import prune_stale

    prune_stale()  # checkouts left by runs whose process died
    from kat_lsp.pipeline.retention import describe, prune_runs

    if pruned := prune_runs():
        print(f"kat-lsp: {describe(pruned)} past the retention limits", file=sys.stderr)
    run_id = new_run_id()
    err = sys.stderr
    display = make_display(err, quiet=args.quiet)
    pipeline = Pipeline(config)
    print(f"kat-lsp: run {run_id} on {repo} with {config.model} at {config.base_url}", file=err)

    async def go() -> RunResult | int:
        return await run_cancellable(
            pipeline, display, issue=issue, root=repo, on_event=display.update, run_id=run_id
        )

    result = anyio.run(go)
    if isinstance(result, int):
        name = signal.Signals(result).name
        print(f"kat-lsp: {name}: the run was cancelled (run {run_id})", file=err)
        return 128 + result
    out = args.out or result.run_dir or Path.cwd()
    write_outputs(result, out)
    if result.status == "failed":  # e.g. the endpoint is misconfigured: one line, the fix
        print(f"kat-lsp: error: {result.error}", file=err)
        return EXIT_USAGE
    print_ranked(err, result)
    print(f"kat-lsp: wrote {out / 'ranked.json'} and {out / 'best.patch'}", file=err)
    if args.json:
        print(json.dumps(result.ranked_json(), indent=2, ensure_ascii=False))
    if not result.candidates:
        why = f": {result.error}" if result.error else ""  # every sample failed on the model
        print(
            f"kat-lsp: no sample produced a candidate{why} (see the trajectories in "
            f"{result.run_dir}/trajectories)",
            file=err,
        )
        return EXIT_NO_CANDIDATE
    if args.apply or args.apply_flagged:
        best = out / "best.patch"
        patch = result.candidates[0].patch
        problem = apply_best(patch, repo, best, flagged_ok=args.apply_flagged)
        if problem:
            print(f"kat-lsp: not applied, nothing was changed: {problem}", file=err)
            print(f"kat-lsp: the patch is in {best}", file=err)
            return EXIT_APPLY_FAILED
        print(f"kat-lsp: applied candidate {result.candidates[0].id} to {repo}", file=err)
    return EXIT_OK
