"""`kat-lsp prune`: remove old runs from the state dir and checkouts no process owns.

Runs go by age (`--older-than DAYS`) and then by total size (`--max-size MB`, oldest
first), as kat_lsp.pipeline.retention decides; a run whose process is alive stays.
`--dry-run` names what would go and removes nothing. Prints one line per folder and a
summary.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    from kat_lsp.pipeline.retention import RETENTION_DAYS, RETENTION_MB

    prune = sub.add_parser(
        "prune",
        help="remove old runs from the state dir and stale checkouts from the cache dir",
    )
    prune.add_argument(
        "--older-than",
        type=float,
        metavar="DAYS",
        default=RETENTION_DAYS,
        help=f"remove runs older than DAYS (default {RETENTION_DAYS:g})",
    )
    prune.add_argument(
        "--max-size",
        type=float,
        metavar="MB",
        default=RETENTION_MB,
        help=f"then remove the oldest runs until the rest fit in MB (default {RETENTION_MB})",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="say what would be removed, remove nothing"
    )


def run_prune(args: argparse.Namespace) -> int:
    from kat_lsp.cli import EXIT_OK, UsageError
    from kat_lsp.paths import runs_dir
    from kat_lsp.pipeline.retention import describe, prune_runs
    from kat_lsp.workspace.rundirs import prune_stale

    if not args.older_than >= 0 or not args.max_size >= 0:  # also NaN
        raise UsageError("--older-than and --max-size must be numbers of 0 or more")
    pruned = prune_runs(args.older_than, args.max_size, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for item in pruned:
        print(f"{verb} {item.path} ({item.size / (1 << 20):.1f} MB, {item.reason})")
    stale = prune_stale(dry_run=args.dry_run)
    for path in stale:
        print(f"{verb} {path} (checkout or snapshot of a run whose process ended)")
    print(
        f"kat-lsp: {describe(pruned, dry_run=args.dry_run)} from {runs_dir()}; "
        f"{len(stale)} stale checkout folder(s)",
        file=sys.stderr,
    )
    return EXIT_OK
