"""Progress display of `kat-lsp fix`: a rich live table on a terminal, plain lines otherwise.

Both render the pipeline's `RunEvent` stream; the live table redraws at most a few
times a second, the plain display prints one line per change of phase or sample.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, TextIO

from kat_lsp.pipeline.api import RunEvent, RunResult, SampleState


class PlainDisplay:
    """One line per phase change, sample step and sample end (for logs and pipes)."""

    def __init__(self, stream: TextIO, quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self.last_phase = ""
        self.seen: dict[tuple[str, int], tuple[str, int]] = {}
        self.tests_shown = False

    def __enter__(self) -> PlainDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def line(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def update(self, event: RunEvent) -> None:
        if event.phase != self.last_phase:
            self.last_phase = event.phase
            self.line(f"[{event.percentage:3d}%] {event.phase}: {event.message}")
        for s in event.samples:
            key = (s.phase, s.index)
            now = (s.status, s.steps)
            if self.seen.get(key, ("pending", 0)) == now:
                continue
            self.seen[key] = now
            if s.status == "running" and s.steps:
                self.line(f"  {s.phase} #{s.index} step {s.steps}: {s.last_action}")
            elif s.status not in ("pending", "running"):
                self.line(
                    f"  {s.phase} #{s.index} {s.status} ({s.exit_status}, {s.steps} steps, {s.tokens} tokens)"
                )
        if event.tests and not self.tests_shown:
            self.tests_shown = True
            for t in event.tests:
                verdict = "kept" if t.kept else "dropped"
                self.line(f"  test #{t.index} {verdict}: {t.command or '(none)'} - {t.reason}")


class LiveDisplay:
    """A rich live table of samples under a header with the run's phase."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream)
        self.live = Live(console=self.console, refresh_per_second=8, transient=False)
        self.event: RunEvent | None = None
        self.last_draw = 0.0

    def __enter__(self) -> LiveDisplay:
        self.live.__enter__()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.event is not None:
            self.live.update(self.render(self.event))
        self.live.__exit__(et, ev, tb)

    def update(self, event: RunEvent) -> None:
        self.event = event
        now = time.monotonic()
        if now - self.last_draw > 0.1:
            self.last_draw = now
            self.live.update(self.render(event))

    def render(self, event: RunEvent) -> Any:
        from rich.table import Table

        table = Table(
            title=f"{event.phase} {event.percentage}% · {event.message}", title_justify="left"
        )
        for col in ("sample", "round", "status", "steps", "tokens", "last action"):
            table.add_column(col, no_wrap=col != "last action")
        for t in event.tests:
            verdict = "[green]kept[/]" if t.kept else "[yellow]dropped[/]"
            table.add_row(f"test #{t.index}", "", verdict, "", "", f"{t.command} - {t.reason}"[:80])
        for s in event.samples:
            table.add_row(
                f"{s.phase} #{s.index}",
                str(s.round),
                _status(s),
                str(s.steps),
                str(s.tokens),
                s.last_action[:80],
            )
        return table


def _status(s: SampleState) -> str:
    colors = {"running": "cyan", "submitted": "green", "failed": "red", "limits_exceeded": "yellow"}
    color = colors.get(s.status)
    return f"[{color}]{s.status}[/]" if color else s.status


def make_display(stream: TextIO, *, quiet: bool) -> PlainDisplay | LiveDisplay:
    if not quiet and stream.isatty():
        return LiveDisplay(stream)
    return PlainDisplay(stream, quiet)


def print_ranked(stream: TextIO, result: RunResult) -> None:
    """The final ranked table (rich on a terminal, plain text otherwise)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream, soft_wrap=True)
    table = Table(
        title=f"run {result.run_id}: {len(result.candidates)} candidate(s)", title_justify="left"
    )
    for col in ("rank", "id", "score", "tests", "agree", "round", "files"):
        table.add_column(col)
    for c in result.candidates:
        score = "-" if c.judge_score is None else f"{c.judge_score:g}"
        table.add_row(
            str(c.rank),
            c.id,
            score,
            f"{c.tests_passed}/{c.tests_total}",
            str(c.cluster_size),
            str(c.round),
            ", ".join(c.files),
        )
    console.print(table)
