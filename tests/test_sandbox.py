"""The executors for real: bubblewrap isolation, process-tree kills, clipping, environment."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kat_lsp.config import KatConfig
from kat_lsp.exceptions import SandboxUnavailable
from kat_lsp.interfaces import Executor
from kat_lsp.sandbox import (
    BwrapExecutor,
    LocalExecutor,
    SandboxLimits,
    SandboxView,
    check_sandbox,
    command_env,
    make_executor,
)
from tests.processes import marked_sleep, processes_with, until_gone, until_running

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    return root


@pytest.fixture
async def sandbox(tree: Path) -> AsyncIterator[BwrapExecutor]:
    executor = BwrapExecutor(tree, timeout=30, output_cap=10_000)
    yield executor
    await executor.aclose()


@pytest.fixture(params=["bwrap", "local"])
async def any_executor(request: pytest.FixtureRequest, tree: Path) -> AsyncIterator[Executor]:
    kind = BwrapExecutor if request.param == "bwrap" else LocalExecutor
    executor = kind(tree, timeout=30, output_cap=10_000)
    yield executor
    await executor.aclose()


# --- running and output -------------------------------------------------------------


async def test_exit_code_and_combined_output(any_executor: Executor) -> None:
    result = await any_executor.run("echo out; echo err >&2; exit 3")
    assert result.exit_code == 3 and not result.timed_out
    assert result.output == "out\nerr\n"


async def test_clipping_keeps_head_and_tail(any_executor: Executor) -> None:
    result = await any_executor.run("seq 1 200000", output_cap=1000)
    full = "".join(f"{i}\n" for i in range(1, 200001))
    assert result.clipped and result.exit_code == 0
    assert result.output.startswith(full[:500])
    assert result.output.endswith(full[-500:])
    assert f"[... {len(full) - 1000} characters clipped: use head/tail/grep" in result.output


async def test_gigantic_output_does_not_fill_memory(sandbox: BwrapExecutor) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = await sandbox.run("head -c 300000000 /dev/zero | tr '\\0' a; echo; echo END")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.clipped and result.output.endswith("a\nEND\n")
    assert len(result.output) < 10_200
    assert grown_mb < 100, f"peak memory grew by {grown_mb:.0f} MB for 300 MB of output"


async def test_undecodable_output_is_replaced(any_executor: Executor) -> None:
    result = await any_executor.run("printf 'caf\\xe9\\n'")
    assert result.output == "caf\ufffd\n"


# --- process lifetime ---------------------------------------------------------------


async def test_timeout_kills_the_whole_tree(any_executor: Executor, tree: Path) -> None:
    marker = f"kat-test-{uuid.uuid4().hex[:12]}"
    command = f"(sleep 3; touch late-marker) & {marked_sleep(marker)} & sleep 1000"
    result = await any_executor.run(command, timeout=1)
    assert result.timed_out and result.exit_code is None
    assert processes_with(marker) == []
    await asyncio.sleep(3.5)
    assert not (tree / "late-marker").exists()


async def test_background_children_die_when_the_command_ends(any_executor: Executor) -> None:
    marker = f"kat-test-{uuid.uuid4().hex[:12]}"
    result = await any_executor.run(f"{marked_sleep(marker, 300)} & sleep 300 & echo started")
    assert result.exit_code == 0 and result.output == "started\n"
    assert processes_with(marker) == []


async def test_sandbox_kills_processes_that_leave_the_group(sandbox: BwrapExecutor) -> None:
    marker = f"kat-test-{uuid.uuid4().hex[:12]}"
    result = await sandbox.run(f"setsid {marked_sleep(marker)} & sleep 1000", timeout=1)
    assert result.timed_out
    assert processes_with(marker) == []


async def test_cancelling_a_run_kills_its_tree(any_executor: Executor) -> None:
    marker = f"kat-test-{uuid.uuid4().hex[:12]}"
    task = asyncio.create_task(any_executor.run(f"{marked_sleep(marker)} & echo up; wait"))
    await until_running(marker)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await until_gone(marker) == []


# --- isolation ----------------------------------------------------------------------


@pytest.fixture
def listening_port() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


async def test_no_network_inside(sandbox: BwrapExecutor, tree: Path, listening_port: int) -> None:
    connect = f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {listening_port}), 3)\""
    outside = await LocalExecutor(tree).run(connect)
    assert outside.exit_code == 0, outside.output
    inside = await sandbox.run(connect)
    assert inside.exit_code != 0 and "ConnectionRefusedError" in inside.output
    interfaces = await sandbox.run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
    assert interfaces.output == "lo\n"


@pytest.fixture
def visible() -> Iterator[Path]:
    """A folder outside the homes, /tmp, /var/tmp and /run: visible (read-only) inside."""
    for parent in ("/srv", "/opt", "/mnt", os.getcwd()):  # cwd: a CI checkout, non-root
        if os.access(parent, os.W_OK):
            folder = Path(tempfile.mkdtemp(prefix="kat-test-", dir=parent))
            yield folder
            shutil.rmtree(folder)
            return
    pytest.skip("no writable folder outside /tmp (/srv, /opt, /mnt, the current folder)")


async def test_cannot_write_outside_the_tree(
    sandbox: BwrapExecutor, tmp_path: Path, visible: Path
) -> None:
    name = f"kat-test-{uuid.uuid4().hex[:12]}"
    sibling = tmp_path / "sibling"
    sibling.mkdir()
    attempts = {
        "etc": f"touch /etc/{name}",
        "remount": f"mount -o remount,rw / && touch /etc/{name}",
        "visible": f"echo x > {visible}/{name}",
        "var-tmp": f"echo x > /var/tmp/{name}",
        "root-home": f"echo x > /root/{name}",
        "sibling": f"mkdir -p {sibling} && echo x > {sibling}/{name}",
    }
    for label, command in attempts.items():
        result = await sandbox.run(command)
        assert not Path("/etc", name).exists(), label
        if label != "sibling":  # the private /tmp may accept it; the real folder must not
            assert result.exit_code != 0, (label, result.output)
    assert not (visible / name).exists() and not (sibling / name).exists()
    assert not Path("/var/tmp", name).exists() and not Path("/root", name).exists()


async def test_tree_home_and_private_tmp_are_writable(sandbox: BwrapExecutor, tree: Path) -> None:
    name = f"kat-test-{uuid.uuid4().hex[:12]}"
    result = await sandbox.run(
        f"echo made > made.txt && echo t > /tmp/{name} && cat /tmp/{name} && touch ~/x && pwd"
    )
    assert result.exit_code == 0, result.output
    assert result.output == f"t\n{tree}\n"
    assert (tree / "made.txt").read_text() == "made\n"
    assert not Path("/tmp", name).exists()


SECRETS = {"OPENAI_API_KEY": "leak-me", "DATABASE_URL": "postgres://u:leak-me@h/db",
           "GITHUB_PAT": "leak-me", "SLACK_WEBHOOK_URL": "https://leak-me", "db_password": "leak-me",
           "SENTRY_DSN": "https://leak-me@s/1"}  # fmt: skip


async def test_the_environment_is_an_allowlist(monkeypatch: pytest.MonkeyPatch, tree: Path) -> None:
    """Secrets whose names no denylist would catch stay out; so does anything not allowed."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KAT_VISIBLE", "yes")
    monkeypatch.setenv("LC_TIME", "C")
    for executor in (BwrapExecutor(tree), LocalExecutor(tree)):
        result = await executor.run("env")
        await executor.aclose()
        assert "leak-me" not in result.output
        assert "KAT_VISIBLE" not in result.output
        assert "LC_TIME=C\n" in result.output and "PAGER=cat\n" in result.output
    for executor in (BwrapExecutor(tree, env_allow=["KAT_VISIBLE"]),
                     LocalExecutor(tree, env_allow=["KAT_VISIBLE"])):  # fmt: skip
        result = await executor.run("echo $KAT_VISIBLE; echo $HOME")
        await executor.aclose()
        assert result.output.startswith("yes\n")
    assert result.output == f"yes\n{os.environ['HOME']}\n"  # the local executor's real HOME


