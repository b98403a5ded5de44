"""Reading a file the host does not control without being stalled or flooded by it.

`read_bounded` opens non-blocking (a FIFO or device cannot hang the caller), refuses
anything but a regular file, optionally refuses a symbolic link as the last component,
and never reads more than its limit (a sparse 4 GiB file costs nothing). Used for run
records, configuration and token files, editor buffers on disk, and (through
`workspace.confined`) every file the agent's editor reads.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_KINDS = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "folder",
    stat.S_IFLNK: "symbolic link",
    stat.S_IFIFO: "FIFO (named pipe)",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}


def kind_of(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "special file")


class NotRegular(Exception):
    def __init__(self, rel: str, kind: str):
        super().__init__(f"{rel} is a {kind}")
        self.rel, self.kind = rel, kind


class TooLarge(Exception):
    def __init__(self, rel: str, size: int, limit: int):
        super().__init__(f"{rel} has {size} bytes, over {limit}")
        self.rel, self.size, self.limit = rel, size, limit


def read_fd(fd: int, name: str, limit: int) -> tuple[bytes, os.stat_result]:
    """Content and status of the open regular file `fd`, at most `limit` bytes."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise NotRegular(name, kind_of(info.st_mode))
    if info.st_size > limit:
        raise TooLarge(name, info.st_size, limit)
    chunks: list[bytes] = []
    size = 0
    while chunk := os.read(fd, min(limit + 1 - size, 1 << 20)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:  # grew since fstat
            raise TooLarge(name, size, limit)
    return b"".join(chunks), info


def read_bounded(path: Path, limit: int, *, follow: bool = True) -> tuple[bytes, os.stat_result]:
    """Content and status of the regular file `path`. Raises FileNotFoundError (and other
    OSErrors; ELOOP for a final symlink when not `follow`), NotRegular, TooLarge."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    fd = os.open(path, flags | (0 if follow else os.O_NOFOLLOW))
    try:
        return read_fd(fd, str(path), limit)
    finally:
        os.close(fd)
