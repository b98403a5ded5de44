"""One agent sample of phase `generate` or `testgen`, from checkout to patch.

A sample gets its own checkout of the snapshot, a sandboxed executor bound to it, the
three tools and a fresh conversation; whatever happens, its trajectory is written and
its checkout removed. The patch is the checkout's diff against the snapshot, also
when a limit ended the sample (then marked by `exit_status`). The sandbox is closed
before the host reads the tree, so nothing can change it meanwhile; changed files are
read from the blobs git hashed (a symlink is its target text), never by following
paths. A tree the host cannot read (a path git refuses, a FIFO where git expects a
file, too much content) ends only this sample: exit status `tree_error`, with the
reason in the trajectory and in the run record.
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
from kat_lsp.workspace import Snapshot, WorkspaceError, create_checkout
from kat_lsp.workspace.checkouts import Changes

log = logging.getLogger(__name__)

TREE_ERROR = "tree_error"
"""Exit status of a sample whose tree the host could not read (its reason says why)."""


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

    @property
    def reason(self) -> str:
        """`exit_status`, with what went wrong when the sample's tree ended it."""
        if self.exit_status == TREE_ERROR:
            return f"{TREE_ERROR}: {self.outcome.message}"
        return self.exit_status


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
    """Run one sample to its end. Never raises for failures of the model or tools, except
    EndpointError (a misconfigured endpoint stops the run): its trajectory is still saved
    and its checkout removed."""
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
                await executor.aclose()
                executor = None
                try:
                    changes = await anyio.to_thread.run_sync(checkout.changes)
                except WorkspaceError as exc:
                    changes = Changes("")
                    reason = f"the sample's tree cannot be read: {exc}"
                    outcome = AgentOutcome(TREE_ERROR, reason, {}, agent.steps, agent.usage)
                    trajectory.info.update(exit_status=TREE_ERROR, reason=reason)
                trajectory.info["submission"] = changes.patch
                await anyio.to_thread.run_sync(trajectory.save, agent.messages)
        command = outcome.payload.get("command") if phase == "testgen" else None
        return SampleOutcome(ctx, changes.patch, outcome, command=command, files=changes.files)
    finally:
        with anyio.CancelScope(shield=True):
            if executor is not None:
                await executor.aclose()
            try:
                await anyio.to_thread.run_sync(checkout.remove)
            except OSError:
                log.exception("could not remove checkout %s", checkout.path)
