"""What the sandbox costs per `bash` tool call, measured side by side in one run.

Four ways of running `true`, interleaved round-robin so that machine load hits them alike:
  bare bash     subprocess.run(["bash", "-c", "true"])
  bare bwrap    subprocess.run(<the executor's exact bwrap argv>)  - bubblewrap's own cost
  tool, local   BashTool over LocalExecutor (asyncio, process group, clipping, observation)
  tool, bwrap   BashTool over BwrapExecutor - what the model's bash call costs

Run: python bench/bench_sandbox.py [--iterations 200]
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


async def measure(iterations: int, root: Path) -> dict[str, list[float]]:
    config = KatConfig()
    bwrap = check_sandbox(config) or "bwrap"
    sandboxed = BwrapExecutor(root, bwrap=bwrap)
    bwrap_tool = BashTool(sandboxed, config)
    local_tool = BashTool(LocalExecutor(root), config)
    bwrap_argv = sandboxed.argv("true")

    async def bare_bash() -> None:
        subprocess.run(["bash", "-c", "true"], check=True)

    async def bare_bwrap() -> None:
        subprocess.run(bwrap_argv, check=True, env=sandboxed.env, cwd=root)

    async def tool_local() -> None:
        assert (await local_tool({"command": "true"})).startswith("[exit code 0]")

    async def tool_bwrap() -> None:
        assert (await bwrap_tool({"command": "true"})).startswith("[exit code 0]")

    cases: dict[str, Callable[[], Awaitable[None]]] = {
        "bare bash": bare_bash,
        "bare bwrap": bare_bwrap,
        "tool, local": tool_local,
        "tool, bwrap": tool_bwrap,
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for run in cases.values():  # warm-up: page cache, imports, first namespace setup
        await run()
    for _ in range(iterations):
        for name, run in cases.items():
            started = time.perf_counter()
            await run()
            times[name].append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kat-bench-") as tmp:
        times = asyncio.run(measure(args.iterations, Path(tmp)))
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"median wall time of `true`, {args.iterations} interleaved runs each:")
    for name, value in median.items():
        print(f"  {name:<12} {value:7.2f} ms")
    print(f"sandboxed tool call / bare bash : {median['tool, bwrap'] / median['bare bash']:.2f}x")
    print(f"sandboxed tool call / bare bwrap: {median['tool, bwrap'] / median['bare bwrap']:.2f}x")
    print(f"local tool call / bare bash     : {median['tool, local'] / median['bare bash']:.2f}x")


if __name__ == "__main__":
    main()
