"""File operations confined beneath a folder at the system-call level.

Guarantee: every function here opens, reads, writes, lists or removes only entries that
lie beneath `root` at the moment of the system call, never follows a symbolic link (in
any component, the last one included), never blocks on a FIFO and never reads more than
the limit it is given. A process that swaps folders and symbolic links while a call runs
(renameat2 RENAME_EXCHANGE) can make it fail, never escape.

How: paths are normalised lexically (`..` that leaves `root` is refused before any
system call), then opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from a
descriptor of `root` (Linux 5.6+, called through `syscall(437)` because Python has no
wrapper) or, where that is missing, by walking a directory descriptor one component at a
time with `O_NOFOLLOW | O_DIRECTORY`. Writes go to a temporary file in the same folder
descriptor and `rename` over the name (`src_dir_fd`/`dst_dir_fd`), so the name is never
re-resolved and a hard link to a file elsewhere is replaced, not written through.

It relies on: the path up to and including `root` being trusted (nobody untrusted can
replace `root` itself), and a folder opened beneath `root` staying there while it is
used (moving it out needs a writable mount of the same file system outside `root`; the
sandbox has none). Opening a device node non-blocking happens before it is refused;
creating one needs CAP_MKNOD.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import posixpath
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kat_lsp.safefile import NotRegular, TooLarge, kind_of, read_fd  # noqa: F401 (re-exported)

_SYS_OPENAT2 = 437  # the same number on every architecture that has it
_RESOLVE = 0x02 | 0x04 | 0x08  # NO_MAGICLINKS | NO_SYMLINKS | BENEATH
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class ConfinedError(Exception):
    """A path the confined operations refuse; attributes say why."""


class OutsideRoot(ConfinedError):
    """The path names something outside the root (`..`, an absolute path elsewhere)."""


class SymlinkInPath(ConfinedError):
    def __init__(self, rel: str, target: str):  # the link (from the root), what it holds
        super().__init__(f"{rel} is a symbolic link")
        self.rel, self.target = rel, target


def relative(root: Path, raw: str) -> str:
    """`raw` (relative to `root`, or absolute inside it) as a normalised relative path
    without `.`/`..` components; "" is the root itself."""
    if "\0" in raw:
        raise OutsideRoot(raw)
    path = posixpath.normpath(raw)
    if posixpath.isabs(path):
        try:
            path = PurePosixPath(path).relative_to(root).as_posix()
        except ValueError:
            raise OutsideRoot(raw) from None
    if path == ".." or path.startswith(("../", "/")):
        raise OutsideRoot(raw)
    return "" if path == "." else path


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_openat2_works = os.uname().machine in ("x86_64", "aarch64", "riscv64")


def _openat2(dir_fd: int, rel: str, flags: int, mode: int) -> int:
    """A descriptor, or -errno (ENOSYS when the kernel or a seccomp filter lacks openat2)."""
    how = _OpenHow(flags, mode if flags & os.O_CREAT else 0, _RESOLVE)
    fd = _libc.syscall(
        ctypes.c_long(_SYS_OPENAT2),
        ctypes.c_long(dir_fd),
        ctypes.c_char_p(os.fsencode(rel)),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    return int(fd) if fd >= 0 else -ctypes.get_errno()


def _explain(dir_fd: int, name: str, done: list[str], exc: OSError) -> OSError:
    """The error for a failed open of `name`: SymlinkInPath when it is a link."""
    try:
        if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise SymlinkInPath("/".join([*done, name]), os.readlink(name, dir_fd=dir_fd))
    except FileNotFoundError:
        pass
    return exc


def _walk_open(root: Path, rel: str, flags: int, mode: int) -> int:
    parts = rel.split("/")
    fd = os.open(root, _PATH_DIR)
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            try:
                if last:
                    return os.open(part, flags, mode, dir_fd=fd)
                child = os.open(part, _PATH_DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _explain(fd, part, parts[:index], exc) from None
                raise
            os.close(fd)
            fd = child
        raise AssertionError("unreachable")
    finally:
        os.close(fd)


def open_beneath(root: Path, rel: str, flags: int, mode: int = 0o666) -> int:
    """`os.open` of `rel` (from `relative`) beneath `root`, following no symbolic link."""
    global _openat2_works
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    if not rel:
        return os.open(root, flags | os.O_DIRECTORY)
    if _openat2_works:
        root_fd = os.open(root, _PATH_DIR)
        try:
            fd = _openat2(root_fd, rel, flags, mode)
        finally:
            os.close(root_fd)
        if fd >= 0:
            return fd
        if fd == -errno.ENOSYS:
            _openat2_works = False
        elif -fd not in (errno.ELOOP, errno.EXDEV, errno.ENOTDIR, errno.EPERM):
            raise OSError(-fd, os.strerror(-fd), rel)
    # No openat2, or it refused: the walk gives the same answer with a precise reason.
    return _walk_open(root, rel, flags, mode)


def _parent(root: Path, rel: str) -> tuple[int, str]:
    """A descriptor of the folder holding `rel` and the last component's name."""
    if not rel:
        raise IsADirectoryError(errno.EISDIR, "the root folder itself", str(root))
    folder, name = posixpath.split(rel)
    return open_beneath(root, folder, _PATH_DIR), name


