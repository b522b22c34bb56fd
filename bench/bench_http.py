"""HTTP capture overhead: µs added per request, captured and for hosts nobody prices.

Targets: ≤ 20 µs per captured (priced and recorded) request, ≤ 3 µs per request to a host
not in the catalog. Three views, all medians of the CPU time of the calling thread:

* the capture layer alone: requests' own wrapper around a ``send`` that returns a canned
  ``requests.Response`` at once, so nothing but dexcost's work is timed;
* the same request with capture off and on, in alternating rounds, through real clients
  on in-process transports (httpx.MockTransport, a requests adapter with canned answers);
* one real loopback figure (requests and urllib3 to a local server): noisy by nature.

Recorded events go to a temporary store through the real writer thread. Every captured
figure includes one ``record_cost`` (shown first), whose cost is the core's, not this layer's.
"""

from __future__ import annotations

import io
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import requests
from _timing import table
from requests.adapters import BaseAdapter

import dexcost
from dexcost.adapters.http import _requests, track_http, untrack_http
from dexcost.instrument import _patch

_LARGE_RESULTS = [
    {"id": str(i), "url": f"https://example.com/{i}", "text": "lorem ipsum " * 80}
    for i in range(1000)
]
_BODIES = {
    "cdn.example.org": b'{"ok": true}',
    "serpapi.com": b'{"organic_results": []}',
    "api.exa.ai": b'{"costDollars": {"total": 0.005}, "results": []}',
    # the same answer with 1 MiB of results before the charge, as Exa sends it
    "large": json.dumps({"results": _LARGE_RESULTS, "costDollars": {"total": 0.005}}).encode(),
}


def _per_call_us(func: Callable[[], object], calls: int) -> float:
    start = time.thread_time_ns()
    for _ in range(calls):
        func()
    return (time.thread_time_ns() - start) / calls / 1000


