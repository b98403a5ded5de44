"""Per-sample limits of the sandbox (memory, processes, /tmp, file size): each one hit by a
real command in a real sandbox, the note the model then reads, the sandbox still usable
afterwards; with cgroups where this machine has writable ones, and with the setrlimit
fallback forced by KAT_SANDBOX_CGROUPS=off. Small limits keep the tests light."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kat_lsp.sandbox import BwrapExecutor, cgroups
from kat_lsp.sandbox.cgroups import SWITCH, describe_limits, support
from kat_lsp.sandbox.limits import SandboxLimits, limit_note, observed_hits

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")

SMALL = SandboxLimits(memory_mb=256, pids=64, tmp_mb=16, file_mb=8)
HOG = "python3 -c 'x = bytearray(400 << 20); print(len(x))'"


@pytest.fixture(params=["cgroups", "fallback"])
async def sandbox(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BwrapExecutor]:
    if request.param == "fallback":
        monkeypatch.setenv(SWITCH, "off")
    elif not (support().v2 or support().v1):
        pytest.skip("no writable cgroup on this machine")
    executor = BwrapExecutor(tmp_path, timeout=30, limits=SMALL)
    yield executor
    await executor.aclose()


def cgroup_limits(executor: BwrapExecutor) -> set[str]:
    session = executor._session
    return set(session.cgroup.limits) if session and session.cgroup else set()


async def still_usable(executor: BwrapExecutor) -> None:
    result = await executor.run("echo still here")
    assert result.exit_code == 0 and result.output == "still here\n", result.output


async def test_memory_limit(sandbox: BwrapExecutor) -> None:
    result = await sandbox.run(HOG)
    assert result.exit_code != 0 and str(400 << 20) not in result.output, result.output
    assert "the sandbox's memory limit (256 MiB" in result.output, result.output
    assert "sandbox_memory_mb" in result.output
    if "memory" in cgroup_limits(sandbox):
        assert "for all its processes together" in result.output
        assert "killed one of its processes (out of memory)" in result.output
    else:
        assert "MemoryError" in result.output and "per process" in result.output
    await still_usable(sandbox)


async def test_file_size_limit(sandbox: BwrapExecutor, tmp_path: Path) -> None:
    result = await sandbox.run("head -c 20M /dev/zero > big.bin")
    assert result.exit_code == 153, result.output
    assert (tmp_path / "big.bin").stat().st_size == 8 << 20
    assert (
        "file size limit (8 MiB per file)" in result.output and "sandbox_file_mb" in result.output
    )
    python = await sandbox.run(
        'python3 -c \'open("/tmp/big", "wb").write(bytes(9 << 20))\'; rm -f /tmp/big'
    )
    assert "File too large" in python.output and "sandbox_file_mb" in python.output
    raised = await sandbox.run("ulimit -f unlimited && echo raised")
    assert "raised" not in raised.output  # the hard limit too: a command cannot lift it
    await still_usable(sandbox)


async def test_process_limit(sandbox: BwrapExecutor) -> None:
    await sandbox.start()
    if "pids" not in cgroup_limits(sandbox):
        pytest.skip("no process limit without a pids cgroup here (root, no user namespace)")
    result = await sandbox.run("for i in $(seq 100); do sleep 5 & done; wait")
    assert "the sandbox's process limit (64 processes and threads)" in result.output
    assert "sandbox_pids" in result.output
    await still_usable(sandbox)


async def test_tmp_limit(sandbox: BwrapExecutor) -> None:
    if "--size" not in sandbox.argv("true"):
        pytest.skip("bwrap.py does not size the /tmp tmpfs yet")
    result = await sandbox.run("for i in 1 2 3; do head -c 7M /dev/zero > /tmp/fill$i; done")
    assert "No space left on device" in result.output, result.output
    assert "/tmp is full: it holds at most 16 MiB" in result.output
    assert "sandbox_tmp_mb" in result.output
    await sandbox.run("rm -f /tmp/fill*")
    await still_usable(sandbox)


async def test_a_command_under_the_limits_gets_no_note(sandbox: BwrapExecutor) -> None:
    result = await sandbox.run(
        "python3 -c 'x = bytearray(32 << 20)'; head -c 1M /dev/zero > f; echo fine"
    )
    assert result.output == "fine\n" and result.exit_code == 0


def test_fallback_is_described(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH, "off")
    line = describe_limits(SMALL)
    assert "memory 256 MiB (setrlimit RLIMIT_DATA, per process)" in line
    assert "file size 8 MiB (setrlimit RLIMIT_FSIZE)" in line and "cgroup" not in line


def test_notes_name_value_and_setting() -> None:
    hits = observed_hits(
        SMALL, "bash: fork: retry: Resource temporarily unavailable", 1, True, set()
    )
    assert hits == {"pids", "tmp"}
    note = limit_note(SMALL, hits, set())
    assert "64 processes and threads" in note and "sandbox_pids" in note
    assert "16 MiB" in note and "sandbox_tmp_mb" in note
    unlimited = SandboxLimits(memory_mb=0, pids=0, tmp_mb=0, file_mb=0)
    assert observed_hits(unlimited, "MemoryError File too large", 153, True, set()) == set()


@pytest.mark.skipif(not (support().v2 or support().v1), reason="no writable cgroup here")
async def test_cgroups_are_removed_on_close_and_stale_ones_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kat-lsp killed outright leaves empty cgroups behind: the next start removes them."""
    dead = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout.strip()
    found = support()
    bases = [base for base in [found.v2, *found.v1.values()] if base is not None]
    stale = [base / f"kat-lsp-{dead}-7" for base in bases]
    for path in stale:
        path.mkdir()
    monkeypatch.setattr(cgroups, "_swept", set())
    executor = BwrapExecutor(tmp_path, limits=SMALL)
    try:
        await executor.start()
        assert not any(path.exists() for path in stale)
        session = executor._session
        assert session is not None and session.cgroup is not None
        mine = list(session.cgroup.dirs.values())
        assert len(mine) == len(bases) and all(path.is_dir() for path in mine)
    finally:
        await executor.aclose()
    assert not any(path.exists() for path in mine)
