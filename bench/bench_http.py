"""HTTP capture overhead: µs added per request, captured and for hosts nobody prices.

Targets: ≤ 20 µs per captured (priced and recorded) request, ≤ 3 µs per request to a host
not in the catalog. Three views, each the median over thousands of requests of the CPU
time the calling thread spends with capture on minus the same request with it off:

* the capture layer alone: requests' own wrapper around a ``send`` that returns a canned
  ``requests.Response`` at once, so nothing but dexcost's work is timed;
* the same request through real clients on in-process transports (httpx.MockTransport, a
  requests adapter with canned answers);
* requests over urllib3 (both patched), httpx (its two send methods) and aiohttp, to a
  local HTTP server in another process, over a real socket; beside each the same
  methods patched the same way with a gate that always says no, so that every call goes
  straight through, which is those rows' floor (any patch's cost there) and shows their
  noise.

Requests are paired: one with the patches in place, one with the patched attributes put
back to what they were (as ``untrack_http()`` leaves them), in alternating order, and the
figure is the median of the pairs' differences (3,000 pairs; 10,000 over a socket).
Pairing one request with the next takes out the drift of the host's speed, which moves a
per-round average by several µs. Each row runs in a fresh process; a loopback row runs
in five, and shows the median process with the range of all five: the same row moves by
about a µs from one process to the next, more than between runs in one.

Recorded events go to a temporary store through the real writer thread. Every captured
figure includes one ``record_cost`` (shown first), whose cost is the core's, not this layer's.
"""

from __future__ import annotations

import asyncio
import atexit
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import requests
from _timing import median_us, table
from requests.adapters import BaseAdapter

import dexcost
from dexcost.adapters.http import _requests, track_http, untrack_http
from dexcost.instrument import _patch
from dexcost.instrument._gated import InlineGate

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


def _switches(patches: list[_patch.Patch]) -> tuple[Callable[[], None], Callable[[], None]]:
    """Put the patches in place, and take them out (each attribute as it was before)."""
    placed = [(p.parent, p.attribute, p.proxy) for p in patches]
    removed = [(p.parent, p.attribute, None if p.created else p.original) for p in patches]

    def on() -> None:
        for parent, attribute, value in placed:
            setattr(parent, attribute, value)

    def off() -> None:
        for parent, attribute, value in removed:
            if value is None:
                delattr(parent, attribute)
            else:
                setattr(parent, attribute, value)

    return on, off


