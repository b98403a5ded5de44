"""What the sandbox costs per `bash` tool call, measured side by side in one run.

Ways of running `true`, interleaved round-robin so that machine load hits them alike:
  bare bash       subprocess.run(["bash", "-c", "true"])
  one-shot bwrap  subprocess.run(<a fresh bwrap sandbox with the executor's flags>)
  tool, local     BashTool over LocalExecutor (asyncio, process group, clipping, observation)
  tool, bwrap     BashTool over BwrapExecutor, its sandbox already running (warm):
                  what the model's bash call costs
  sandbox start   a new BwrapExecutor's first call (starts bwrap and the supervisor),
                  every --start-every rounds: the one-time cost per sample

Issue #2 goal: tool, bwrap / bare bash <= 2x (medians).
Run: python bench/bench_sandbox.py [--iterations 200] [--start-every 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from kat_lsp.agent.tools import BashTool
from kat_lsp.config import KatConfig
from kat_lsp.sandbox import BwrapExecutor, LocalExecutor, check_sandbox


async def measure(iterations: int, start_every: int, root: Path) -> dict[str, list[float]]:
    config = KatConfig()
    bwrap = check_sandbox(config) or "bwrap"
    sandboxed = BwrapExecutor(root, bwrap=bwrap)
    bwrap_tool = BashTool(sandboxed, config)
    local_tool = BashTool(LocalExecutor(root), config)
    one_shot_argv = sandboxed.argv("true")

    async def bare_bash() -> None:
        subprocess.run(["bash", "-c", "true"], check=True)

    async def one_shot_bwrap() -> None:
        subprocess.run(one_shot_argv, check=True, env=sandboxed.env, cwd=root)

    async def tool_local() -> None:
        assert (await local_tool({"command": "true"})).startswith("[exit code 0]")

    async def tool_bwrap() -> None:
        assert (await bwrap_tool({"command": "true"})).startswith("[exit code 0]")

    async def sandbox_start() -> float:
        fresh = BwrapExecutor(root, bwrap=bwrap)
        try:
            started = time.perf_counter()
            assert (await fresh.run("true")).exit_code == 0
            return time.perf_counter() - started
        finally:
            await fresh.aclose()

    cases: dict[str, Callable[[], Awaitable[None]]] = {
        "bare bash": bare_bash,
        "one-shot bwrap": one_shot_bwrap,
        "tool, local": tool_local,
        "tool, bwrap": tool_bwrap,
    }
    times: dict[str, list[float]] = {name: [] for name in [*cases, "sandbox start"]}
    try:
        for run in cases.values():  # warm-up: page cache, imports, the sandbox's start
            await run()
        for round_ in range(iterations):
            for name, run in cases.items():
                started = time.perf_counter()
                await run()
                times[name].append(time.perf_counter() - started)
            if round_ % start_every == 0:
                times["sandbox start"].append(await sandbox_start())
    finally:
        await sandboxed.aclose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--start-every", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kat-bench-") as tmp:
        times = asyncio.run(measure(args.iterations, args.start_every, Path(tmp)))
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"median wall time of `true`, {args.iterations} interleaved runs each:")
    for name, value in median.items():
        count = f" ({len(times[name])} runs)" if name == "sandbox start" else ""
        print(f"  {name:<15} {value:7.2f} ms{count}")
    warm, bare = median["tool, bwrap"], median["bare bash"]
    print(f"sandboxed tool call / bare bash      : {warm / bare:.2f}x  (issue #2 goal <= 2x)")
    print(f"sandboxed tool call / one-shot bwrap : {warm / median['one-shot bwrap']:.2f}x")
    print(f"local tool call / bare bash          : {median['tool, local'] / bare:.2f}x")
    print(
        f"one-time sandbox start per sample    : {median['sandbox start'] - warm:.2f} ms "
        f"(= {(median['sandbox start'] - warm) / warm:.0f} warm tool calls)"
    )


if __name__ == "__main__":
    main()