def test_command_env_keeps_only_allowed_names() -> None:
    env = {"API_KEY": "1", "DATABASE_URL": "1", "PATH": "/bin", "HOME": "/h", "LANG": "C",
           "LC_ALL": "C", "VIRTUAL_ENV": "/v", "MY_VAR": "x", "TERM": "xterm"}  # fmt: skip
    made = command_env(env, home="/sandbox-home", allow=["MY_VAR"])
    assert {k: made[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV", "MY_VAR")} == {
        "PATH": "/bin", "HOME": "/sandbox-home", "LANG": "C", "LC_ALL": "C",
        "VIRTUAL_ENV": "/v", "MY_VAR": "x"}  # fmt: skip
    assert "API_KEY" not in made and "DATABASE_URL" not in made and made["TERM"] == "dumb"


@pytest.fixture
def fake_home(monkeypatch: pytest.MonkeyPatch, visible: Path) -> Path:
    """A home outside /tmp with secrets, an ordinary file and a toolchain (~/.cargo)."""
    home = visible / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY leak-me\n")
    (home / ".netrc").write_text("machine x login me password leak-me\n")
    (home / "notes.txt").write_text("ordinary file leak-me\n")
    (home / ".cargo" / "bin").mkdir(parents=True)
    (home / ".cargo" / "bin" / "tool").write_text("#!/bin/sh\necho tool ran\n")
    (home / ".cargo" / "bin" / "tool").chmod(0o755)
    (home / ".cargo" / "credentials.toml").write_text("token = 'leak-me'\n")
    monkeypatch.setenv("HOME", str(home))
    return home


async def test_the_home_is_hidden_but_its_toolchains_are_not(fake_home: Path, tree: Path) -> None:
    executor = BwrapExecutor(tree)
    try:
        result = await executor.run(
            f"cat {fake_home}/.ssh/id_ed25519 {fake_home}/.netrc {fake_home}/notes.txt "
            f"{fake_home}/.cargo/credentials.toml; {fake_home}/.cargo/bin/tool; "
            f"echo $CARGO_HOME; touch {fake_home}/.cargo/new"
        )
        listing = await executor.run(f"ls -A {fake_home}")
    finally:
        await executor.aclose()
    assert "leak-me" not in result.output
    assert "tool ran\n" in result.output and f"{fake_home}/.cargo\n" in result.output
    assert result.output.count("No such file") == 3 and "Read-only file system" in result.output
    assert listing.output == ".cargo\n"
    assert (fake_home / ".netrc").read_text().startswith("machine")  # outside: untouched


async def test_read_paths_and_the_user_repository(fake_home: Path, visible: Path) -> None:
    """`read_paths` bind a folder of the home back; the user's repository (`view.hidden`)
    stays hidden even when inside a read path; the checkout stays writable."""
    (fake_home / "tools").mkdir()
    (fake_home / "tools" / "lib.txt").write_text("shared tool\n")
    repo = visible / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".env").write_text("TOKEN=leak-me\n")
    checkout = visible / "checkout"
    checkout.mkdir()
    executor = BwrapExecutor(
        checkout, view=SandboxView(hidden=(repo,)), read_paths=[fake_home / "tools", visible]
    )
    try:
        result = await executor.run(
            f"cat {fake_home}/tools/lib.txt; cat {repo}/.env; ls -A {repo}; echo w > written"
        )
    finally:
        await executor.aclose()
    assert result.output.startswith("shared tool\n") and "leak-me" not in result.output
    assert (checkout / "written").read_text() == "w\n"