def _paired(
    func: Callable[[], object],
    patches: list[_patch.Patch],
    pairs: int = 3000,
    between: Callable[[], object] | None = None,
) -> tuple[float, float]:
    """Median µs of ``func()`` with the patches out, and the median on − off of a pair;
    ``between`` (untimed) after each pair."""
    on, off = _switches(patches)
    clock = time.thread_time_ns

    def timed(switch: Callable[[], None]) -> int:
        switch()
        start = clock()
        func()
        return clock() - start

    for _ in range(pairs // 10):
        timed(on)
        timed(off)
    bases, deltas = [], []
    for i in range(pairs):
        if i % 2:
            with_capture = timed(on)
            without = timed(off)
        else:
            without = timed(off)
            with_capture = timed(on)
        bases.append(without)
        deltas.append(with_capture - without)
        if between is not None:
            between()
    on()
    return statistics.median(bases) / 1000, statistics.median(deltas) / 1000


def _captured(
    func: Callable[[], object],
    libraries: list[str],
    between: Callable[[], object] | None,
    pairs: int = 3000,
) -> tuple[float, float]:
    """:func:`_paired` for ``func`` with HTTP capture of ``libraries``."""
    track_http(libraries=libraries)
    try:
        return _paired(func, _patch.installed("http"), pairs, between)
    finally:
        untrack_http()


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


_LARGE = "http://api.exa.ai/search?size=large"
_LAYER_CASES = [
    ("host not in the catalog", "http://cdn.example.org/a", "≤ 3"),
    ("per-request entry", "http://serpapi.com/search.json?q=x", "≤ 20"),
    ("priced from the body", "http://api.exa.ai/search", "≤ 20"),
    ("priced from a 1 MiB body", _LARGE, "as small"),
    ("1 MiB bodies back to back", _LARGE, "over the hold"),
]


def _settle() -> None:
    """What the store's writer does about once a second: price what was recorded."""
    dexcost.get_tracker()._settle()


def _between(settled: bool) -> Callable[[], object] | None:
    """A large answer is priced later while pending records' hold has room, which it
    has at any realistic rate of such answers (see ``_deferred.BodyHold``): ``settled``
    rows settle between pairs. Back to back, thousands a second, the hold is full and
    each is priced on the calling thread."""
    return _settle if settled else None


def _layer_row(index: int) -> tuple[str, str, str]:
    label, url, target = _LAYER_CASES[index]
    track_http(libraries=[])
    patch = _patch.wrap("bench", __name__, "CannedSend.send", *_requests.targets()[0][2:])
    assert patch is not None
    sender, prepared = CannedSend(), requests.Request("GET", url).prepare()
    try:
        between = _between(target == "as small")
        _, added = _paired(lambda: sender.send(prepared), [patch], between=between)
    finally:
        _patch.unwrap(patch)
        untrack_http()
    if target.startswith("≤"):
        note = f"target {target} µs"
    elif target == "as small":
        note = "target: as a small body"
    else:
        note = "priced on the calling thread"
    return f"capture layer, {label}", f"{added:+.2f} µs", note


_LOOP = "(loopback)"
#: Pairs for a loopback row: a request over a socket varies by tens of µs, and the median
#: of 3,000 differences still moved by ±1 µs from run to run.
_LOOP_PAIRS = 10_000
#: Processes per loopback row, the figure their median: the same row moves by about a µs
#: from one process to the next (memory layout), more than between pairs in one.
_LOOP_RUNS = 5


class _AiohttpGet:
    """``session.get(url)`` read to its end, on an event loop and a session of its own
    (opened at the first call, which the warm-up makes)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.session: aiohttp.ClientSession | None = None

    async def _get(self, url: str) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        async with self.session.get(url) as response:
            await response.read()

    def __call__(self, url: str) -> None:
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            atexit.register(self.close)
        self.loop.run_until_complete(self._get(url))

    def close(self) -> None:
        if self.loop is not None:
            if self.session is not None:
                self.loop.run_until_complete(self.session.close())
            self.loop.close()


def _client_cases(port: int) -> list[tuple[str, Callable[[], object], list[str], bool]]:
    """Each client row: its label, one request, the libraries captured, and whether the
    records are settled between pairs (see :func:`_between`)."""
    x = httpx.Client(transport=httpx.MockTransport(_mock))
    r = requests.Session()
    r.mount("http://", CannedAdapter())
    real = requests.Session()  # over a socket to the server in another process
    over = httpx.Client()  # the same, one patched method (no urllib3 below it)
    aio = _AiohttpGet()
    h, q, both = ["httpx"], ["requests"], ["requests", "urllib3"]
    local, loop = "(in-process)", _LOOP
    paid, free = f"http://serpapi.com:{port}/s", f"http://cdn.example.org:{port}/s"

    def x_streamed() -> None:  # the body read through the tee on the response's stream
        with x.stream("POST", "http://api.exa.ai/search") as response:
            response.read()

    def r_streamed() -> None:  # the body read through the tee on response.raw
        with r.post("http://api.exa.ai/search", stream=True) as response:
            response.content  # noqa: B018

    return [
        (f"httpx, not in catalog {local}", lambda: x.get("http://cdn.example.org/a"), h, False),
        (f"httpx, per-request {local}", lambda: x.get("http://serpapi.com/search.json"), h, False),
        (f"httpx, from body {local}", lambda: x.post("http://api.exa.ai/search"), h, False),
        (f"httpx, from body, streamed {local}", x_streamed, h, False),
        (f"httpx, 1 MiB body {local}", lambda: x.post(_LARGE), h, True),
        (f"httpx, 1 MiB back to back {local}", lambda: x.post(_LARGE), h, False),
        (f"requests, not in catalog {local}", lambda: r.get("http://cdn.example.org/a"), q, False),
        (f"requests, per-request {local}", lambda: r.get("http://serpapi.com/search"), q, False),
        (f"requests, from body {local}", lambda: r.post("http://api.exa.ai/search"), q, False),
        (f"requests, from body, streamed {local}", r_streamed, q, False),
        (f"requests, per-request {loop}", lambda: real.get(paid), both, False),
        (f"requests, not in catalog {loop}", lambda: real.get(free), both, False),
        (f"httpx, per-request {loop}", lambda: over.get(paid), h, False),
        (f"httpx, not in catalog {loop}", lambda: over.get(free), h, False),
        (f"aiohttp, per-request {loop}", lambda: aio(paid), ["aiohttp"], False),
        (f"aiohttp, not in catalog {loop}", lambda: aio(free), ["aiohttp"], False),
    ]  # fmt: skip


def _to_the_local_server() -> None:
    real = socket.getaddrinfo  # every host is the local server
    socket.getaddrinfo = lambda host, *a, **k: real("127.0.0.1", *a, **k)  # type: ignore[assignment]


def _client_row(index: int, port: int) -> tuple[str, str, str]:
    _to_the_local_server()
    label, func, libraries, settled = _client_cases(port)[index]
    pairs = _LOOP_PAIRS if label.endswith(_LOOP) else 3000
    base, added = _captured(func, libraries, _between(settled), pairs)
    return label, f"{added:+.2f} µs", f"request alone {base:.0f} µs"


def _through(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return wrapped(*args, **kwargs)


#: A gate that always says no, compiled into the patched method as capture's gate is.
_NEVER = InlineGate("_dx_go = False", {})


#: Each loopback floor row: its library, and the methods its capture patches there.
_FLOORS = {
    "requests": [
        ("requests.sessions", "Session.send"),
        ("urllib3.connectionpool", "HTTPConnectionPool.urlopen"),
    ],
    "httpx": [("httpx", "Client.send"), ("httpx", "AsyncClient.send")],
    "aiohttp": [("aiohttp.client", "ClientSession._request")],
}


def _floor_row(library: str, port: int) -> tuple[str, str, str]:
    """A loopback row's floor: the methods capture patches for ``library``, patched as
    capture patches them (exact signature, a gate) with a gate that always says no, so
    each call goes straight through: what any patch costs there, and the noise of those
    rows."""
    _to_the_local_server()
    clients: dict[str, Callable[[], Callable[[str], object]]] = {
        "requests": lambda: requests.Session().get,
        "httpx": lambda: httpx.Client().get,
        "aiohttp": _AiohttpGet,
    }
    get = clients[library]()
    never = (_NEVER, 1, _through)
    patches = [_patch.wrap("bench", m, path, _through, never) for m, path in _FLOORS[library]]
    placed = [p for p in patches if p is not None]
    try:
        url = f"http://cdn.example.org:{port}/s"
        base, added = _paired(lambda: get(url), placed, _LOOP_PAIRS)
    finally:
        for patch in placed:
            _patch.unwrap(patch)
    label = f"{library}, a patch that calls straight through (loopback)"
    return label, f"{added:+.2f} µs", f"the floor of the two above; alone {base:.0f} µs"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two sends: with Nagle's algorithm the body waits for
    # the client's delayed acknowledgement, 40 ms per request, and the idle client then
    # runs every request cold.
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


def _serve() -> None:
    """The loopback server, run in its own process: its port on stdout, then serve."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


def _row(name: str, port: int) -> tuple[str, str, str]:
    """One row of the table, measured in this (fresh) process."""
    db = Path(tempfile.mkdtemp(prefix="dexcost-bench-")) / "bench.db"
    dexcost.init(buffer_path=str(db), auto_instrument=[], track_http=False)
    try:
        with dexcost.task("bench") as task:
            kind, _, index = name.partition(":")
            if kind == "record":
                details = {"a": 1}
                record = median_us(
                    lambda: task.record_cost("serpapi", "0.025", details=details),
                    calls=1000,
                    rounds=15,
                    clock=time.thread_time_ns,
                )
                return (
                    "record_cost alone (core)",
                    f"{record:.2f} µs",
                    "part of every captured figure",
                )
            if kind == "parse":
                body = _BODIES["large"]
                parse = _per_call_us(lambda: json.loads(body), 20)
                return "json.loads of that 1 MiB body (reference)", f"{parse:.0f} µs", "not paid"
            if kind == "layer":
                return _layer_row(int(index))
            if kind == "floor":
                return _floor_row(index, port)
            return _client_row(int(index), port)
    finally:
        dexcost.close()


def _run_row(name: str, port: str) -> tuple[str, str, str]:
    """One row measured in a fresh process."""
    out = subprocess.run(
        [sys.executable, __file__, "--row", name, port], capture_output=True, text=True, check=True
    )
    label, figure, note = json.loads(out.stdout)
    return label, figure, note


def _median_row(runs: list[tuple[str, str, str]]) -> tuple[str, str, str]:
    """The median run of a row's runs (an odd number, each in its own process), and their
    range."""
    ordered = sorted(runs, key=lambda run: float(run[1].split()[0]))
    label, figure, note = ordered[len(ordered) // 2]
    low, high = ordered[0][1].split()[0], ordered[-1][1].split()[0]
    return label, figure, f"{note}; {len(runs)} processes {low} to {high}"


def main() -> None:
    if sys.argv[1:] == ["--serve"]:
        _serve()
        return
    if sys.argv[1:2] == ["--row"]:
        print(json.dumps(_row(sys.argv[2], int(sys.argv[3]))))
        return
    # Each row in a fresh process: a process that has handled 1 MiB bodies runs every later
    # request slower (a row's "request alone" then grew from 136 to 247 µs).
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    port = server.stdout.readline().strip()
    names = ["record", *(f"layer:{i}" for i in range(len(_LAYER_CASES))), "parse"]
    cases = _client_cases(0)
    loopback = set()
    for i, (label, _, libraries, _) in enumerate(cases):  # each loopback client, its floor
        names.append(f"client:{i}")
        library = libraries[0]
        later = [c for c in cases[i + 1 :] if c[2][0] == library and c[0].endswith(_LOOP)]
        if label.endswith(_LOOP):
            loopback.add(f"client:{i}")
            if not later:
                names.append(f"floor:{library}")
                loopback.add(f"floor:{library}")
    rows = []
    try:
        for name in names:
            runs = [_run_row(name, port) for _ in range(_LOOP_RUNS if name in loopback else 1)]
            rows.append(runs[0] if len(runs) == 1 else _median_row(runs))
    finally:
        server.kill()
        server.wait()
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    print(table(rows, f"HTTP capture overhead per request, CPU-time medians (CPython {version})"))


if __name__ == "__main__":
    main()
