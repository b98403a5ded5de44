"""A misbehaving OpenAI-compatible endpoint on 127.0.0.1 (stdlib only), one fault per server.

`BadServer(fault)` answers every `POST .../chat/completions` with the fault: an HTTP
error as real servers phrase it (401, 404 HTML page, 404 model, 400 context length,
400 tools unsupported, 429, 500), a 200 that is no API reply (HTML, plain text), a
stream that stalls or is cut before `[DONE]`, a reply that drips one byte a second, a
40 MB reply or error page, tool-call arguments nested 50 000 deep. `requests` records
what came in; `stop()` wakes every handler that is sleeping out its fault.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HTML_404 = (
    b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>Not Found</body></html>"
)
HTML_200 = b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
DEEP = 50_000
HUGE_BYTES = 40 * 1024 * 1024

ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "401": (401, {"message": "Incorrect API key provided: sk-bad.", "code": "invalid_api_key"}),
    "404-model": (404, {"message": "The model `scripted` does not exist.", "code": "model_not_found"}),
    "400-context": (400, {"message": "This model's maximum context length is 2048 tokens. However, your messages resulted in 9120 tokens.", "code": "context_length_exceeded"}),
    "400-tools": (400, {"message": "registry.ollama.ai/library/gemma:2b does not support tools"}),
    "429": (429, {"message": "Rate limit reached for requests", "code": "rate_limit_exceeded"}),
    "500": (500, {"message": "CUDA out of memory"}),
}  # fmt: skip


def completion(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "bad-1",
        "object": "chat.completion",
        "model": "scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10},
    }


def deep_call() -> dict[str, Any]:
    arguments = '{"command": ' + "[" * DEEP + "]" * DEEP + "}"
    call = {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": arguments}}
    return completion({"role": "assistant", "content": None, "tool_calls": [call]})


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def chunk(content: str) -> dict[str, Any]:
    return {"id": "bad-1", "choices": [{"index": 0, "delta": {"content": content}}]}


class BadServer:
    """`with BadServer("401") as server: ... server.base_url ... server.requests`."""

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.requests: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> BadServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_owner: BadServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        owner = self.server_owner
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with owner.lock:
            owner.requests.append({"path": self.path, "body": body, "at": time.monotonic()})
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.answer(owner.fault, body)  # the client may give up: the point of most faults

    def answer(self, fault: str, body: dict[str, Any]) -> None:
        owner = self.server_owner
        if fault in ERRORS:
            status, error = ERRORS[fault]
            return self.send(status, json.dumps({"error": error}).encode())
        if fault == "404-path":
            return self.send(404, HTML_404, "text/html")
        if fault == "html-200":
            return self.send(200, HTML_200, "text/html")
        if fault == "text-200":
            return self.send(200, b"OK", "text/plain")
        if fault == "deep":
            return self.send(200, json.dumps(deep_call()).encode())
        if fault == "huge-error":  # a proxy's error page that never ends
            return self.send(500, b"E" * HUGE_BYTES, "text/plain")
        if fault == "huge":
            content = "x" * HUGE_BYTES
            return self.send(
                200, json.dumps(completion({"role": "assistant", "content": content})).encode()
            )
        if fault == "drip":  # a reply that never stops arriving: one byte a second
            self.head(200, "application/json", length=10_000)
            while not owner.stopping.wait(1.0):
                self.wfile.write(b" ")
                self.wfile.flush()
            return None
        if fault in ("stall", "cut"):  # a stream that stops: forever, or closed early
            self.head(200, "text/event-stream")
            for word in ("I will ", "look at "):
                self.wfile.write(sse(chunk(word)))
                self.wfile.flush()
            if fault == "stall":
                owner.stopping.wait(600)
            self.close_connection = True
            return None
        raise AssertionError(f"unknown fault {fault}")

    def head(self, status: int, content_type: str, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        else:
            self.send_header("Connection", "close")
        self.end_headers()

    def send(self, status: int, data: bytes, content_type: str = "application/json") -> None:
        self.head(status, content_type, len(data))
        self.wfile.write(data)