def lstat_beneath(root: Path, rel: str) -> os.stat_result | None:
    """The entry's own status (a link is not followed), None when it does not exist."""
    if not rel:
        return os.stat(root)
    try:
        fd, name = _parent(root, rel)
    except FileNotFoundError:
        return None
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)


def read_regular(root: Path, rel: str, limit: int) -> tuple[bytes, os.stat_result]:
    """Content and status of a regular file of at most `limit` bytes. Raises NotRegular
    (folders, FIFOs, devices, sockets: never blocks), TooLarge, SymlinkInPath, OSError."""
    try:
        fd = open_beneath(root, rel, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:  # a socket cannot be opened: say what it is
        info = lstat_beneath(root, rel) if exc.errno == errno.ENXIO else None
        if info is not None and not stat.S_ISREG(info.st_mode):
            raise NotRegular(rel, kind_of(info.st_mode)) from None
        raise
    try:
        return read_fd(fd, rel, limit)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_atomic(
    root: Path, rel: str, data: bytes, *, mode: int | None = None, exclusive: bool = False
) -> None:
    """Replace (or, `exclusive`, newly create) the regular file `rel` with `data`.

    Replacing writes a temporary file in the same folder descriptor and renames it over
    the name: a link or hard link at `rel` is replaced, never written through. `mode`
    sets the permission bits (default: 0666 minus the umask)."""
    fd, name = _parent(root, rel)
    try:
        if exclusive:
            out = os.open(name, _NEW, 0o666, dir_fd=fd)
            try:
                _write_all(out, data)
            except BaseException:
                os.unlink(name, dir_fd=fd)
                raise
            finally:
                os.close(out)
            return
        temp = f".kat-edit-{secrets.token_hex(6)}.tmp"
        out = os.open(temp, _NEW, 0o666, dir_fd=fd)
        try:
            try:
                _write_all(out, data)
                if mode is not None:
                    os.fchmod(out, stat.S_IMODE(mode) & 0o777)
            finally:
                os.close(out)
            os.replace(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=fd)
            raise
    finally:
        os.close(fd)


def unlink_beneath(root: Path, rel: str) -> None:
    """Remove the entry `rel` (a link itself, never its target; not a folder)."""
    fd, name = _parent(root, rel)
    try:
        os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)


def mkdirs_beneath(root: Path, rel: str, mode: int = 0o777) -> None:
    """`mkdir -p rel` beneath `root`; an existing link on the way is refused."""
    done: list[str] = []
    for part in rel.split("/") if rel else []:
        fd = open_beneath(root, "/".join(done), _PATH_DIR)
        try:
            os.mkdir(part, mode, dir_fd=fd)
        except FileExistsError:
            pass
        finally:
            os.close(fd)
        done.append(part)
    os.close(open_beneath(root, rel, _PATH_DIR))


@dataclass(frozen=True)
class Entry:
    rel: str
    """Relative to the root."""
    kind: str
    """`file`, `folder`, `link` or `other`; links are listed, never followed."""


def list_dir_beneath(
    root: Path, rel: str, *, depth: int, limit: int, hidden: bool = False
) -> tuple[list[Entry], bool]:
    """Entries of folder `rel`, `depth` levels deep, sorted per folder, reading at most
    `limit` directory entries in all; the flag says whether the listing is complete."""
    out: list[Entry] = []
    budget = [limit]

    def walk(fd: int, prefix: str, level: int) -> bool:
        found: list[tuple[str, str]] = []
        complete = True
        with os.scandir(fd) as entries:
            for item in entries:
                if budget[0] <= 0:
                    complete = False
                    break
                budget[0] -= 1
                if hidden or not item.name.startswith("."):
                    found.append((item.name, _entry_kind(item)))
        for name, kind in sorted(found):
            out.append(Entry(prefix + name, kind))
            if kind == "folder" and level < depth:
                try:
                    child = os.open(name, _DIR, dir_fd=fd)
                except OSError:  # replaced since it was listed
                    continue
                try:
                    complete = walk(child, f"{prefix}{name}/", level + 1) and complete
                finally:
                    os.close(child)
        return complete

    fd = open_beneath(root, rel, _DIR)
    try:
        complete = walk(fd, f"{rel}/" if rel else "", 1)
    finally:
        os.close(fd)
    return out, complete


def _entry_kind(item: os.DirEntry[str]) -> str:
    if item.is_symlink():
        return "link"
    if item.is_dir(follow_symlinks=False):
        return "folder"
    return "file" if item.is_file(follow_symlinks=False) else "other"