async def test_capability_bounding_set_is_empty(sandbox: BwrapExecutor) -> None:
    """Even run as root: no effective, permitted or bounding capabilities, and no nested
    user namespace that would hand new ones out."""
    result = await sandbox.run("grep -E '^Cap(Eff|Prm|Bnd|Amb)' /proc/self/status; unshare -U true")
    caps = dict(line.split(":\t") for line in result.output.splitlines() if line.startswith("Cap"))
    assert caps == {n: "0000000000000000" for n in ("CapPrm", "CapEff", "CapBnd", "CapAmb")}
    assert result.exit_code != 0  # unshare -U refused


async def test_tmp_size_comes_from_the_limits(tree: Path) -> None:
    executor = BwrapExecutor(tree, limits=SandboxLimits(tmp_mb=8))
    try:
        result = await executor.run("df -k --output=size /tmp | tail -1")
    finally:
        await executor.aclose()
    assert int(result.output) == 8 * 1024


async def test_git_works_inside(sandbox: BwrapExecutor) -> None:
    result = await sandbox.run(
        "git init -q && echo a > f && git add f && git commit -qm first && git log --format=%an:%s"
    )
    assert result.exit_code == 0, result.output
    assert result.output == "kat-lsp agent:first\n"
    no_message = await sandbox.run("echo b >> f && git commit -qa")
    assert no_message.exit_code != 0 and "git commit -m" in no_message.output


