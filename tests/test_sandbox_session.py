"""The persistent sandbox of `BwrapExecutor`: one bubblewrap sandbox serves all of a
sample's commands, and nothing a command starts outlives it. Real bwrap, real processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kat_lsp.sandbox import BwrapExecutor
from tests.processes import descendants, marked_sleep, processes_with, until_gone, until_running

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[BwrapExecutor]:
    """A sandbox over the test's own tmp_path; stopped after the test."""
    executor = BwrapExecutor(tmp_path, timeout=30)
    yield executor
    await executor.aclose()


async def namespace(executor: BwrapExecutor) -> str:
    result = await executor.run("readlink /proc/self/ns/pid")
    assert result.exit_code == 0, result.output
    return result.output


async def wait_until_stopped(executor: BwrapExecutor) -> None:
    for _ in range(200):
        if executor.sandbox_pid is None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the sandbox did not stop")


async def test_one_sandbox_serves_every_command(sandbox: BwrapExecutor) -> None:
    first_ns = await namespace(sandbox)
    pid = sandbox.sandbox_pid
    assert pid is not None
    await sandbox.run("echo kept > /tmp/note && mkdir -p ~/cfg && echo h > ~/cfg/x")
    later = await sandbox.run("cat /tmp/note ~/cfg/x")
    assert later.output == "kept\nh\n"
    assert await namespace(sandbox) == first_ns and sandbox.sandbox_pid == pid

    other = BwrapExecutor(sandbox.root)
    try:
        assert await namespace(other) != first_ns
        alone = await other.run("cat /tmp/note")
        assert alone.exit_code != 0 and "No such file" in alone.output
    finally:
        await other.aclose()


async def test_start_boots_the_sandbox_that_the_first_command_then_uses(
    sandbox: BwrapExecutor,
) -> None:
    assert sandbox.sandbox_pid is None
    await sandbox.start()
    pid = sandbox.sandbox_pid
    assert pid is not None
    await sandbox.start()  # idempotent
    result = await sandbox.run("echo ready")
    assert result.output == "ready\n" and sandbox.sandbox_pid == pid


async def test_only_the_sandbox_itself_is_left_between_commands(sandbox: BwrapExecutor) -> None:
    marker = f"kat-test-{uuid.uuid4().hex[:12]}"
    started = await sandbox.run(
        f"{marked_sleep(marker)} & setsid {marked_sleep(marker)} & "
        f"( {marked_sleep(marker)} & ) ; nohup {marked_sleep(marker)} >/dev/null 2>&1 & echo up"
    )
    assert started.output == "up\n" and started.exit_code == 0
    assert processes_with(marker) == []
    listing = await sandbox.run("ps -e -o args=")
    lines = listing.output.splitlines()
    assert len(lines) == 3, lines  # bwrap's init, the supervisor, ps
    assert lines[0].startswith(sandbox.bwrap) and "supervisor.py" in lines[1]
    assert lines[2] == "ps -e -o args="


async def test_a_timeout_kills_the_command_and_the_sandbox_goes_on(
    sandbox: BwrapExecutor,
) -> None:
    marker = f"kat-test-{uuid.uuid4().hex[:12]}"
    await sandbox.run("true")
    pid = sandbox.sandbox_pid
    late = await sandbox.run(f"echo x > /tmp/keep; {marked_sleep(marker)} & sleep 100", timeout=1)
    assert late.timed_out and late.exit_code is None
    assert processes_with(marker) == []
    after = await sandbox.run("cat /tmp/keep")
    assert after.output == "x\n" and after.exit_code == 0
    assert pid is not None and sandbox.sandbox_pid == pid


async def test_a_supervisor_killed_from_outside_is_restarted(sandbox: BwrapExecutor) -> None:
    await sandbox.run("echo x > /tmp/lost")
    old = sandbox.sandbox_pid
    assert old is not None
    supervisors = [
        p for p, cmd in descendants(old).items() if cmd.startswith(sandbox.supervisor[0])
    ]
    assert len(supervisors) == 1
    os.kill(supervisors[0], signal.SIGKILL)
    await wait_until_stopped(sandbox)

    result = await sandbox.run("cat /tmp/lost; echo ran")
    assert result.output.startswith("[kat-lsp: the sandbox had stopped since the previous command")
    assert "killed by signal 9" in result.output and result.output.endswith("ran\n")
    assert "No such file" in result.output  # a fresh sandbox: its /tmp is empty
    assert sandbox.sandbox_pid not in (None, old)
    assert (await sandbox.run("echo again")).output == "again\n"


async def test_a_command_that_kills_the_supervisor_is_told(sandbox: BwrapExecutor) -> None:
    marker = f"kat-test-{uuid.uuid4().hex[:12]}"
    await sandbox.run("echo x > /tmp/lost")
    result = await sandbox.run(f"{marked_sleep(marker)} & echo partial; kill -9 $PPID; sleep 5")
    assert result.exit_code == -9 and not result.timed_out
    assert "the sandbox stopped while this command ran" in result.output
    assert "killed by signal 9" in result.output and "next command gets a fresh" in result.output
    assert await until_gone(marker) == []
    fresh = await sandbox.run("test -e /tmp/lost || echo fresh; pwd")
    assert fresh.output == f"fresh\n{sandbox.root}\n"


async def test_a_stopped_supervisor_counts_as_hung(sandbox: BwrapExecutor) -> None:
    marker = f"kat-test-{uuid.uuid4().hex[:12]}"
    sandbox.reply_grace = 1
    result = await sandbox.run(f"{marked_sleep(marker)} & kill -STOP $PPID; sleep 100", timeout=1)
    assert result.timed_out and result.exit_code is None
    assert "the sandbox stopped answering" in result.output
    assert await until_gone(marker) == []
    assert (await sandbox.run("echo back")).output == "back\n"


