"""The `kat-lsp` command: `serve` (the language server) and `fix` (one headless run).

Imports stay light here (argparse and the settings' types): the pipeline, rich and openai load when a
command needs them, so that `kat-lsp fix` reaches its first model request quickly.
Exit codes of `fix`: 0 a candidate, 3 no candidate, 2 usage or configuration error (a
misconfigured model endpoint that stopped the run, or any run that failed, included),
1 the best patch was not applied (`--apply`: it no longer fits, holds a refused path, or
changes flagged files without `--apply-flagged`), 128 + the signal when interrupted
(130 Ctrl-C / SIGINT, 143 SIGTERM, 129 SIGHUP).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any, get_args

from kat_lsp import __version__
from kat_lsp.config import KatConfig, SandboxMode, ToolMode

EXAMPLES = """\
examples:
  kat-lsp fix --repo . --issue "divide() crashes on zero instead of raising ValueError"
  kat-lsp fix --repo ~/src/app --issue-file issue.md --samples 8 --rounds 2 --out fix-out
  OPENAI_BASE_URL=http://localhost:8000/v1 KAT_MODEL=qwen3-coder kat-lsp fix --repo . --issue-file bug.md --apply
  kat-lsp serve                       # language server on stdio (for editors)
  kat-lsp serve --tcp --port 2087     # language server on TCP (token file on stderr)
  kat-lsp serve --socket /run/user/1000/kat.sock   # on a unix socket (mode 0600)
"""

EXIT_OK, EXIT_APPLY_FAILED, EXIT_USAGE, EXIT_NO_CANDIDATE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(Exception):
    """Bad command line input; the message says what to do."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kat-lsp",
        description="An IDE-side coding agent: fixes an issue by generating candidate patches "
        "in sandboxed checkouts, filtering them with model-written reproduction tests, "
        "having the model judge them, and reflecting between rounds.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kat-lsp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fix = sub.add_parser(
        "fix",
        help="fix an issue headlessly and write ranked candidates",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fix.add_argument(
        "--repo",
        required=True,
        type=Path,
        help="the workspace folder (git repository or plain folder)",
    )
    issue = fix.add_mutually_exclusive_group(required=True)
    issue.add_argument("--issue", help="the issue text")
    issue.add_argument(
        "--issue-file",
        type=Path,
        help="a UTF-8 file holding the issue text (at most 256 KB); '-' reads standard input",
    )
    fix.add_argument(
        "--samples",
        type=int,
        help="K: candidate samples over all rounds (default 4, at most 64; at most "
        "max(8, 2 x CPUs) run at once, the others wait)",
    )
    fix.add_argument("--rounds", type=int, help="R: rounds the samples are spread over (default 1)")
    fix.add_argument("--top-k", type=int, help="candidates that go on to the judge (default 3)")
    fix.add_argument("--test-samples", type=int, help="reproduction-test samples (default 4)")
    fix.add_argument(
        "--out", type=Path, help="folder for ranked.json and best.patch (default: the run's folder)"
    )
    fix.add_argument(
        "--apply",
        action="store_true",
        help="apply the best patch to the working tree (lists the files it changes; refuses "
        "symlinks leaving the repository and paths into .git)",
    )
    fix.add_argument(
        "--apply-flagged",
        action="store_true",
        help="--apply, also when the patch changes files that run code or configure tools "
        "(.vscode/, CI, .kat.toml, conftest.py, ...): read best.patch first",
    )
    fix.add_argument(
        "--trust-workspace",
        action="store_true",
        help="use every setting of the repository's .kat.toml / [tool.kat] for this run, "
        "including sandbox, base_url, api_key, model, sandbox_env and raised limits",
    )
    fix.add_argument(
        "--json", action="store_true", help="print the ranked result as JSON on stdout"
    )
    fix.add_argument("--model", help="model name (overrides KAT_MODEL)")
    fix.add_argument(
        "--base-url", help="OpenAI-compatible endpoint with /v1 (overrides OPENAI_BASE_URL)"
    )
    fix.add_argument("--api-key", help="API key (prefer OPENAI_API_KEY in the environment)")
    fix.add_argument(
        "--tool-mode", choices=get_args(ToolMode), help="how tools are offered to the model"
    )
    fix.add_argument(
        "--sandbox", choices=get_args(SandboxMode), help="'none' runs model commands unsandboxed"
    )
    fix.add_argument("--test-command", help="the project's test command, for regression checks")
    fix.add_argument("--step-limit", type=int, help="model turns per sample (default 40)")
    fix.add_argument("-q", "--quiet", action="store_true", help="no progress display")

    from kat_lsp.cli_doctor import add_parser as add_doctor

    add_doctor(sub)
    from kat_lsp.cli_prune import add_parser as add_prune

    add_prune(sub)
    serve = sub.add_parser("serve", help="run the language server (stdio by default)")
    serve.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (default)")
    serve.add_argument(
        "--tcp",
        action="store_true",
        help="listen on TCP instead of stdio; the client must send the token of the token "
        "file (printed on stderr) as initializationOptions.token",
    )
    serve.add_argument("--host", default="127.0.0.1", help="TCP host (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=2087, help="TCP port (default 2087; 0: any)")
    serve.add_argument(
        "--token-file",
        type=Path,
        help="TCP: use the token in this file (private to you), or write a new one there",
    )
    serve.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="TCP: allow a --host reachable from other machines (the token still applies)",
    )
    serve.add_argument(
        "--socket", type=Path, help="listen on this unix socket (mode 0600) instead of stdio"
    )
    serve.add_argument("--log-file", type=Path, help="also write the log to this file")
    serve.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)"
    )
    return parser


