"""`kat-lsp serve --tcp` and `--socket`: one authenticated client, nothing served before.

Any local process can connect to a TCP port, and the server holds the user's API key and
runs commands: so TCP needs a secret. At start the server writes a random token into a
file only the user can read (`token_file`) and says where on stderr; the client sends
it as `initializationOptions.token` of `initialize`, the first message LSP allows. The
server reads that first message itself (bounded, with a deadline) and compares the token
in constant time; anything else — another method, a missing or wrong token, a malformed
or oversized message — gets an error response and the connection is closed before
pygls sees a byte. Only then is the connection handed to the protocol. One client is
served; further connections are refused while it is connected, and the server ends with
it (as pygls' own TCP mode does). A unix socket (`--socket`) is created with mode 0600
and only accepts peers of the same user (SO_PEERCRED); no token is needed there.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import signal
import socket
import stat
import struct
import sys
import threading
from pathlib import Path
from typing import Any

from kat_lsp.server.state import KatServer
from kat_lsp.server.stream import serve_stream

log = logging.getLogger("kat_lsp.server")

FIRST_MESSAGE_LIMIT = 1024 * 1024
"""Bytes of the `initialize` message read before authentication."""
AUTH_DEADLINE = 20.0
"""Seconds a connection has to send a complete `initialize`."""
_LENGTH = re.compile(rb"Content-Length: *(\d{1,9})\r\n", re.IGNORECASE)


class Refused(Exception):
    """The connection may not be served; the message goes into the error response."""

    def __init__(self, message: str, msg_id: Any = None) -> None:
        super().__init__(message)
        self.msg_id = msg_id


async def _first_message(reader: asyncio.StreamReader) -> bytes:
    length = None
    for _ in range(32):  # header lines
        line = await reader.readline()
        if not line:
            raise Refused("connection closed before initialize")
        if line == b"\r\n":
            break
        if (match := _LENGTH.fullmatch(line)) is not None:
            length = int(match.group(1))
    else:
        raise Refused("too many header lines")
    if length is None or length > FIRST_MESSAGE_LIMIT:
        raise Refused("the first message needs a Content-Length of at most 1 MiB")
    return await reader.readexactly(length)


def check_initialize(body: bytes, token: str | None) -> dict[str, Any]:
    """The first message, when it is `initialize` carrying the right token; else Refused."""
    try:
        message = json.loads(body)
    except ValueError:
        raise Refused("the first message is not JSON") from None
    if not isinstance(message, dict):
        raise Refused("the first message is not a JSON-RPC request")
    msg_id = message.get("id")
    msg_id = msg_id if isinstance(msg_id, int | str) and not isinstance(msg_id, bool) else None
    if message.get("method") != "initialize" or msg_id is None:
        raise Refused("the server is not initialized: send initialize first", msg_id)
    if token is None:
        return message
    params = message.get("params")
    options = params.get("initializationOptions") if isinstance(params, dict) else None
    given = options.get("token") if isinstance(options, dict) else None
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), token.encode()):
        raise Refused(
            "authentication failed: send the token of the server's token file as "
            "initializationOptions.token (docs/reference/lsp.md#tcp)",
            msg_id,
        )
    return message


def _error_response(exc: Refused) -> bytes:
    code = -32002 if "not initialized" in str(exc) else -32600
    data = {"jsonrpc": "2.0", "id": exc.msg_id, "error": {"code": code, "message": str(exc)}}
    if code == -32600:
        data["error"]["data"] = {"retry": False}
    body = json.dumps(data).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def _same_user(writer: asyncio.StreamWriter) -> bool:
    sock = writer.get_extra_info("socket")
    if sock is None or sock.family != socket.AF_UNIX:
        return True
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return bool(uid == os.getuid())


DRAIN_SECONDS = 1.0
DRAIN_CHUNKS = 16
"""After refusing a connection: how long, and how many 64 KiB reads, to discard its input."""


class Gate:
    """Accepts connections, authenticates the first message, serves one client."""

    def __init__(self, server: KatServer, token: str | None) -> None:
        self.server, self.token = server, token
        self.busy = False
        self.stop = threading.Event()
        self.listener: asyncio.Server | None = None
        self.exit_code = 0

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            if self.busy:
                raise Refused("another client is connected")
            if not _same_user(writer):
                raise Refused("the socket only serves its owner")
            body = await asyncio.wait_for(_first_message(reader), AUTH_DEADLINE)
            check_initialize(body, self.token)
            if self.busy:  # a second client authenticated while this one was reading
                raise Refused("another client is connected")
        except (Refused, TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
            log.warning("refused a connection from %s: %s", peer or "a local peer", exc)
            if isinstance(exc, Refused) and exc.msg_id is not None:  # a request: answer it
                writer.write(_error_response(exc))
            await self._close(writer, reader)
            return
        self.busy = True
        log.info("client %s authenticated", peer or "on the socket")
        protocol = self.server.protocol
        protocol.set_writer(writer)
        protocol.accept(json.loads(body))
        self.exit_code = await serve_stream(self.server, reader)
        self.server.shutdown()

    @staticmethod
    async def _close(writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
        """Close after the answer has reached the peer: a socket closed with unread input
        sends a reset, which can destroy the error response before the client reads it.
        So: end our side, then discard what the peer still sends (bounded), then close."""
        try:
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            async with asyncio.timeout(DRAIN_SECONDS):
                for _ in range(DRAIN_CHUNKS):
                    if not await reader.read(65536):
                        break
        except (ConnectionError, OSError, TimeoutError):
            pass
        try:
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass

    def serve(self, listen: Any) -> int:
        """Run `listen(callback)` (an awaitable returning an asyncio.Server) until the
        client is gone; its exit code (stream.py)."""

        # SIGTERM ends the server the way the client's exit does: files get removed.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

        async def main() -> None:
            self.listener = await listen(self.connection)
            self.server._server = self.listener  # so that pygls' shutdown() closes it
            self.server._stop_event = self.stop
            async with self.listener:
                with contextlib.suppress(asyncio.CancelledError):
                    await self.listener.serve_forever()

        asyncio.run(main())
        return self.exit_code


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback address."""
    import ipaddress

    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def serve_tcp(server: KatServer, host: str, port: int, token_file: Path | None) -> int:
    """Listen on host:port; the token (new, or `token_file`'s) guards the connection."""
    from kat_lsp.server.tokenfile import tcp_token

    sock = socket.create_server((host, port), family=_family(host), reuse_port=False)
    bound = sock.getsockname()[1]
    token, path = tcp_token(token_file, bound)
    announce(
        f"listening on tcp://{host}:{bound}; the token is in {path} "
        "(clients send it as initializationOptions.token)"
    )
    try:
        return Gate(server, token).serve(lambda cb: asyncio.start_server(cb, sock=sock))
    finally:
        if token_file is None:
            path.unlink(missing_ok=True)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def serve_socket(server: KatServer, path: Path) -> int:
    """Listen on a unix socket only the user can open (0600, same-uid peers)."""
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise OSError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # a stale socket of an earlier server
        else:
            raise OSError(f"{path}: another server is listening there")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket exists with mode 0600 from its first moment
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    announce(f"listening on unix socket {path} (mode 0600)")
    try:
        return Gate(server, None).serve(lambda cb: asyncio.start_unix_server(cb, sock=sock))
    finally:
        path.unlink(missing_ok=True)


def announce(text: str) -> None:
    print(f"kat-lsp: {text}", file=sys.stderr, flush=True)
