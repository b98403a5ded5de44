"""`kat-lsp doctor`: what protects a run on this machine, and what a run would use.

One line per check, `ok`, `warn` or `fail` first: the sandbox (bubblewrap can start one
with the real flags), which mechanism enforces each resource limit, the environment
allowlist, the workspace's trust and what its config files may set, the user config
file, and the model endpoint. `--json` prints the same as one object. Exit 0 when
nothing failed, 2 otherwise (a run would refuse to start).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def checks(repo: Path) -> list[dict[str, str]]:
    from kat_lsp.config import load_config
    from kat_lsp.exceptions import ConfigError, SandboxUnavailable
    from kat_lsp.sandbox import LocalExecutor, check_sandbox, make_executor
    from kat_lsp.sandbox.cgroups import describe_limits
    from kat_lsp.sandbox.limits import SandboxLimits
    from kat_lsp.userconfig import is_trusted, user_config_file

    out: list[dict[str, str]] = []

    def add(name: str, status: str, detail: str) -> None:
        out.append({"check": name, "status": status, "detail": detail})

    try:
        config = load_config(repo)
    except ConfigError as exc:
        add("settings", "fail", str(exc))
        return out
    ignored = ", ".join(config.untrusted_ignored)
    trusted = is_trusted(repo)
    add(
        "workspace trust",
        "ok" if trusted or not ignored else "warn",
        f"{repo} is {'trusted' if trusted else 'not trusted'} (user config: {user_config_file()})"
        + (f"; its config files' {ignored} are ignored" if ignored else ""),
    )
    try:
        bwrap = check_sandbox(config)
        add("sandbox", "ok" if bwrap else "warn",
            f"bubblewrap at {bwrap} starts sandboxes here" if bwrap
            else 'sandbox = "none": model commands run unsandboxed, with your permissions')  # fmt: skip
    except SandboxUnavailable as exc:
        add("sandbox", "fail", str(exc))
    add("limits", "ok", describe_limits(SandboxLimits.from_config(config)))
    # The environment the executor of a run would hand its commands (sandbox or not).
    try:
        executor = make_executor(repo, config)
    except SandboxUnavailable:
        executor = LocalExecutor(repo, env_allow=config.sandbox_env)
    env = getattr(executor, "env", {})
    add("environment", "ok", "commands see only: " + " ".join(sorted(env)))
    if not config.base_url or not config.model:
        add(
            "endpoint", "warn", "no model endpoint or model configured (OPENAI_BASE_URL, KAT_MODEL)"
        )
    else:
        add("endpoint", "ok", f"{config.model} at {config.base_url}")
    return out


def run_doctor(args: argparse.Namespace) -> int:
    repo = Path(args.repo).expanduser().resolve()
    results = checks(repo)
    if args.json:
        print(json.dumps({"repo": str(repo), "checks": results}, indent=2))
    else:
        for r in results:
            print(f"{r['status']:4}  {r['check']}: {r['detail']}")
    failed = any(r["status"] == "fail" for r in results)
    if failed and not args.json:
        print("kat-lsp: a run would not start here; fix the failed checks", file=sys.stderr)
    return 2 if failed else 0


def add_parser(sub: Any) -> None:
    doctor = sub.add_parser("doctor", help="check the sandbox, limits, trust and endpoint here")
    doctor.add_argument("--repo", default=os.curdir, help="the workspace to check (default: .)")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
