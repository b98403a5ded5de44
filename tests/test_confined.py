"""Confined file operations (kat_lsp/workspace/confined.py) and the editor on top of them,
against real hostile trees: a helper process swapping a folder and a symbolic link with
renameat2(RENAME_EXCHANGE) while thousands of edits run, symbolic links on the way, `..`,
FIFOs, devices, sockets, a 4 GiB sparse file and a huge folder. Every test runs twice:
with openat2 and with the descriptor walk used where openat2 is missing."""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kat_lsp.agent.tools import editor as editor_module
from kat_lsp.agent.tools.editor import EditorTool
from kat_lsp.workspace import confined
from kat_lsp.workspace.confined import NotRegular, OutsideRoot, SymlinkInPath, TooLarge

CANARY = "KATCANARY"
RENAMEAT2 = {"x86_64": 316, "aarch64": 276}.get(os.uname().machine)


@pytest.fixture(params=["openat2", "walk"], autouse=True)
def resolution(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "walk":
        monkeypatch.setattr(confined, "_openat2_works", False)
    return str(request.param)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the root holding a canary file (a stand-in for the home)."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "f.txt").write_text(f"{CANARY} outside\n")
    (folder / ".gitconfig").write_text(f"[user]\n\tname = {CANARY}\n")
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f.txt").write_text("inside\n")
    return root


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


RACER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b, number = sys.argv[1].encode(), sys.argv[2].encode(), int(sys.argv[3])
print("ready", flush=True)
while True:
    libc.syscall(number, -100, a, -100, b, 2)  # renameat2(..., RENAME_EXCHANGE)
"""


@pytest.fixture
def racer(root: Path, outside: Path) -> Iterator[None]:
    """A process that keeps exchanging root/d (a folder) and root/swap (a link to outside)."""
    if RENAMEAT2 is None:
        pytest.skip("renameat2 number unknown on this architecture")
    (root / "swap").symlink_to(outside)
    proc = subprocess.Popen(
        [sys.executable, "-c", RACER, str(root / "d"), str(root / "swap"), str(RENAMEAT2)],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    yield
    proc.kill()
    proc.wait()


@pytest.mark.timeout(120)
async def test_rename_exchange_race_never_reaches_outside(
    root: Path, outside: Path, racer: None
) -> None:
    """The attack of issue 8: a folder swapped with a link to the home between the path
    check and the use. Nothing outside is ever shown, written, created or replaced."""
    before = snapshot(outside)
    tool = EditorTool(root)
    naive_saw_outside = 0
    ok = {"view": 0, "str_replace": 0, "create": 0}
    for i in range(1500):
        out = await tool({"command": "view", "path": "d/f.txt"})
        assert CANARY not in out
        ok["view"] += out.startswith("Here's")
        old, new = ("inside", "INSIDE") if i % 2 else ("INSIDE", "inside")
        out = await tool(
            {"command": "str_replace", "path": "d/f.txt", "old_str": old, "new_str": new}
        )
        assert CANARY not in out
        ok["str_replace"] += out.startswith("Edited")
        out = await tool({"command": "create", "path": f"d/n{i}.txt", "file_text": "x\n"})
        ok["create"] += out.startswith("File created")
        out = await tool({"command": "create", "path": "d/.gitconfig", "file_text": "evil\n"})
        await tool({"command": "undo_edit", "path": "d/.gitconfig"})
        with open(root / "d" / "f.txt", "rb") as naive:  # what a resolve-then-open would get
            naive_saw_outside += CANARY.encode() in naive.read()
    assert snapshot(outside) == before
    # The race was real (a by-name open did land outside) and the editor still worked.
    print(f"race: {ok}, by-name opens that landed outside: {naive_saw_outside}/1500")
    assert naive_saw_outside > 0
    assert all(count > 0 for count in ok.values()), ok


def test_symlink_components_are_refused(root: Path, outside: Path) -> None:
    (root / "d" / "link").symlink_to(outside)
    (root / "d" / "inner").symlink_to("f.txt")
    with pytest.raises(SymlinkInPath) as caught:
        confined.read_regular(root, "d/link/f.txt", 1 << 20)
    assert (caught.value.rel, caught.value.target) == ("d/link", str(outside))
    with pytest.raises(SymlinkInPath) as caught:
        confined.read_regular(root, "d/inner", 1 << 20)
    assert (caught.value.rel, caught.value.target) == ("d/inner", "f.txt")
    with pytest.raises(SymlinkInPath):
        confined.write_atomic(root, "d/link/f.txt", b"evil")
    with pytest.raises(SymlinkInPath):
        confined.write_atomic(root, "d/link/new.txt", b"evil", exclusive=True)
    with pytest.raises(SymlinkInPath):
        confined.mkdirs_beneath(root, "d/link/sub")
    with pytest.raises(SymlinkInPath):
        confined.list_dir_beneath(root, "d/link", depth=2, limit=100)
    assert snapshot(outside) == {
        ".gitconfig": f"[user]\n\tname = {CANARY}\n".encode(),
        "f.txt": f"{CANARY} outside\n".encode(),
    }


@pytest.mark.parametrize("raw", ["..", "../x", "d/../../x", "/etc/passwd", "//etc"])
def test_paths_leaving_the_root_are_refused(root: Path, raw: str) -> None:
    with pytest.raises(OutsideRoot):
        confined.relative(root, raw)


def test_paths_are_normalised_without_following_links(root: Path) -> None:
    assert confined.relative(root, "d/./x/../f.txt") == "d/f.txt"
    assert confined.relative(root, str(root / "d" / "f.txt")) == "d/f.txt"
    assert confined.relative(root, str(root)) == ""


async def test_editor_refuses_a_link_and_names_the_real_path(root: Path, outside: Path) -> None:
    (root / "d" / "alias.txt").symlink_to("f.txt")
    (root / "home").symlink_to(outside)
    tool = EditorTool(root)
    out = await tool({"command": "view", "path": "d/alias.txt"})
    assert out.startswith("Refused: d/alias.txt is a symbolic link")
    assert out.endswith("Use the path it points to instead: d/f.txt")
    out = await tool({"command": "create", "path": "home/.bashrc", "file_text": "evil"})
    assert "points outside the repository" in out and CANARY not in out
    assert not (outside / ".bashrc").exists()


@pytest.mark.timeout(30)
async def test_fifo_is_refused_promptly(root: Path) -> None:
    """A FIFO without a writer hung `view` forever; now it is refused at once."""
    os.mkfifo(root / "d" / "pipe")
    tool = EditorTool(root)
    started = time.monotonic()
    for command in ("view", "str_replace"):
        out = await tool({"command": command, "path": "d/pipe", "old_str": "a"})
        assert "FIFO (named pipe), not a regular file" in out
    assert time.monotonic() - started < 5


async def test_dev_zero_through_a_link_and_a_device_node(root: Path) -> None:
    (root / "zero").symlink_to("/dev/zero")
    tool = EditorTool(root)
    out = await tool({"command": "view", "path": "zero"})
    assert out.startswith("Refused: zero is a symbolic link (to /dev/zero)")
    try:
        os.mknod(root / "d" / "znode", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    except PermissionError:
        return  # not root: a checkout cannot hold device nodes either
    out = await tool({"command": "view", "path": "d/znode"})
    assert "character device, not a regular file" in out


async def test_socket_is_refused(root: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "d" / "sock"))
    try:
        out = await EditorTool(root)({"command": "view", "path": "d/sock"})
    finally:
        server.close()
    assert "socket, not a regular file" in out


MEASURE_RSS = """
import resource, sys, anyio
from kat_lsp.agent.tools import editor as editor_module
from kat_lsp.agent.tools.editor import EditorTool
tool = EditorTool(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
outs = [anyio.run(tool, {"command": command, "path": "big.txt", "old_str": "a", "new_str": "b",
                         "insert_line": 0}) for command in ("view", "str_replace", "insert")]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(after - before, before)
print("\\n".join(outs))
"""


def test_sparse_4gib_file_is_refused_before_reading(root: Path) -> None:
    """A 4 GiB sparse file took the host to 4.3 GB RSS; now it is refused from its size.
    Measured in a fresh process, so the peak RSS is this call's alone."""
    with open(root / "big.txt", "wb") as big:
        big.truncate(4 << 30)
    run = subprocess.run(
        [sys.executable, "-c", MEASURE_RSS, str(root)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    figures, *outs = run.stdout.splitlines()
    grown_kib, base_kib = map(int, figures.split())
    print(f"peak RSS: {base_kib} KiB before, +{grown_kib} KiB after 3 calls on a 4 GiB file")
    assert grown_kib < 20_000
    assert len(outs) == 3
    for out in outs:
        assert "big.txt is 4096.0 MB, more than the 4 MB the editor reads" in out
        assert "sed -n 1,100p big.txt" in out


def test_a_file_growing_past_the_limit_while_read_is_refused(root: Path) -> None:
    (root / "f.bin").write_bytes(b"x" * 100)
    confined.read_regular(root, "f.bin", 100)
    with pytest.raises(TooLarge):
        confined.read_regular(root, "f.bin", 99)


async def test_huge_and_deep_folders_are_listed_within_bounds(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing reads at most LIST_LIMIT entries (lowered here: creating files is slow)."""
    monkeypatch.setattr(editor_module, "LIST_LIMIT", 1_000)
    wide = root / "wide"
    wide.mkdir()
    for i in range(1_500):
        (wide / f"f{i:05d}").touch()
    root.joinpath("deep", *["x"] * 60).mkdir(parents=True)
    entries, complete = confined.list_dir_beneath(root, "wide", depth=2, limit=1_200)
    assert len(entries) == 1_200 and not complete
    out = await EditorTool(root)({"command": "view", "path": "."})
    assert len(out) < 17_000 and out.endswith(
        "not shown: view a subfolder, or use `find`/`ls` through bash.]"
    )
    assert "\ndeep/x/\n" in out and "deep/x/x" not in out
    listed = [line for line in out.splitlines() if line.startswith("wide/")]
    assert 0 < len(listed) < 1_000


def test_replace_keeps_mode_and_breaks_hard_links(root: Path, outside: Path) -> None:
    target = root / "d" / "f.txt"
    target.chmod(0o750)
    os.link(outside / "f.txt", root / "d" / "hard.txt")
    confined.write_atomic(root, "d/f.txt", b"new\n", mode=os.stat(target).st_mode)
    assert target.read_bytes() == b"new\n" and stat.S_IMODE(target.stat().st_mode) == 0o750
    confined.write_atomic(root, "d/hard.txt", b"evil\n")
    assert (outside / "f.txt").read_text() == f"{CANARY} outside\n"
    assert not [p for p in (root / "d").iterdir() if p.name.startswith(".kat-edit-")]


def test_replace_and_unlink_act_on_a_final_link_not_its_target(root: Path, outside: Path) -> None:
    (root / "d" / "g").symlink_to(outside / "f.txt")
    confined.write_atomic(root, "d/g", b"mine\n")
    assert not (root / "d" / "g").is_symlink() and (root / "d" / "g").read_bytes() == b"mine\n"
    (root / "d" / "h").symlink_to(outside / "f.txt")
    confined.unlink_beneath(root, "d/h")
    assert (outside / "f.txt").exists() and not os.path.lexists(root / "d" / "h")
    with pytest.raises(FileExistsError):
        (root / "d" / "i").symlink_to(outside / "new.txt")
        confined.write_atomic(root, "d/i", b"x", exclusive=True)
    assert not (outside / "new.txt").exists()


async def test_undo_restores_beneath_the_root_after_a_swap(root: Path, outside: Path) -> None:
    """The history is confined too: a file replaced by a link before undo_edit gets its
    content back in the checkout, and the link's target is not written."""
    tool = EditorTool(root)
    await tool({"command": "str_replace", "path": "d/f.txt", "old_str": "inside", "new_str": "x"})
    (root / "d" / "f.txt").unlink()
    (root / "d" / "f.txt").symlink_to(outside / "f.txt")
    out = await tool({"command": "undo_edit", "path": "d/f.txt"})
    assert out.startswith("Undid the last edit of d/f.txt")
    assert (root / "d" / "f.txt").read_text() == "inside\n"
    assert (outside / "f.txt").read_text() == f"{CANARY} outside\n"


def test_mkdirs_and_lstat(root: Path) -> None:
    confined.mkdirs_beneath(root, "a/b/c")
    assert (root / "a" / "b" / "c").is_dir()
    info = confined.lstat_beneath(root, "a/b")
    assert info is not None and stat.S_ISDIR(info.st_mode)
    assert confined.lstat_beneath(root, "a/missing/x") is None
    with pytest.raises(NotRegular):
        confined.read_regular(root, "a", 10)
    with pytest.raises(OSError) as caught:
        confined.read_regular(root, "d/f.txt/x", 10)
    assert caught.value.errno == errno.ENOTDIR
