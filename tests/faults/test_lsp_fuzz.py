"""The language server under bad input: every request is answered, a broken stream ends it.

A real `python -m kat_lsp serve` on stdio is driven with raw bytes and our own framing
(`Raw`): requests without params, codeActions with bad shapes, framing errors, the LSP
3.17 lifecycle (before initialize, a second initialize, after shutdown, exit with and
without shutdown), a 1 MB id, and a bounded random fuzz of params for `kat/fixIssue` and
the `kat.lsp.*` commands. Asserted: each request with an id gets exactly one response with
the expected code within `ANSWER_SECONDS`, stderr stays short and free of tracebacks, a
broken stream ends the process with exit code 2 and a logged reason, and after each
recoverable case the server still answers `kat.lsp.listRuns`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pygls.uris import from_fs_path

ANSWER_SECONDS = 10.0
EXIT_SECONDS = 10.0
NOT_INITIALIZED, INVALID_REQUEST, INVALID_PARAMS, PARSE_ERROR = -32002, -32600, -32602, -32700
BROKEN = 2
COMMANDS = (
    "kat.lsp.fixIssue",
    "kat.lsp.applyCandidate",
    "kat.lsp.cancel",
    "kat.lsp.listRuns",
    "kat.lsp.candidateDiff",
    "kat.lsp.reviewCandidate",
    "kat.lsp.applyFileOperations",
)
MISSING = object()
STDERR_BYTES: list[int] = []
"""stderr of every server of this module (the figure of docs/reliability.md)."""


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def message(method: str, params: Any = MISSING, msg_id: Any = MISSING) -> bytes:
    data: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if msg_id is not MISSING:
        data["id"] = msg_id
    if params is not MISSING:
        data["params"] = params
    return json.dumps(data).encode()


class Raw:
    """A `kat-lsp serve` subprocess and a client that frames bytes itself."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr = bytearray()
        self.responses: list[dict[str, Any]] = []
        self.next_id = 1000
        self.arrived = asyncio.Event()
        self.tasks = [asyncio.ensure_future(self._read()), asyncio.ensure_future(self._err())]

    @classmethod
    async def start(cls, tmp_path: Path) -> Raw:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "KAT_"))}
        env.update(
            KAT_STATE_DIR=str(tmp_path / "state"),
            KAT_CACHE_DIR=str(tmp_path / "cache"),
            OPENAI_BASE_URL="http://127.0.0.1:9/v1",
            OPENAI_API_KEY="unused",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kat_lsp", "serve",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        out = self.proc.stdout
        while True:
            length = None
            while (line := await out.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line or length is None:
                return
            data = json.loads(await out.readexactly(length))
            if "method" in data and "id" in data:  # a request of the server: answer it
                self.send(json.dumps({"jsonrpc": "2.0", "id": data["id"], "result": None}).encode())
            elif "method" not in data:
                self.responses.append(data)
                self.arrived.set()

    async def _err(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self.stderr += chunk

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)

    def send(self, body: bytes) -> None:
        self.send_raw(frame(body))

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    async def response(self, msg_id: Any) -> dict[str, Any]:
        """The one response to `msg_id` (waits at most ANSWER_SECONDS)."""
        async with asyncio.timeout(ANSWER_SECONDS):
            while not (found := [r for r in self.responses if r.get("id") == msg_id]):
                self.arrived.clear()
                await self.arrived.wait()
        return found[0]

    async def request(self, method: str, params: Any = MISSING) -> dict[str, Any]:
        msg_id = self.new_id()
        self.send(message(method, params, msg_id))
        return await self.response(msg_id)

    async def error(self, method: str, params: Any = MISSING) -> dict[str, Any]:
        answer = await self.request(method, params)
        assert "error" in answer, answer
        return dict(answer["error"])

    async def initialize(self, folder: Path | None, **params: Any) -> dict[str, Any]:
        folders = [{"uri": from_fs_path(str(folder)), "name": "p"}] if folder else None
        answer = await self.request(
            "initialize",
            {"processId": None, "rootUri": None, "capabilities": {}, "workspaceFolders": folders}
            | params,
        )
        self.send(message("initialized", {}))
        return answer

    async def still_answers(self) -> None:
        answer = await self.request("workspace/executeCommand", {"command": "kat.lsp.listRuns"})
        assert answer.get("result") == [], answer

    async def exit_code(self) -> int:
        async with asyncio.timeout(EXIT_SECONDS):
            code = await self.proc.wait()
            await asyncio.gather(*self.tasks)
        return code

    async def close(self, lines: int = 40) -> None:
        """Shut down cleanly when possible, then check the log and the one-answer rule."""
        if self.proc.returncode is None:
            self.send(message("shutdown", None, "last"))
            self.send(message("exit"))
            self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                await self.exit_code()
            except TimeoutError:
                self.proc.kill()
                raise
        await asyncio.gather(*self.tasks)
        STDERR_BYTES.append(len(self.stderr))
        ids = Counter(json.dumps(r.get("id")) for r in self.responses if r.get("id") is not None)
        assert all(n == 1 for n in ids.values()), f"a request answered twice: {ids}"
        self.assert_quiet(lines)

    def assert_quiet(self, lines: int = 40) -> None:
        text = self.stderr.decode(errors="replace")
        assert "Traceback" not in text, text[:4000]
        assert text.count("\n") <= lines, text[:4000]
        assert all(len(line) < 600 for line in text.splitlines()), text[:4000]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture
async def server(tmp_path: Path, folder: Path) -> Any:
    raw = await Raw.start(tmp_path)
    assert "result" in await raw.initialize(folder)
    yield raw
    await raw.close()


async def test_requests_without_params_are_answered(server: Raw) -> None:
    for method in ("kat/fixIssue", "workspace/executeCommand", "textDocument/codeAction"):
        error = await server.error(method)
        assert error["code"] == INVALID_PARAMS, (method, error)
        assert len(error["message"]) < 400
    for command in COMMANDS:
        answer = await server.request("workspace/executeCommand", {"command": command})
        if command == "kat.lsp.listRuns":
            assert answer["result"] == []
        else:
            assert answer["error"]["code"] == INVALID_PARAMS, (command, answer)
    await server.still_answers()


@pytest.mark.parametrize(
    "params",
    [
        {"textDocument": {"uri": "file:///x.py"}, "range": {}, "context": {"diagnostics": []}},
        {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}},
        {"textDocument": 5, "range": "x", "context": []},
        {"textDocument": {"uri": 7}, "range": {"start": 1, "end": None}, "context": {}},
        [1, 2, 3],
        "text",
    ],
)
async def test_code_action_with_bad_shapes(server: Raw, params: Any) -> None:
    error = await server.error("textDocument/codeAction", params)
    assert error["code"] == INVALID_PARAMS
    await server.still_answers()


async def test_huge_values_are_not_echoed(server: Raw) -> None:
    huge = "2" * 1_000_000
    deep = json.loads("[" * 900 + "]" * 900)
    for method, params in [
        ("workspace/executeCommand", {"command": "kat.lsp.cancel", "arguments": [{"runId": huge}]}),
        (
            "workspace/executeCommand",
            {
                "command": "kat.lsp.candidateDiff",
                "arguments": [{"runId": [huge], "candidateId": 1}],
            },
        ),
        ("kat/fixIssue", {"issue": "x", "root": "/" + huge}),
        ("workspace/executeCommand", {"command": huge}),
        (huge, {}),
        ("kat/fixIssue", {"issue": json.loads("[" * 900 + "]" * 900)}),
        ("workspace/executeCommand", {"command": "kat.lsp.cancel", "arguments": deep}),
    ]:
        answer = await server.request(method, params)
        assert "error" in answer and len(json.dumps(answer)) < 1000, str(answer)[:2000]
    await server.still_answers()
    assert len(server.stderr) < 4000, bytes(server.stderr[:4000])


@pytest.mark.parametrize(
    "body",
    [b"[1, 2]", b"42", b'"text"', b"null", b"[" * 100_000 + b"]" * 100_000],
    ids=["array", "number", "string", "null", "deep"],
)
async def test_json_that_is_no_request_is_answered(server: Raw, body: bytes) -> None:
    server.send(body)
    answer = await server.response(None)
    assert answer["error"]["code"] in (INVALID_REQUEST, PARSE_ERROR)
    await server.still_answers()


@pytest.mark.parametrize(
    "data",
    [
        {"jsonrpc": "2.0", "id": True, "method": "kat/fixIssue"},
        {"jsonrpc": "2.0", "id": {"a": 1}, "method": "shutdown"},
        {"id": 7, "method": "kat/fixIssue", "params": {}},
        {"jsonrpc": "1.0", "id": 7, "method": "kat/fixIssue", "params": {}},
        {"jsonrpc": "2.0", "id": 7, "method": 12},
        {"jsonrpc": "2.0", "id": 7, "method": "initialized", "params": {}},
    ],
)
async def test_malformed_requests_get_invalid_request(server: Raw, data: dict[str, Any]) -> None:
    server.send(json.dumps(data).encode())
    expected_id = data["id"] if type(data["id"]) is int else None
    answer = await server.response(expected_id)
    assert answer["error"]["code"] == INVALID_REQUEST, answer
    await server.still_answers()


BROKEN_FRAMES = {
    "short length": b"Content-Length: 20\r\n\r\n" + message("kat/fixIssue", {}, 5),
    "negative length": b"Content-Length: -5\r\n\r\n" + message("kat/fixIssue", {}, 5),
    "missing header": b"\r\n" + message("kat/fixIssue", {}, 5),
    "only content-type": b"Content-Type: application/json\r\n\r\n{}",
    "garbage header": b"Hello there\r\n\r\n{}",
    "non-JSON body": frame(b"hello, server"),
    "LF only": b"Content-Length: 2\n\n{}",
    "too many headers": b"X-A: 1\r\n" * 20 + b"Content-Length: 2\r\n\r\n{}",
    "huge length": b"Content-Length: 999999999999\r\n\r\n{}",
}


@pytest.mark.parametrize("name", list(BROKEN_FRAMES))
async def test_broken_stream_ends_the_server(tmp_path: Path, folder: Path, name: str) -> None:
    raw = await Raw.start(tmp_path)
    await raw.initialize(folder)
    await raw.still_answers()
    raw.send_raw(BROKEN_FRAMES[name])
    raw.send(message("workspace/executeCommand", {"command": "kat.lsp.listRuns"}, 99))
    assert await raw.exit_code() == BROKEN
    text = raw.stderr.decode()
    assert "stream is broken" in text, text
    await raw.close()


async def test_long_length_eats_the_next_message_then_ends(tmp_path: Path, folder: Path) -> None:
    raw = await Raw.start(tmp_path)
    await raw.initialize(folder)
    body = message("kat/fixIssue", {}, 5)
    raw.send_raw(b"Content-Length: %d\r\n\r\n%s" % (len(body) + 40, body))
    raw.send(message("workspace/executeCommand", {"command": "kat.lsp.listRuns"}, 99))
    assert await raw.exit_code() == BROKEN
    await raw.close()


async def test_stream_cut_inside_a_body_ends_the_server(tmp_path: Path, folder: Path) -> None:
    raw = await Raw.start(tmp_path)
    await raw.initialize(folder)
    raw.send_raw(b'Content-Length: 100\r\n\r\n{"jsonrpc"')
    raw.proc.stdin.close()  # type: ignore[union-attr]
    assert await raw.exit_code() == BROKEN
    assert "ended 10 bytes into a 100-byte message" in raw.stderr.decode()
    await raw.close()


async def test_client_that_stops_reading_ends_the_server(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the server's answers meet a closed pipe
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kat_lsp", "serve", stdin=asyncio.subprocess.PIPE,
        stdout=write_end, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "KAT_STATE_DIR": str(tmp_path / "state")},
    )  # fmt: skip
    os.close(write_end)
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(frame(message("initialize", {"processId": None, "capabilities": {}}, 1)))
    async with asyncio.timeout(EXIT_SECONDS):
        assert await proc.wait() == BROKEN
    text = (await proc.stderr.read()).decode()
    assert "the client stopped reading" in text and "Traceback" not in text, text
    assert text.count("\n") <= 2, text


