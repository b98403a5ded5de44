"""The server's read loop: strict LSP framing, and an end with a reason when it breaks.

pygls' `run_async` (2.1.1) skips any header line it does not understand and waits for a
`Content-Length` forever, so one bad frame (a short or negative length, a missing
header) leaves the server running but deaf. Here a frame is `Name: value\\r\\n` header
lines (`Content-Length` required, at most `HEADER_LINES`), a blank line and exactly that
many bytes of JSON. Anything else means the stream cannot be trusted any more: the
server logs the reason and ends with `BROKEN` (the editor restarts it) instead of
guessing where the next message starts. A body that is valid JSON but not a request
is answered (`KatProtocol.accept`) and the server goes on.

Exit codes (`serve_stream`): 0 after `shutdown` + `exit` (or the stream closing after
`shutdown`), 1 for `exit` or the stream closing without `shutdown`, `BROKEN` when the
stream broke or the client stopped reading.

stdin is read by a daemon thread (pygls uses a pool thread, which keeps the process alive
after `exit` while the client holds stdin open).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from kat_lsp.server.protocol import PARSE_ERROR, KatProtocol, clip

if TYPE_CHECKING:
    from kat_lsp.server.state import KatServer

log = logging.getLogger("kat_lsp.server")

MESSAGE_LIMIT = 128 * 1024 * 1024
"""Largest body accepted (an editor's didOpen of a huge file stays below)."""
HEADER_LINES = 8
HEADER_LINE_LIMIT = 4096
BROKEN = 2
_NAME = re.compile(rb"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


class BrokenStream(Exception):
    """The stream no longer carries well-formed LSP messages."""


class Reader(Protocol):
    async def readline(self) -> bytes: ...

    async def readexactly(self, n: int) -> bytes: ...


async def read_message(reader: Reader) -> bytes | None:
    """The next message's body; None when the stream ends between two messages."""
    length = None
    for index in range(HEADER_LINES + 1):
        try:
            line = await reader.readline()
        except ValueError:  # asyncio's line limit
            raise BrokenStream("a header line is too long") from None
        if not line and index == 0:
            return None
        if not line.endswith(b"\r\n") or len(line) > HEADER_LINE_LIMIT:
            raise BrokenStream(f"a header line is cut or too long: {clip(repr(line), 80)}")
        if line == b"\r\n":
            break
        name, colon, value = line[:-2].partition(b":")
        if not colon or not _NAME.fullmatch(name):
            raise BrokenStream(f"not a header line: {clip(repr(line), 80)}")
        if name.lower() == b"content-length":
            digits = value.strip()
            if not digits.isdigit() or len(digits) > 12:
                raise BrokenStream(f"Content-Length must be a whole number, not {digits[:40]!r}")
            length = int(digits)
    else:
        raise BrokenStream(f"more than {HEADER_LINES} header lines")
    if length is None:
        raise BrokenStream("a message without a Content-Length header")
    if length > MESSAGE_LIMIT:
        raise BrokenStream(f"a message of {length} bytes (at most {MESSAGE_LIMIT})")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise BrokenStream(
            f"the stream ended {len(exc.partial)} bytes into a {length}-byte message"
        ) from None


class ThreadReader:
    """`Reader` over a blocking file descriptor (stdin), read in one daemon thread with
    `os.read`: a thread blocked inside `sys.stdin.buffer` would hold its lock and abort
    the interpreter's shutdown."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buffer, self.eof = fd, bytearray(), False
        self.calls: SimpleQueue[tuple[Callable[[], bytes], asyncio.Future[bytes]]] = SimpleQueue()
        threading.Thread(target=self._work, name="kat-lsp stdin", daemon=True).start()

    def _work(self) -> None:
        while True:
            call, future = self.calls.get()
            try:
                result, error = call(), None
            except Exception as exc:  # handed to the awaiting coroutine
                result, error = b"", exc
            try:
                future.get_loop().call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed: the session is over
                return

    def _fill(self) -> None:
        chunk = os.read(self.fd, 65536)
        self.eof = not chunk
        self.buffer += chunk

    def _take(self, n: int) -> bytes:
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def _readline(self, limit: int) -> bytes:
        while (end := self.buffer.find(b"\n", 0, limit)) < 0 and len(self.buffer) < limit:
            if self.eof:
                return self._take(len(self.buffer))
            self._fill()
        return self._take(end + 1 if end >= 0 else limit)

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n and not self.eof:
            self._fill()
        return self._take(n)

    async def _call(self, call: Callable[[], bytes]) -> bytes:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.calls.put((call, future))
        return await future

    async def readline(self) -> bytes:
        return await self._call(lambda: self._readline(HEADER_LINE_LIMIT + 1))

    async def readexactly(self, n: int) -> bytes:
        data = await self._call(lambda: self._read(n))
        if len(data) < n:
            raise asyncio.IncompleteReadError(data, n)
        return data


def _settle(future: asyncio.Future[bytes], result: bytes, error: Exception | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class SafeWriter:
    """Writes frames to a blocking stream (stdout); a failed write ends the session."""

    def __init__(self, stream: BinaryIO, protocol: KatProtocol) -> None:
        self.stream, self.protocol = stream, protocol

    def write(self, data: bytes) -> None:
        try:
            self.stream.write(data)
            self.stream.flush()
        except (OSError, ValueError) as exc:
            self.protocol.on_lost(f"cannot write to the client: {exc}")

    def close(self) -> None:
        pass


async def serve_stream(server: KatServer, reader: Reader) -> int:
    """Feed `server.protocol` (a `KatProtocol`) until exit, end of stream or a break;
    cancel runs still in flight, and return the exit code."""
    protocol: KatProtocol = server.protocol
    lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    protocol.on_lost = lambda why: None if lost.done() else lost.set_result(why)
    reading = asyncio.ensure_future(_read_loop(protocol, reader))
    either: set[asyncio.Future[Any]] = {reading, lost}
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if reading.done():
        code = reading.result()
    else:
        reading.cancel()
        log.error("the client stopped reading (%s); ending the server", lost.result())
        code = BROKEN
    if not protocol.shut_down:
        from kat_lsp.server.runs import cancel_all

        await cancel_all(server)
    await _settle_tasks()
    return code


async def _settle_tasks(grace: float = 2.0) -> None:
    """Give handlers still running a moment to end, then cancel them quietly: pygls'
    callbacks (2.1.1) re-raise a cancelled handler's CancelledError, which asyncio would
    log as an error with a traceback while the server ends normally."""
    loop = asyncio.get_running_loop()
    default = loop.get_exception_handler()

    def quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), asyncio.CancelledError):
            log.debug("a handler was cancelled as the server ended")
        elif default is not None:
            default(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(quiet)
    others = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    if others:
        await asyncio.wait(others, timeout=grace)


async def _read_loop(protocol: KatProtocol, reader: Reader) -> int:
    while protocol.exit_code is None:
        try:
            body = await read_message(reader)
        except BrokenStream as exc:
            log.error("the client's stream is broken: %s; ending the server", exc)
            return BROKEN
        except OSError as exc:
            log.error("cannot read from the client (%s); ending the server", exc)
            return BROKEN
        if body is None:
            code = 0 if protocol.shut_down else 1
            if code:
                log.warning("the client closed the stream without shutdown and exit")
            return code
        try:
            data = json.loads(body)
        except RecursionError:
            protocol.refuse(None, PARSE_ERROR, "the message is nested too deeply")
            continue
        except ValueError as exc:
            protocol.send_error(None, PARSE_ERROR, "the message is not JSON")
            log.error("the client's stream is broken: a message is not JSON (%s)", clip(str(exc)))
            return BROKEN
        protocol.accept(data)
    return protocol.exit_code


def serve_stdio(server: KatServer) -> int:
    """Serve the client on stdin/stdout; the exit code."""
    import sys

    server.protocol.set_writer(SafeWriter(sys.stdout.buffer, server.protocol))
    try:
        return asyncio.run(serve_stream(server, ThreadReader(sys.stdin.fileno())))
    finally:
        server.shutdown()