def fix_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "samples": args.samples,
        "rounds": args.rounds,
        "top_k": args.top_k,
        "test_samples": args.test_samples,
        "model": args.model,
        "base_url": args.base_url,
        "api_key": args.api_key,
        "tool_mode": args.tool_mode,
        "sandbox": args.sandbox,
        "test_command": args.test_command,
        "step_limit": args.step_limit,
    }


def untrusted_warning(config: KatConfig, repo: Path) -> str:
    """Which workspace settings were ignored, and the two ways to trust the folder."""
    from kat_lsp.config import untrusted_message
    from kat_lsp.userconfig import user_config_file

    how = (
        f"pass --trust-workspace for this run, or add {str(repo.resolve())!r} to "
        f"trusted_folders in {user_config_file()}"
    )
    return untrusted_message(config, repo, how)


def run_fix(args: argparse.Namespace) -> int:
    from kat_lsp.cli_input import check_counts, check_out, check_repo, read_issue
    from kat_lsp.config import load_config
    from kat_lsp.exceptions import ConfigError

    repo: Path = args.repo.expanduser()
    check_counts(args)
    check_repo(repo, args.repo)
    check_out(args.out)
    issue = read_issue(args)
    # The CLI prints its own warning (below) naming --trust-workspace; not the log's too.
    logging.getLogger("kat_lsp.config").addHandler(logging.NullHandler())
    try:
        config = load_config(repo, fix_overrides(args), trusted=args.trust_workspace or None)
        if config.untrusted_ignored:
            print(f"kat-lsp: warning: {untrusted_warning(config, repo)}", file=sys.stderr)
        config.require_endpoint()
        from kat_lsp.pipeline.capacity import check_sample_counts
        from kat_lsp.sandbox import check_sandbox

        check_sample_counts(config)  # also K and T from the environment or .kat.toml
        check_sandbox(config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    # `import openai` takes ~0.5 s: start it now, beside the snapshot and checkouts. Not
    # before the checks: an exit while a thread imports can crash the interpreter (SIGSEGV).
    threading.Thread(target=importlib.import_module, args=("openai",), daemon=True).start()
    from kat_lsp.cli_fix import execute_fix

    return execute_fix(args, config, repo.resolve(), issue)


def run_serve(args: argparse.Namespace) -> int:
    from kat_lsp.server import main as serve_main

    if args.tcp and args.socket:
        raise UsageError("pass --tcp or --socket, not both")
    if args.tcp and not args.allow_non_loopback:
        from kat_lsp.server.transport import is_loopback

        if not is_loopback(args.host):
            raise UsageError(
                f"--host {args.host} is reachable from other machines; pass "
                "--allow-non-loopback if you mean it (prefer 127.0.0.1 or --socket)"
            )

    return int(serve_main(args) or 0)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "fix":
            return run_fix(args)
        if args.command == "doctor":
            from kat_lsp.cli_doctor import run_doctor

            return run_doctor(args)
        if args.command == "prune":
            from kat_lsp.cli_prune import run_prune

            return run_prune(args)
        return run_serve(args)
    except UsageError as exc:
        print(f"kat-lsp: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("kat-lsp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
