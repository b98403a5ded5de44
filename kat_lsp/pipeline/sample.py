"""One agent sample of phase `generate` or `testgen`, from checkout to patch.

A sample gets its own checkout of the snapshot, a sandboxed executor bound to it, the
three tools and a fresh conversation; whatever happens, its trajectory is written and
its checkout removed. The patch is the checkout's diff against the snapshot, also
when a limit ended the sample (then marked by `exit_status`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from kat_lsp.agent.loop import Agent, AgentOutcome, StepCallback
from kat_lsp.agent.templates import render
from kat_lsp.agent.tools import make_tools
from kat_lsp.agent.trajectory import Trajectory
from kat_lsp.config import KatConfig
from kat_lsp.interfaces import Executor, Model, RequestContext, Tool, Usage
from kat_lsp.sandbox import make_executor
from kat_lsp.workspace import Snapshot, create_checkout

log = logging.getLogger(__name__)


@dataclass
class SampleOutcome:
    """A finished sample: its patch (empty when nothing changed) and how it ended."""

    ctx: RequestContext
    patch: str
    outcome: AgentOutcome
    command: str | None = None
    """phase testgen: the submitted test command."""
    files: dict[str, bytes | None] = field(default_factory=dict)
    """Resulting content of each changed file (None: deleted), for semantic dedup."""

    @property
    def exit_status(self) -> str:
        return self.outcome.exit_status

    @property
    def usage(self) -> Usage:
        return self.outcome.usage


def initial_messages(
    phase: str, issue: str, config: KatConfig, tools: list[Tool], reflection: str | None = None
) -> list[dict[str, Any]]:
    """System + user message of a sample. Identical for every sample of a round, so that
    the K first requests share one prompt prefix."""
    system = render(f"{phase}_system")
    if config.tool_mode == "text":
        from kat_lsp.model.text_mode import render_tool_instructions

        system += "\n\n" + render_tool_instructions([t.schema() for t in tools])
    user = render(f"{phase}_instance", issue=issue.strip())
    if reflection:
        user += "\n\n" + render("reflection_note", reflection=reflection.strip())
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


async def run_sample(
    *,
    ctx: RequestContext,
    issue: str,
    snapshot: Snapshot,
    config: KatConfig,
    model: Model,
    run_dir: Path | None,
    reflection: str | None = None,
    on_step: StepCallback | None = None,
    on_start: Callable[[], None] | None = None,
) -> SampleOutcome:
    """Run one sample to its end. Never raises for failures of the model or tools."""
    phase = ctx.phase
    name = f"{phase}-{ctx.sample}"
    checkout = await anyio.to_thread.run_sync(create_checkout, snapshot, name)
    executor: Executor | None = None
    try:
        if on_start is not None:
            on_start()
        executor = make_executor(checkout.path, config, view=snapshot.sandbox_view())
        tools = make_tools(phase, checkout.path, executor, config)
        trajectory = Trajectory(
            run_dir / "trajectories" / f"{name}.traj.json" if run_dir else None,
            {
                "run_id": ctx.run_id,
                "phase": phase,
                "round": ctx.round,
                "sample": ctx.sample,
                "environment": {"checkout": str(checkout.path), "snapshot": snapshot.commit},
            },
        )
        agent = Agent(model, tools, config, ctx, trajectory=trajectory, on_step=on_step)
        messages = initial_messages(phase, issue, config, tools, reflection)
        try:
            outcome = await agent.run(messages)
        finally:
            # Runs on cancellation too: the diff is cheap and the trajectory is evidence.
            with anyio.CancelScope(shield=True):
                patch = await anyio.to_thread.run_sync(checkout.diff)
                files = await anyio.to_thread.run_sync(_changed_contents, checkout) if patch else {}
                trajectory.info["submission"] = patch
                await anyio.to_thread.run_sync(trajectory.save, agent.messages)
        command = outcome.payload.get("command") if phase == "testgen" else None
        return SampleOutcome(ctx, patch, outcome, command=command, files=files)
    finally:
        with anyio.CancelScope(shield=True):
            if executor is not None:
                await executor.aclose()
            await anyio.to_thread.run_sync(checkout.remove)


def _changed_contents(checkout: Any) -> dict[str, bytes | None]:
    result: dict[str, bytes | None] = {}
    for rel in checkout.changed_files():
        path = checkout.path / rel
        result[rel] = path.read_bytes() if path.is_file() else None
    return result
