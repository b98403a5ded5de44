"""Orchestration overhead per agent step: kat-lsp's agent loop vs a bare loop.

Both run the same 12-step trajectory (11 `bash` commands, then `submit`) against the
scripted OpenAI-compatible server at zero latency, in the same process, alternating.
Overhead per step = (wall - time inside model HTTP calls - command run time) / steps.
The bare loop is the openai client + `subprocess.run`, the least an agent can do.
Issue goal: ours <= 1.2x the bare loop.

    python bench/bench_agent_overhead.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kat_lsp.agent.loop import Agent  # noqa: E402
from kat_lsp.agent.tools import make_tools  # noqa: E402
from kat_lsp.config import KatConfig  # noqa: E402
from kat_lsp.interfaces import RequestContext  # noqa: E402
from kat_lsp.model.openai_model import OpenAIModel  # noqa: E402
from kat_lsp.model.scripted import ScriptedServer  # noqa: E402
from kat_lsp.pipeline.sample import initial_messages  # noqa: E402
from kat_lsp.sandbox import make_executor  # noqa: E402

STEPS = 12
COMMANDS = [f"echo step {i}" for i in range(STEPS - 1)]
SCRIPT = {
    "phases": {
        "generate": {
            "default": [{"tool": "bash", "args": {"command": c}} for c in COMMANDS]
            + [{"tool": "submit", "args": {}}]
        }
    }
}


class TimedExecutor:
    """Wraps an executor and sums the time its commands take."""

    def __init__(self, inner):
        self.inner = inner
        self.root = inner.root
        self.seconds = 0.0

    async def run(self, command, *, timeout=None, output_cap=None):
        t0 = time.perf_counter()
        try:
            return await self.inner.run(command, timeout=timeout, output_cap=output_cap)
        finally:
            self.seconds += time.perf_counter() - t0

    async def start(self):
        await self.inner.start()

    async def aclose(self):
        await self.inner.aclose()


class TimedModel:
    def __init__(self, inner):
        self.inner = inner
        self.seconds = 0.0

    async def query(self, messages, **kwargs):
        t0 = time.perf_counter()
        try:
            return await self.inner.query(messages, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0


async def ours(base_url: str, tree: Path, sandbox: str) -> float:
    config = KatConfig(
        base_url=base_url, model="bench", api_key="x", max_retries=0, sandbox=sandbox
    )  # type: ignore[arg-type]
    executor = TimedExecutor(make_executor(tree, config))
    tools = make_tools("generate", tree, executor, config)
    model = TimedModel(OpenAIModel(config))
    agent = Agent(model, tools, config, RequestContext("generate", "bench"))
    t0 = time.perf_counter()
    try:
        outcome = await agent.run(initial_messages("generate", "bench issue", config, tools))
        wall = time.perf_counter() - t0
    finally:
        await executor.aclose()
    assert outcome.exit_status == "submitted" and outcome.steps == STEPS, outcome
    return (wall - model.seconds - executor.seconds) / STEPS


async def bare(base_url: str, tree: Path) -> float:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
    tools = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
        for n in ("bash", "submit")
    ]
    messages: list[dict] = [
        {"role": "system", "content": "bench"},
        {"role": "user", "content": "bench issue"},
    ]
    model_s = cmd_s = 0.0
    t0 = time.perf_counter()
    for _ in range(STEPS):
        t1 = time.perf_counter()
        resp = await client.chat.completions.create(
            model="bench",
            messages=messages,
            tools=tools,
            extra_headers={"X-KAT-Phase": "generate", "X-KAT-Sample": "0"},
        )
        model_s += time.perf_counter() - t1
        call = resp.choices[0].message.tool_calls[0]
        messages.append(resp.choices[0].message.model_dump(exclude_none=True))
        if call.function.name == "submit":
            break
        t2 = time.perf_counter()
        proc = subprocess.run(
            ["bash", "-c", json.loads(call.function.arguments)["command"]],
            cwd=tree,
            capture_output=True,
            text=True,
        )
        cmd_s += time.perf_counter() - t2
        messages.append({"role": "tool", "tool_call_id": call.id, "content": proc.stdout})
    wall = time.perf_counter() - t0
    await client.close()
    return (wall - model_s - cmd_s) / STEPS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sandbox", default="bwrap", choices=["bwrap", "none"])
    args = parser.parse_args()
    ours_s: list[float] = []
    bare_s: list[float] = []
    with ScriptedServer(SCRIPT) as server, tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp)
        asyncio.run(bare(server.base_url, tree))  # warm up imports and connections
        asyncio.run(ours(server.base_url, tree, args.sandbox))
        for _ in range(args.rounds):
            bare_s.append(asyncio.run(bare(server.base_url, tree)))
            ours_s.append(asyncio.run(ours(server.base_url, tree, args.sandbox)))
    o, b = statistics.median(ours_s), statistics.median(bare_s)
    print(
        f"overhead per step, median of {args.rounds} runs x {STEPS} steps (sandbox={args.sandbox}):"
    )
    print(f"  kat-lsp agent loop : {o * 1000:7.3f} ms")
    print(f"  bare loop          : {b * 1000:7.3f} ms")
    print(f"  ratio              : {o / b:7.2f}x  (goal <= 1.2x)")


if __name__ == "__main__":
    main()
