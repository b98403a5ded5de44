"""`kat-lsp serve`: the language server (docs/reference/lsp.md) on stdio, TCP or a unix socket.

TCP and the socket authenticate their one client first (`transport.py`).

stdout carries the protocol, so logs go to stderr (and `--log-file`); important events
also reach the client as `window/logMessage`. pygls logs every message at INFO, so its
loggers stay at WARNING unless `-vv`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["main"]


def setup_logging(verbose: int, log_file: str | None) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(
        level=level,
        handlers=handlers,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in ("pygls", "httpx", "openai", "asyncio"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
    for name in ("pygls.protocol.json_rpc", "pygls.protocol.language_server", "pygls.server"):
        logging.getLogger(name).addFilter(_short_pygls_records)


PYGLS_LINE_LIMIT = 300
"""Characters of a warning or error line of pygls (it may quote whole messages)."""


def _short_pygls_records(record: logging.LogRecord) -> bool:
    """Bad params are the client's mistake (or an attack), answered with InvalidParams and
    logged as one line where they are raised (server/params.py): no traceback from pygls.
    pygls' other warnings quote params (a 1 MB id, ...): clipped to one short line."""
    from pygls.exceptions import JsonRpcInvalidParams

    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, JsonRpcInvalidParams):
        return False
    if record.levelno >= logging.WARNING:
        text = record.getMessage()
        if len(text) > PYGLS_LINE_LIMIT:
            record.msg, record.args = f"{text[:PYGLS_LINE_LIMIT]}... ({len(text)} characters)", ()
    return True


def main(args: argparse.Namespace) -> int:
    """Serve until the client exits. Returns the exit code."""
    setup_logging(int(getattr(args, "verbose", 0) or 0), getattr(args, "log_file", None))
    from kat_lsp.server.features import create_server

    server = create_server()
    log = logging.getLogger("kat_lsp.server")
    if getattr(args, "socket", None):
        from kat_lsp.server.transport import serve_socket

        return serve_socket(server, Path(args.socket))
    if getattr(args, "tcp", False):
        from kat_lsp.server.transport import serve_tcp

        return serve_tcp(server, args.host, args.port, getattr(args, "token_file", None))
    from kat_lsp.server.stream import serve_stdio

    log.info("kat-lsp serving on stdio")
    return serve_stdio(server)
