"""`kat-lsp serve`: the language server (DESIGN.md §4 "LSP") on stdio or TCP.

stdout carries the protocol, so logs go to stderr (and `--log-file`); important events
also reach the client as `window/logMessage`. pygls logs every message at INFO, so its
loggers stay at WARNING unless `-vv`.
"""

from __future__ import annotations

import argparse
import logging
import sys

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


def main(args: argparse.Namespace) -> int:
    """Serve until the client exits. Returns the exit code."""
    setup_logging(int(getattr(args, "verbose", 0) or 0), getattr(args, "log_file", None))
    from kat_lsp.server.features import create_server

    server = create_server()
    log = logging.getLogger("kat_lsp.server")
    if getattr(args, "tcp", False):
        log.info("kat-lsp serving on tcp://%s:%s", args.host, args.port)
        server.start_tcp(args.host, args.port)
    else:
        log.info("kat-lsp serving on stdio")
        server.start_io()
    return 0