async def test_before_initialize(tmp_path: Path, folder: Path) -> None:
    raw = await Raw.start(tmp_path)
    for method, params in [
        ("kat/fixIssue", {"issue": "x"}),
        ("workspace/executeCommand", {"command": "kat.lsp.listRuns"}),
        ("textDocument/hover", {}),
        ("shutdown", None),
    ]:
        assert (await raw.error(method, params))["code"] == NOT_INITIALIZED, method
    raw.send(message("textDocument/didOpen", {"textDocument": {}}))  # dropped, no answer
    raw.send(message("initialized", {}))
    assert "result" in await raw.initialize(folder)
    await raw.still_answers()
    await raw.close()


async def test_second_initialize_changes_nothing(server: Raw, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    error = await server.error(
        "initialize", {"processId": None, "rootUri": None, "capabilities": {}}
    )
    assert error["code"] == INVALID_REQUEST
    error = await server.error("kat/fixIssue", {"issue": "x", "root": str(other)})
    assert "outside the workspace folders" in error["message"], "the folders were kept"
    await server.still_answers()


async def test_after_shutdown_requests_are_refused_and_exit_is_zero(server: Raw) -> None:
    assert (await server.request("shutdown", None))["result"] is None
    for method in ("kat/fixIssue", "shutdown", "workspace/executeCommand"):
        assert (await server.error(method, {}))["code"] == INVALID_REQUEST
    server.send(message("initialized", {}))
    server.send(message("exit"))
    assert await server.exit_code() == 0


@pytest.mark.parametrize("initialized", [True, False])
async def test_exit_without_shutdown_is_one(
    tmp_path: Path, folder: Path, initialized: bool
) -> None:
    raw = await Raw.start(tmp_path)
    if initialized:
        await raw.initialize(folder)
    raw.send(message("exit"))  # stdin stays open: the server must end on its own
    assert await raw.exit_code() == 1
    await raw.close()


@pytest.mark.parametrize("shutdown", [True, False])
async def test_stream_closed_without_exit(tmp_path: Path, folder: Path, shutdown: bool) -> None:
    raw = await Raw.start(tmp_path)
    await raw.initialize(folder)
    if shutdown:
        await raw.request("shutdown", None)
    raw.proc.stdin.close()  # type: ignore[union-attr]
    assert await raw.exit_code() == (0 if shutdown else 1)
    await raw.close()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = ("issue", "root", "samples", "rounds", "runId", "candidateId", "confirmFlagged")
SHAPED = st.dictionaries(
    st.sampled_from(KEYS), JSON | st.just("20261202-094849-3fa2c1"), max_size=5
)
PARAMS = JSON | SHAPED | st.lists(SHAPED, max_size=2)


async def test_fuzz_params_always_answered(tmp_path: Path) -> None:
    """No workspace folder is open, so no shape can start a run: only answers are tested."""
    raw = await Raw.start(tmp_path)
    await raw.initialize(None)
    loop = asyncio.get_running_loop()
    tried = Counter[str]()

    def ask(method: str, params: Any) -> dict[str, Any]:
        return asyncio.run_coroutine_threadsafe(raw.request(method, params), loop).result(30)

    @settings(
        max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        command=st.sampled_from(("kat/fixIssue", *COMMANDS)),
        params=PARAMS,
        as_arguments=st.booleans(),
    )
    def one(command: str, params: Any, as_arguments: bool) -> None:
        if command == "kat/fixIssue":
            answer = ask(command, params)
        else:
            arguments = params if as_arguments else [params]
            answer = ask("workspace/executeCommand", {"command": command, "arguments": arguments})
        tried[command] += 1
        assert "result" in answer or answer["error"]["code"] in (INVALID_PARAMS, INVALID_REQUEST)

    await asyncio.to_thread(one)
    await raw.still_answers()
    await raw.close(lines=sum(tried.values()) + 10)  # at most one line a request
    print(f"\nfuzz: {sum(tried.values())} requests {dict(tried)}; stderr {len(raw.stderr)} bytes")


def test_zz_stderr_of_the_whole_module_stays_small() -> None:
    """The figure (-s shows it): stderr over every server this module started (before the
    fix one fuzz run wrote 3.1 MB)."""
    if not STDERR_BYTES:
        pytest.skip("run with the rest of the module")
    total = sum(STDERR_BYTES)
    print(f"\nLSP fault suite: {len(STDERR_BYTES)} servers, {total} bytes of stderr")
    assert total < 200_000
