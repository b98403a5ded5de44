"""A deterministic OpenAI-compatible Chat Completions server that replays a script.

Stdlib only, over real HTTP: in-process (`with ScriptedServer(script) as s: s.base_url`)
or as a process (`python -m kat_lsp.model.scripted --script FILE.json [--port 0]
[--port-file F] [--log FILE.jsonl] [--latency S]`, which prints its base URL as the first
line of stdout). Tests, benchmarks and the README's offline quick start use it.

The answer to a request is chosen statelessly from the `X-KAT-Phase` and `X-KAT-Sample`
headers and the number of assistant messages in the request (the turn index); see
docs/reference/scripted-server.md for the script format. The only state is the hit count
behind `times`/`then` turns (errors or delays the first N times, then something else).
Every request is recorded in `server.requests` (and the `--log` JSONL).
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kat_lsp.model.script import (
    EXHAUSTED,
    ScriptError,
    approx_tokens,
    choose_turn,
    completion_body,
    load_script,
    stream_chunks,
    turn_index,
)


class ScriptedServer:
    """The scripted endpoint. `requests` holds every request seen (thread-safe appends)."""

    def __init__(
        self,
        script: dict[str, Any] | str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float | None = None,
        log: str | Path | None = None,
    ) -> None:
        self.script = load_script(script)
        self.host = host
        self.latency = float(self.script.get("latency", 0.0) if latency is None else latency)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._hits: dict[tuple[str, ...], int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        """Chat requests being answered at once, and the most seen (concurrency checks)."""
        self._stopping = threading.Event()
        self._log = Path(log) if log else None
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.scripted = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> ScriptedServer:
        self._thread = threading.Thread(
            target=self.serve_forever, name="scripted-model", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        self._stopping.set()  # wakes turns that are sleeping out a delay
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def chat_requests(self, phase: str | None = None) -> list[dict[str, Any]]:
        """The recorded chat-completion requests, optionally of one phase."""
        with self._lock:
            seen = list(self.requests)
        return [
            r
            for r in seen
            if r["path"].endswith("/chat/completions")
            and (phase is None or r["headers"].get("x-kat-phase") == phase)
        ]

    # --- called from handler threads ---

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)

    def write_log(self, entry: dict[str, Any]) -> None:
        """Append a handled request (with its `status` and `response`) to the JSONL log."""
        if self._log is not None:
            with self._lock, self._log.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    def resolve(self, turn: dict[str, Any], key: tuple[str, ...]) -> dict[str, Any]:
        """Apply `times`/`then`: a turn with `times` holds for its first N hits of this key."""
        while "times" in turn:
            with self._lock:
                hits = self._hits.get(key, 0) + 1
                self._hits[key] = hits
            if hits <= int(turn["times"]):
                return turn
            key = (*key, "then")
            turn = turn.get("then", EXHAUSTED)
        return turn

    def enter(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    scripted: ScriptedServer


class _Handler(BaseHTTPRequestHandler):
    server_version = "kat-scripted/1"
    server: _HTTPServer
    _entry: dict[str, Any]

    @property
    def scripted(self) -> ScriptedServer:
        return self.server.scripted

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are recorded, not printed."""

    def do_GET(self) -> None:
        self._record(None)
        if self.path.rstrip("/").endswith("/models"):
            model = self.scripted.script.get("model", "scripted")
            data = [{"id": model, "object": "model", "created": 0, "owned_by": "kat-lsp"}]
            self._json(200, {"object": "list", "data": data})
        else:
            self._error(404, f"no such endpoint: GET {self.path}", "not_found")

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            self._record(raw.decode("utf-8", "replace"))
            self._error(400, f"request body is not JSON: {exc}", "invalid_request_error")
            return
        entry = self._record(body)
        try:
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._error(404, f"no such endpoint: POST {self.path}", "not_found")
            else:
                self.scripted.enter(1)
                try:
                    self._complete(body, entry)
                finally:
                    self.scripted.enter(-1)
        except ScriptError as exc:
            self._error(400, str(exc), "invalid_request_error")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self._error(400, f"bad script turn ({type(exc).__name__}: {exc})", "script_error")
        except (BrokenPipeError, ConnectionResetError):
            entry["status"] = "client gone"  # it gave up (timeout) while the turn was delayed

    def _complete(self, body: dict[str, Any], entry: dict[str, Any]) -> None:
        server = self.scripted
        headers = entry["headers"]
        phase = headers.get("x-kat-phase", "")
        sample = headers.get("x-kat-sample", "0")
        messages = body.get("messages") or []
        turn = choose_turn(server.script, phase, sample, messages)
        index = turn_index(messages)
        key = (headers.get("x-kat-run", ""), phase, sample, str(index))
        turn = server.resolve(turn, key)
        server.sleep(server.latency + float(turn.get("delay", 0.0)))
        if "error" in turn:
            self._scripted_error(turn)
            return
        reply = completion_body(
            turn,
            model=str(body.get("model") or "scripted"),
            call_prefix=f"call_{phase}_{sample}_{index}",
            prompt_tokens=approx_tokens(json.dumps(messages)),
            usage=bool(turn.get("usage", server.script.get("usage", True))),
        )
        entry["response"] = reply
        if not body.get("stream"):
            self._json(200, reply)
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self._answering(200)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for chunk in stream_chunks(reply, include_usage=include_usage):
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def _scripted_error(self, turn: dict[str, Any]) -> None:
        status = turn["error"]
        if status == "disconnect":
            self._answering("disconnect")
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        retry_after_ms = turn.get("retry_after_ms", self.scripted.script.get("retry_after_ms", 1))
        extra = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}
        message = turn.get("message", f"scripted error {status}")
        self._error(int(status), message, "scripted_error", extra)

    def _answering(self, status: int | str) -> None:
        """Log before the answer leaves, so a client that got it finds it in the log."""
        self._entry["status"] = status
        self.scripted.write_log(self._entry)

    def _record(self, body: Any) -> dict[str, Any]:
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "time": time.time(),
        }
        self.scripted.record(entry)
        self._entry = entry
        return entry

    def _error(
        self, status: int, message: str, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        error = {"error": {"message": message, "type": kind, "code": status}}
        self._json(status, error, headers)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(data).encode()
        self._answering(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kat_lsp.model.scripted",
        description="Serve a scripted OpenAI-compatible model (prints its base URL first).",
    )
    parser.add_argument("--script", required=True, type=Path, help="script JSON file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the port number here once listening")
    parser.add_argument("--log", type=Path, help="append every request as a JSON line")
    parser.add_argument("--latency", type=float, help="seconds before every answer")
    args = parser.parse_args(argv)
    try:
        server = ScriptedServer(
            args.script, host=args.host, port=args.port, latency=args.latency, log=args.log
        )
    except (OSError, ValueError) as exc:
        print(f"cannot start the scripted server: {exc}", file=sys.stderr)
        return 2
    if args.port_file:  # before the URL line: whoever reads that may look for the file
        tmp = args.port_file.with_name(args.port_file.name + ".tmp")
        tmp.write_text(str(server.port), encoding="utf-8")
        tmp.replace(args.port_file)
    print(server.base_url, flush=True)
    signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