async def test_chained_shared_clones_under_tmp_see_borrowed_objects(tmp_path: Path) -> None:
    """The pipeline's layout: checkout -> private snapshot repo -> user repo, all in /tmp."""
    user = tmp_path / "user"
    user.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=user, check=True)
    (user / "a.txt").write_text("a\n")
    subprocess.run([*git, "add", "a.txt"], cwd=user, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=user, check=True)
    private, checkout = tmp_path / "cache" / "private", tmp_path / "cache" / "checkout"
    subprocess.run(["git", "clone", "-q", "--shared", str(user), str(private)], check=True)
    subprocess.run(["git", "clone", "-q", "--shared", str(private), str(checkout)], check=True)
    stores = (private / ".git" / "objects", user / ".git" / "objects")
    executor = BwrapExecutor(checkout, view=SandboxView(read_only=stores, hidden=(user,)))
    result = await executor.run(
        "git log --format=%s && git show HEAD:a.txt && echo b > b.txt && git add b.txt "
        "&& git commit -qm next && git diff HEAD~1 --stat && touch "
        f"{user}/.git/objects/probe"
    )
    await executor.aclose()
    assert result.output.startswith("base\na\n") and "b.txt | 1 +" in result.output
    assert result.exit_code != 0 and "Read-only file system" in result.output
    assert not (user / ".git" / "objects" / "probe").exists()


# --- choosing an executor -----------------------------------------------------------


@pytest.fixture
def path_without_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "python3", "env"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_missing_bwrap_says_how_to_install_or_opt_out(path_without_bwrap: Path, tree: Path) -> None:
    with pytest.raises(SandboxUnavailable) as caught:
        make_executor(tree, KatConfig())
    message = str(caught.value)
    assert "apt-get install bubblewrap" in message and "dnf install bubblewrap" in message
    assert 'sandbox = "none"' in message and "--sandbox none" in message
    with pytest.raises(SandboxUnavailable):
        check_sandbox(KatConfig(sandbox="bwrap"))


def test_broken_bwrap_is_reported(path_without_bwrap: Path, tree: Path) -> None:
    fake = path_without_bwrap / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(SandboxUnavailable, match="No permissions to create new namespace"):
        check_sandbox(KatConfig())


async def test_opting_out_runs_locally(path_without_bwrap: Path, tree: Path) -> None:
    config = KatConfig(sandbox="none", command_timeout=7, output_cap=123)
    assert check_sandbox(config) is None
    executor = make_executor(tree, config)
    assert isinstance(executor, LocalExecutor) and executor.output_cap == 123
    result = await executor.run("echo $PAGER > out.txt && pwd")
    assert result.exit_code == 0 and result.output == f"{tree}\n"
    assert (tree / "out.txt").read_text() == "cat\n"


def test_make_executor_uses_bwrap_by_default(tree: Path) -> None:
    executor = make_executor(tree, KatConfig(command_timeout=5, output_cap=77))
    assert isinstance(executor, BwrapExecutor)
    assert (executor.timeout, executor.output_cap) == (5, 77)
    assert os.path.isabs(executor.bwrap)
