"""`kat-lsp fix`: run the pipeline with a progress display, write ranked.json and
best.patch, optionally apply the best patch to the user's tree."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import anyio

from kat_lsp.config import KatConfig
from kat_lsp.display import make_display, print_ranked
from kat_lsp.pipeline.api import RunResult
from kat_lsp.pipeline.runner import Pipeline, new_run_id


def write_outputs(result: RunResult, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "ranked.json").write_text(
        json.dumps(result.ranked_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    best = result.candidates[0].patch if result.candidates else ""
    (out / "best.patch").write_text(best, encoding="utf-8")


def apply_best(result: RunResult, repo: Path) -> str | None:
    """Apply rank 1 to the user's tree; the reason when it cannot be applied."""
    from kat_lsp.workspace.patches import PatchError, apply_patch

    try:
        apply_patch(repo, result.candidates[0].patch)
    except PatchError as exc:
        return str(exc)
    return None


def execute_fix(args: argparse.Namespace, config: KatConfig, repo: Path, issue: str) -> int:
    from kat_lsp.cli import EXIT_APPLY_FAILED, EXIT_NO_CANDIDATE, EXIT_OK
    from kat_lsp.workspace import prune_stale

    prune_stale()  # checkouts left by runs whose process died
    run_id = new_run_id()
    err = sys.stderr
    display = make_display(err, quiet=args.quiet)
    pipeline = Pipeline(config)
    print(f"kat-lsp: run {run_id} on {repo} with {config.model} at {config.base_url}", file=err)

    async def go() -> RunResult:
        with display:
            return await pipeline.run(issue, repo, on_event=display.update, run_id=run_id)

    result = anyio.run(go)
    out = args.out or result.run_dir or Path.cwd()
    write_outputs(result, out)
    if result.status == "failed":
        print(f"kat-lsp: the run failed: {result.error}", file=err)
    print_ranked(err, result)
    print(f"kat-lsp: wrote {out / 'ranked.json'} and {out / 'best.patch'}", file=err)
    if args.json:
        print(json.dumps(result.ranked_json(), indent=2, ensure_ascii=False))
    if not result.candidates:
        print(
            "kat-lsp: no sample produced a candidate (see the trajectories in "
            f"{result.run_dir}/trajectories)",
            file=err,
        )
        return EXIT_NO_CANDIDATE
    if args.apply:
        problem = apply_best(result, repo)
        if problem:
            print(
                f"kat-lsp: not applied: {problem}\nThe patch is in {out / 'best.patch'}; "
                "apply it by hand or run again on the current tree.",
                file=err,
            )
            return EXIT_APPLY_FAILED
        print(f"kat-lsp: applied candidate {result.candidates[0].id} to {repo}", file=err)
    return EXIT_OK