def _alternate(
    func: Callable[[], object], on: Callable[[], object], off: Callable[[], object], *,
    calls: int = 400, rounds: int = 21,
) -> tuple[float, float]:  # fmt: skip
    """Median µs per call with capture off, and the median per-round difference on − off."""
    for _ in range(calls // 4):
        func()
    bases, deltas = [], []
    for _ in range(rounds):
        off()
        base = _per_call_us(func, calls)
        on()
        deltas.append(_per_call_us(func, calls) - base)
        bases.append(base)
        dexcost.flush()  # the writer thread catches up outside the timed part
    off()
    return statistics.median(bases), statistics.median(deltas)


def _body(url: str) -> bytes:
    return _BODIES["large" if url.endswith("size=large") else url.split("/")[2].partition(":")[0]]


def _canned(url: str) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.headers.update({"content-type": "application/json"})
    response._content = _body(url)
    response.url = url
    return response


class CannedSend:
    """Stands in for ``requests.Session``: ``send`` answers at once from memory."""

    def send(self, request: Any, **kwargs: Any) -> requests.Response:
        return _canned(request.url)


class CannedAdapter(BaseAdapter):
    """A requests transport adapter answering from memory."""

    def send(self, request: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = _canned(request.url)
        response._content = False  # type: ignore[assignment]
        response.raw = io.BytesIO(_body(request.url))
        response.request = request
        return response

    def close(self) -> None:
        pass


def _mock(request: httpx.Request) -> httpx.Response:
    body = _body(str(request.url))
    return httpx.Response(200, content=body, headers={"content-type": "application/json"})


def _layer_rows() -> list[tuple[str, str, str]]:
    wrapper = _requests.targets()[0][2]
    sender = CannedSend()
    holder: list[_patch.Patch | None] = [None]

    def on() -> None:
        track_http(libraries=[])
        holder[0] = _patch.wrap("bench", __name__, "CannedSend.send", wrapper)

    def off() -> None:
        patch = holder[0]
        if patch is not None:
            _patch.unwrap(patch)
        untrack_http()

    rows = []
    cases = [
        ("host not in the catalog", "http://cdn.example.org/a", "≤ 3"),
        ("per-request entry", "http://serpapi.com/search.json?q=x", "≤ 20"),
        ("priced from the body", "http://api.exa.ai/search", "≤ 20"),
        ("priced from a 1 MiB body", "http://api.exa.ai/search?size=large", "as small"),
    ]
    for label, url, target in cases:
        prepared = requests.Request("GET", url).prepare()
        _, added = _alternate(lambda p=prepared: sender.send(p), on, off)  # type: ignore[misc]
        note = f"target {target} µs" if target.startswith("≤") else "target: as a small body"
        rows.append((f"capture layer, {label}", f"{added:+.2f} µs", note))
    body = _BODIES["large"]
    parse = _per_call_us(lambda: json.loads(body), 20)
    rows.append(("json.loads of that 1 MiB body (reference)", f"{parse:.0f} µs", "not paid"))
    return rows


def _client_rows() -> list[tuple[str, str, str]]:
    client = httpx.Client(transport=httpx.MockTransport(_mock))
    session = requests.Session()
    session.mount("http://", CannedAdapter())
    cases: list[tuple[str, Callable[[], object], str]] = [
        ("httpx, not in catalog", lambda: client.get("http://cdn.example.org/a"), "httpx"),
        ("httpx, per-request", lambda: client.get("http://serpapi.com/search.json"), "httpx"),
        ("httpx, from body", lambda: client.post("http://api.exa.ai/search"), "httpx"),
        ("httpx, 1 MiB body", lambda: client.post("http://api.exa.ai/search?size=large"), "httpx"),
        ("requests, not in catalog", lambda: session.get("http://cdn.example.org/a"), "requests"),
        ("requests, per-request", lambda: session.get("http://serpapi.com/search"), "requests"),
        ("requests, from body", lambda: session.post("http://api.exa.ai/search"), "requests"),
    ]  # fmt: skip
    rows = []
    for label, func, lib in cases:
        base, added = _alternate(func, lambda lib=lib: track_http(libraries=[lib]), untrack_http)  # type: ignore[misc]
        rows.append((f"{label} (in-process)", f"{added:+.2f} µs", f"request alone {base:.0f} µs"))
    return rows


def _loopback_rows() -> list[tuple[str, str, str]]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two sends: with Nagle's algorithm the body waits for
        # the client's delayed acknowledgement, 40 ms per request, and the idle thread
        # then runs every request cold.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"organic_results": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    real = socket.getaddrinfo
    socket.getaddrinfo = lambda host, *a, **k: real("127.0.0.1", *a, **k)
    rows = []
    try:
        session = requests.Session()
        for host, label in (("serpapi.com", "per-request"), ("cdn.example.org", "not in catalog")):
            url = f"http://{host}:{port}/search.json"
            base, added = _alternate(
                lambda u=url: session.get(u),  # type: ignore[misc]
                lambda: track_http(libraries=["requests", "urllib3"]),
                untrack_http,
                calls=100,
                rounds=11,
            )
            note = f"request alone {base:.0f} µs"
            rows.append((f"requests, {label} (loopback)", f"{added:+.2f} µs", note))
    finally:
        socket.getaddrinfo = real
        httpd.shutdown()
    return rows


def main() -> None:
    db = Path(tempfile.mkdtemp(prefix="dexcost-bench-")) / "bench.db"
    dexcost.init(buffer_path=str(db), auto_instrument=[], track_http=False)
    with dexcost.task("bench") as task:
        record = _per_call_us(lambda: task.record_cost("serpapi", "0.025", details={"a": 1}), 5000)
        dexcost.flush()
        rows = [("record_cost alone (core)", f"{record:.2f} µs", "part of every captured figure")]
        rows += _layer_rows()
        rows += _client_rows()
        rows += _loopback_rows()
    dexcost.close()
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    print(table(rows, f"HTTP capture overhead per request, CPU-time medians (CPython {version})"))


if __name__ == "__main__":
    main()