async def test_cancelling_mid_command_leaves_no_process(sandbox: BwrapExecutor) -> None:
    marker = f"kat-test-{uuid.uuid4().hex[:12]}"
    task = asyncio.create_task(sandbox.run(f"{marked_sleep(marker)} & setsid sleep 1000"))
    await until_running(marker)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sandbox.sandbox_pid is None
    assert await until_gone(marker) == [] and await until_gone(str(sandbox.root)) == []
    assert (await sandbox.run("echo next")).output == "next\n"


async def test_aclose_leaves_no_process(tmp_path: Path) -> None:
    marker = f"kat-test-{uuid.uuid4().hex[:12]}"
    executor = BwrapExecutor(tmp_path)
    await executor.run("true")
    pid = executor.sandbox_pid
    assert pid is not None and len(descendants(pid)) == 2  # init, supervisor
    running = asyncio.create_task(executor.run(f"{marked_sleep(marker)} & wait"))
    await until_running(marker)
    await executor.aclose()
    died = await running
    assert "the sandbox stopped while this command ran" in died.output
    assert await until_gone(str(tmp_path)) == [] and processes_with(marker) == []
    await executor.aclose()  # idempotent
    assert (await executor.run("echo reopened")).output == "reopened\n"
    await executor.aclose()
    assert await until_gone(str(tmp_path)) == []


async def test_many_executors_in_parallel(tmp_path: Path) -> None:
    executors = []
    for index in range(6):
        root = tmp_path / f"tree{index}"
        root.mkdir()
        executors.append(BwrapExecutor(root, timeout=60))

    async def sample(index: int, executor: BwrapExecutor) -> list[str]:
        outputs = []
        for step in range(4):
            command = f"echo {index}.{step} >> /tmp/log && cat /tmp/log | wc -l && pwd"
            outputs.append((await executor.run(command)).output)
        return outputs

    try:
        results = await asyncio.gather(*(sample(i, e) for i, e in enumerate(executors)))
        namespaces = {await namespace(e) for e in executors}
    finally:
        await asyncio.gather(*(e.aclose() for e in executors))
    for index, outputs in enumerate(results):
        assert outputs == [f"{step + 1}\n{tmp_path / f'tree{index}'}\n" for step in range(4)]
    assert len(namespaces) == len(executors)
    assert await until_gone(str(tmp_path)) == []


async def test_concurrent_calls_on_one_sandbox_run_one_after_another(
    sandbox: BwrapExecutor,
) -> None:
    first, second = await asyncio.gather(
        sandbox.run("sleep 0.3; echo one > /tmp/order; echo first"),
        sandbox.run("cat /tmp/order"),
    )
    assert first.output == "first\n" and second.output == "one\n"


async def test_a_sandbox_that_cannot_start_says_why(tmp_path: Path) -> None:
    tree, missing = tmp_path / "tree", tmp_path / "missing"
    tree.mkdir()
    executor = BwrapExecutor(tree, extra_ro_binds=[missing])
    try:
        result = await executor.run("touch ran")
        assert result.output.startswith("kat-lsp: the sandbox could not start")
        assert f"Can't find source path {missing}" in result.output
        assert "did not run" in result.output and result.exit_code is None
        assert not (tree / "ran").exists()
        missing.mkdir()
        assert (await executor.run("echo ok")).output == "ok\n"
    finally:
        await executor.aclose()


def test_an_executor_moves_to_a_new_event_loop(tmp_path: Path) -> None:
    """The first loop ends without `aclose`: its sandbox goes with it, cleanly."""
    executor = BwrapExecutor(tmp_path)
    first = asyncio.run(executor.run("echo x > /tmp/a; readlink /proc/self/ns/pid"))
    assert asyncio.run(until_gone(str(tmp_path))) == []
    second = asyncio.run(executor.run("test -e /tmp/a || echo fresh; readlink /proc/self/ns/pid"))
    asyncio.run(executor.aclose())
    assert first.exit_code == 0 and second.exit_code == 0
    assert second.output.startswith("fresh\npid:[")
    assert second.output.splitlines()[-1] != first.output.strip()
    assert processes_with(str(tmp_path)) == []


async def test_a_command_that_cannot_start_is_reported(tmp_path: Path) -> None:
    executor = BwrapExecutor(
        tmp_path, bwrap=shutil.which("bwrap") or "bwrap", env={"PATH": "/nowhere"}
    )
    try:
        result = await executor.run("true")
        assert result.exit_code == 127 and "kat-lsp: could not start bash" in result.output
    finally:
        await executor.aclose()


async def test_an_interpreter_and_supervisor_under_tmp_are_bound_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/tmp is private inside: a Python (or kat-lsp) installed below it must be bound in."""
    import subprocess
    import sys

    from kat_lsp.sandbox import supervisor

    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--copies", str(venv)], check=True
    )
    script = tmp_path / "pkg" / "supervisor.py"
    script.parent.mkdir()
    shutil.copy(supervisor.__file__, script)
    monkeypatch.setattr(sys, "executable", str(venv / "bin" / "python"))
    monkeypatch.setattr(supervisor, "__file__", str(script))
    tree = tmp_path / "tree"
    tree.mkdir()
    executor = BwrapExecutor(tree)
    try:
        result = await executor.run("ps -e -o args= | sed -n 2p; ls /tmp")
    finally:
        await executor.aclose()
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{venv}/bin/python -I -S {script}\n")
