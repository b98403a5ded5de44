"""`KatProtocol`: every decoded message is answered or dropped on purpose (LSP 3.17).

pygls (checked against 2.1.1) structures a message inside `json.loads`' object hook and,
when that fails (a request without `params`, a `range: {}`), raises out of its read loop:
the request is never answered and a traceback is logged. It also serves requests before
`initialize`, accepts a second `initialize` (a new workspace, folders gone) and drops
requests after `shutdown` without an answer. So `accept()` takes the plain decoded JSON
and applies the lifecycle and the JSON-RPC rules itself before pygls' `handle_message`
sees a structured message:

- not an object, no `jsonrpc: "2.0"`, a bad `id` or `method`: InvalidRequest (-32600);
- before `initialize`: requests get ServerNotInitialized (-32002), notifications are
  dropped except `exit`;
- a second `initialize`: InvalidRequest, nothing changes;
- after `shutdown`: requests get InvalidRequest, notifications are dropped except `exit`;
- `exit`: ends the session with code 0 after `shutdown`, else 1 (`exit_code`);
- params that do not fit the method's type, or nested more than `DEPTH_LIMIT` levels:
  InvalidParams (-32602) with a short message;
- `workspace/executeCommand` of an unknown command: InvalidParams (pygls would echo the
  name whole).

Every such case is logged as one line of at most `CLIP` characters. Errors are sent
with pygls' `_send_response` (no public API sends an error response).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import attrs
import cattrs
from lsprotocol import types
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
)

log = logging.getLogger("kat_lsp.server")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SERVER_NOT_INITIALIZED = -32002
CLIP = 200
"""Characters of a logged or returned message about a bad message."""
DEPTH_LIMIT = 64
"""Levels of nesting of a message (LSP's own need a handful)."""


def clip(text: str, limit: int = CLIP) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether JSON `value` nests more than `limit` levels (handlers recurse on params)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def _valid_id(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _type_error(exc: Exception) -> str:
    """cattrs' notes without the values (which may be huge): `... @ $.params.range`."""
    if isinstance(exc, cattrs.BaseValidationError):
        notes = cattrs.transform_error(exc, path="$")
        if notes:
            return clip("; ".join(notes))
    return clip(f"{type(exc).__name__}: {exc}")


class KatProtocol(LanguageServerProtocol):
    """pygls' LSP protocol with the lifecycle and the answers of the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_received = False
        self.exit_code: int | None = None
        """Set by `exit`: the process's exit code."""
        self.on_lost: Callable[[str], None] = lambda why: log.error("%s", why)
        """Called when the client can no longer be written to (`stream.serve_stream`)."""

    @property
    def shut_down(self) -> bool:
        return bool(self._shutdown)

    def send_error(self, msg_id: Any, code: int, message: str) -> None:
        """An error response (`msg_id` None: the request's id could not be read)."""
        error = types.ResponseError(code=code, message=clip(message))
        self._send_response(msg_id, error=error)

    def refuse(self, msg_id: Any, code: int, message: str, method: str = "") -> None:
        what = f"{clip(method, 80)!r} " if method else ""
        log.warning("refused request %s%s: %s", what, clip(repr(msg_id), 40), clip(message))
        self.send_error(msg_id, code, message)

    def accept(self, data: Any) -> None:
        """Handle one decoded JSON value of the stream."""
        if not isinstance(data, dict):
            self.refuse(None, INVALID_REQUEST, "a message must be a JSON object")
            return
        has_id, msg_id = "id" in data, data.get("id")
        method = data.get("method")
        if "method" not in data:
            self._accept_response(data, msg_id)
            return
        if _deeper_than(data, DEPTH_LIMIT):
            code = INVALID_PARAMS if has_id and _valid_id(msg_id) else INVALID_REQUEST
            message = f"the message is nested more than {DEPTH_LIMIT} levels deep"
            self.refuse(msg_id if code == INVALID_PARAMS else None, code, message)
            return
        if has_id and not _valid_id(msg_id):
            self.refuse(None, INVALID_REQUEST, "a request id must be a number or a string")
            return
        if data.get("jsonrpc") != "2.0" or not isinstance(method, str):
            if has_id:
                self.refuse(msg_id, INVALID_REQUEST, 'need "jsonrpc": "2.0" and a "method" string')
            else:
                log.warning("dropped a notification that is not JSON-RPC 2.0")
            return
        if method == types.EXIT:
            self.exit_code = 0 if self.shut_down else 1
            log.info("exit received (%s shutdown)", "after" if self.shut_down else "without")
            return
        if not has_id:
            self._accept_notification(method, data)
        elif (problem := self._lifecycle(method)) is not None:
            self.refuse(msg_id, *problem, method=method)
        else:
            self._accept_request(method, msg_id, data)

    def _lifecycle(self, method: str) -> tuple[int, str] | None:
        """Why a request may not be served now (code, message), if it may not."""
        if method == types.INITIALIZE:
            if self.initialize_received:
                return INVALID_REQUEST, "initialize may only be sent once"
            return None
        if not self.initialize_received:
            return SERVER_NOT_INITIALIZED, "the server is not initialized: send initialize first"
        if self.shut_down:
            return INVALID_REQUEST, "the server is shutting down: only exit is accepted"
        return None

    def _accept_request(self, method: str, msg_id: Any, data: dict[str, Any]) -> None:
        if len(method) > CLIP:
            self.refuse(msg_id, METHOD_NOT_FOUND, f"unknown method {clip(method, 80)!r}")
            return
        kind = self.get_message_type(method) or JsonRPCRequestMessage
        if "id" not in attrs.fields_dict(kind):
            self.refuse(msg_id, INVALID_REQUEST, f"{method} is a notification", method)
            return
        if kind is JsonRPCRequestMessage:
            data = {"params": None, **data}
        try:
            message = self._converter.structure(data, kind)
        except Exception as exc:  # any shape the type does not accept
            self.refuse(msg_id, INVALID_PARAMS, f"invalid params: {_type_error(exc)}", method)
            return
        if method == types.INITIALIZE:
            self.initialize_received = True
        if (
            method == types.WORKSPACE_EXECUTE_COMMAND
            and message.params.command not in self.fm.commands
        ):
            command = clip(message.params.command, 80)  # pygls would echo it whole
            self.refuse(msg_id, INVALID_PARAMS, f"unknown command {command!r}", method)
            return
        self.handle_message(message)

    def _accept_notification(self, method: str, data: dict[str, Any]) -> None:
        if not self.initialize_received or self.shut_down or len(method) > CLIP:
            log.info("dropped notification %r (not initialized, shut down or unknown)", method[:80])
            return
        kind = self.get_message_type(method) or JsonRPCNotification
        if kind is JsonRPCNotification:
            data = {"params": None, **data}
        try:
            message = self._converter.structure(data, kind)
        except Exception as exc:
            log.warning("dropped notification %r: invalid params: %s", method, _type_error(exc))
            return
        self.handle_message(message)

    def _accept_response(self, data: dict[str, Any], msg_id: Any) -> None:
        """A response of the client to one of our requests."""
        if data.get("jsonrpc") != "2.0" or not _valid_id(msg_id):
            log.warning("dropped a message that is neither a request nor a response")
            return
        kind: Any = types.ResponseErrorMessage
        if "error" not in data:
            kind = self._result_types.pop(msg_id, None) or JsonRPCResponseMessage
        try:
            message = self._converter.structure(data, kind)
        except Exception as exc:  # answer the waiting request with an error, not a hang
            log.warning("malformed response %s: %s", clip(repr(msg_id), 40), _type_error(exc))
            error = types.ResponseError(code=INVALID_PARAMS, message="malformed response")
            self._handle_response(msg_id, None, error)
            return
        self.handle_message(message)
