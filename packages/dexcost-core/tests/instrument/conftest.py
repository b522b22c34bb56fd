"""Fixtures for the provider tests: a fake provider API on 127.0.0.1 and a real tracker.

Every SDK runs unchanged and talks HTTP to :class:`FakeAPI`, a real local server that
answers with canned bodies shaped like the providers' (JSON, server-sent events, AWS
event streams). Nothing is mocked inside the SDKs.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import socket
import sqlite3
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

# litellm fetches its price map over the network at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dexcost
from dexcost import _guard
from dexcost.instrument import ALL_SUPPORTED_INSTRUMENTS, get_instrumentor


class Reply:
    """One canned HTTP answer."""

    def __init__(
        self,
        body: bytes,
        status: int = 200,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        close_delimited: bool = False,
    ) -> None:
        self.body = body
        self.status = status
        self.content_type = content_type
        self.headers = headers or {}
        self.close_delimited = close_delimited


class FakeAPI:
    """A provider API on 127.0.0.1: queue replies, then point an SDK's base URL here."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.unexpected = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                api.requests.append({"method": self.command, "path": self.path, "body": body})
                try:
                    reply = api.replies.popleft()
                except IndexError:
                    api.unexpected += 1
                    reply = Reply(b'{"error": "no reply queued"}', status=500)
                self.send_response(reply.status)
                self.send_header("content-type", reply.content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.close_delimited:
                    self.send_header("connection", "close")
                    self.close_connection = True
                else:
                    self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
                self.wfile.flush()

            do_POST = do_GET = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def reply_json(
        self, payload: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self.replies.append(Reply(json.dumps(payload).encode(), status, headers=headers))

    def reply_sse(self, events: list[Any], *, done: bool = False) -> None:
        """Server-sent events: dicts as ``data:`` lines, ``(name, dict)`` with ``event:``."""
        parts = []
        for event in events:
            if isinstance(event, tuple):
                name, data = event
                parts.append(f"event: {name}\ndata: {json.dumps(data)}\n\n")
            else:
                parts.append(f"data: {json.dumps(event)}\n\n")
        if done:
            parts.append("data: [DONE]\n\n")
        body = "".join(parts).encode()
        self.replies.append(Reply(body, content_type="text/event-stream", close_delimited=True))

    def reply_lines(self, items: list[Any]) -> None:
        """A newline-delimited JSON stream."""
        body = "".join(json.dumps(item) + "\n" for item in items).encode()
        self.replies.append(Reply(body, content_type="application/x-ndjson", close_delimited=True))

    def reply_bytes(
        self,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        status: int = 200,
    ) -> None:
        self.replies.append(Reply(body, status, content_type, headers))

    def reply_raw(self, reply: Reply) -> None:
        self.replies.append(reply)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def aws_event(event_type: str, payload: dict[str, Any]) -> bytes:
    """One message of the AWS event-stream encoding (what Bedrock streams send)."""
    headers = b""
    for name, value in (
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ):
        raw = value.encode()
        headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(raw)) + raw
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + headers + body
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


def aws_chunk(payload: dict[str, Any]) -> bytes:
    """An InvokeModelWithResponseStream ``chunk`` event carrying ``payload`` as JSON bytes."""
    data = base64.b64encode(json.dumps(payload).encode()).decode()
    return aws_event("chunk", {"bytes": data})


@pytest.fixture(scope="session")
def _server() -> Iterator[FakeAPI]:
    api = FakeAPI()
    yield api
    api.close()


@pytest.fixture
def fake_api(_server: FakeAPI) -> Iterator[FakeAPI]:
    """The fake provider API, with no replies queued; fails the test on stray requests."""
    _server.replies.clear()
    _server.requests.clear()
    _server.unexpected = 0
    yield _server
    assert _server.unexpected == 0, "the SDK sent a request no reply was queued for"


@pytest.fixture
def unused_port() -> int:
    """A local port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _guard_stays_silent() -> Iterator[None]:
    """Fail any test in which dexcost swallowed one of its own errors."""
    _guard.clear()
    yield
    errors = _guard.swallowed()
    _guard.clear()
    if errors:
        pytest.fail(f"dexcost swallowed internal errors: {errors!r}")


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[dexcost.CostTracker]:
    """A real tracker on its own SQLite file, with nothing instrumented yet."""
    t = dexcost.CostTracker(auto_instrument=[], buffer_path=str(tmp_path / "instrument.db"))
    yield t
    t.close()
    for name in ALL_SUPPORTED_INSTRUMENTS:  # also what a failing test left patched
        get_instrumentor(name).uninstrument()


def _recorded(tracker: dexcost.CostTracker, event_type: str) -> list[dict[str, Any]]:
    tracker.flush()
    con = sqlite3.connect(tracker.store.path)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute(
            "SELECT * FROM events WHERE event_type = ? ORDER BY occurred_at, event_id",
            (event_type,),
        ).fetchall()
    finally:
        con.close()
    events = []
    for row in rows:
        event = dict(row)
        event["details"] = json.loads(event["details"] or "{}")
        events.append(event)
    return events


@pytest.fixture
def events(tracker: dexcost.CostTracker) -> Callable[..., list[dict[str, Any]]]:
    """``events(event_type="llm_call")``: what the tracker stored, oldest first."""

    def read(event_type: str = "llm_call") -> list[dict[str, Any]]:
        return _recorded(tracker, event_type)

    return read


@pytest.fixture
def one_event(tracker: dexcost.CostTracker) -> Callable[..., dict[str, Any]]:
    """``one_event(event_type="llm_call")``: the single stored event (fails otherwise)."""

    def read(event_type: str = "llm_call") -> dict[str, Any]:
        found = _recorded(tracker, event_type)
        assert len(found) == 1, found
        return found[0]

    return read


class AWS:
    """Encoders for AWS event-stream bodies (fixture ``aws``)."""

    event = staticmethod(aws_event)
    chunk = staticmethod(aws_chunk)


@pytest.fixture
def aws() -> type[AWS]:
    return AWS
