"""What every HTTP library wrapper shares: the hot-path check, the scope claim, the record.

A wrapper first asks :func:`_start` whether the call is to be recorded at all: tracking
is on, no billing layer owns the call already, and the URL resolves to a price (a domain
rate or a catalog entry). For the common case, a host nobody prices, that is reading
the host and one dict lookup, and nothing else. Only then does the wrapper claim the billing scope
(:mod:`dexcost._scope`), so a provider SDK above it or a transport below it records
nothing, and hands the response to its library's ``finish`` function, which prices it
now or once the user has read the body (:mod:`._body`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dexcost import _api, _guard, _scope
from dexcost._money import to_money
from dexcost._tracked_task import is_free
from dexcost._tracker import CostTracker as _CostTracker
from dexcost.catalog._match import split_url
from dexcost.instrument._gated import InlineGate

from . import _known

if TYPE_CHECKING:
    from dexcost._tracker import CostTracker
    from dexcost.instrument._patch import GateSpec, WrapperFn

__all__ = [
    "LAYER",
    "URL_HOST",
    "Call",
    "Finish",
    "Host",
    "Target",
    "async_wrapper",
    "authority",
    "authority_of",
    "gate",
    "set_tracker",
    "sync_wrapper",
]

#: The billing layer name HTTP capture claims in :mod:`dexcost._scope`.
LAYER = "http"

#: ``host(instance, args, kwargs)``: the host (or ``host:port``) a call goes to; cheap.
Host = Callable[[Any, tuple[Any, ...], dict[str, Any]], str]
#: ``target(instance, args, kwargs) -> (url, method)``: asked only when the host is priced.
Target = Callable[[Any, tuple[Any, ...], dict[str, Any]], "tuple[str, str]"]
#: ``finish(call, instance, args, kwargs, response) -> response``: price now or later.
Finish = Callable[["Call", Any, tuple[Any, ...], dict[str, Any], Any], Any]

_perf_ns = time.perf_counter_ns
# The hot path reads these directly: a call to their public getters costs as much as the
# rest of the check for a host nobody prices.
_owner = _scope._owner.get
_claim = _scope.claim
_release = _scope.release
_report = _guard.report
_hosts = _known.hosts
_resolved = _known.resolved
_may_price = _known.may_price
_resolve = _known.resolve

# The tracker passed to track_http(); None means the one dexcost.init() created.
_explicit: list[CostTracker | None] = [None]


def set_tracker(tracker: CostTracker | None) -> None:
    """Record into ``tracker``, or into the global tracker of ``dexcost.init()`` when None."""
    _explicit[0] = tracker


class Call:
    """One priced HTTP call in flight: where it goes, who prices it, where it is recorded."""

    __slots__ = ("_target", "latency_ms", "library", "method", "needs_body", "tracker")

    def __init__(
        self, tracker: CostTracker, target: _known.PricedURL, library: str, method: str
    ) -> None:
        self.tracker = tracker
        self._target = target
        self.library = library
        self.method = method
        self.latency_ms = 0
        #: Whether pricing reads the response body (else headers are enough).
        self.needs_body = target.needs_body

    def record(self, status: int, headers: object, body: object) -> None:
        """Price the response and record it in the current task (or the session task).

        Only 2xx answers are recorded: paid APIs do not bill rejected or failed requests,
        and a redirect is billed, if at all, by the request that follows it. A call that
        prices to zero with some confidence (a poll of a running job, a free endpoint) is
        not an event; one that could not be priced is, with confidence ``unknown``.

        A body that alone sets the price (no header read) is priced later, off the
        calling thread, like an instrumented LLM call (see ``_deferred``, which bounds
        what pending records keep of large bodies).
        """
        if not 200 <= status < 300:
            return
        target = self._target
        tracker = self.tracker
        own = type(tracker) is _CostTracker  # else a subclass: through its record_cost
        result = target.fixed
        held: bytes | None = None  # a body that alone sets the price: priced later
        if result is not None:  # the same for every response: checked once
            if target.free:
                return
            amount = target.amount
        elif own and target.from_body and type(body) is bytes:
            held = body
        else:
            result = target.priced.extract_cost(headers, body)
            amount = to_money(result.amount)
            if is_free(amount, result.confidence):
                return
        details = {
            "library": self.library,
            "method": self.method.upper(),
            "host": target.host,
            "path": target.path,
            "status": status,
            "latency_ms": self.latency_ms,
        }
        if held is not None:
            tracker.current()._record_priced_later(target.priced, held, target.version, details)
            return
        assert result is not None  # fixed, or extracted above
        if own:
            tracker.current()._record_priced(
                result.service_name,
                amount,
                result.confidence,
                result.pricing_source,
                target.version,
                details,
            )
        else:
            # A subclass (or a stand-in) sees the call through its public method, as an
            # instrumented LLM call goes through its ``record_llm_call``.
            tracker.record_cost(
                result.service_name,
                amount,
                cost_confidence=result.confidence,
                pricing_source=result.pricing_source,
                pricing_version=target.version,
                details=details,
            )

    def __repr__(self) -> str:
        target = self._target
        return f"<http.Call {self.library} {self.method} {target.host}{target.path}>"


def authority_of(url: str) -> str:
    """A gate's expression for the authority of ``url``, an expression giving an absolute
    URL as a str: what follows ``://`` up to the next ``/``, read in place (a function
    call there costs an unpriced request over a socket about half a µs). Of a URL
    without a path it keeps the query or fragment; :func:`_known.may_price` drops them.
    """
    return f'{url}.partition("://")[2].partition("/")[0]'


#: A gate's host expression for a send method whose request has its URL as a str.
URL_HOST = authority_of("{1}.url")


def authority(url: str) -> str:
    """The ``host[:port]`` part of an absolute URL (what :func:`split_url` gives, faster)."""
    head, sep, rest = url.partition("://")
    found = (rest if sep else head).partition("/")[0]
    if "?" in found or "#" in found:
        return split_url(url)[0]
    return found


def _start(
    site: str,
    library: str,
    name: str | None,
    host: Host,
    target: Target,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Call | None:
    """The hot path: a :class:`Call` if this request is to be recorded, else None.

    ``name`` is the host the wrapper read (empty if reading it failed: read here again,
    so the error is reported; None when a gate has checked it). For a host nobody
    prices this is one dict lookup. An error in it means the call is not recorded,
    never more.
    """
    try:
        tracker = _explicit[0]
        if tracker is None:
            tracker = _api._tracker  # what _api.get_tracker() returns
            if tracker is None:
                return None
        if name is not None:  # else a gate let the call through: its host may be priced
            if not name:  # the wrapper could not read it
                name = host(instance, args, kwargs)
            known = _hosts.get(name)
            if not (_may_price(name) if known is None else known):
                return None
        url, method = target(instance, args, kwargs)
        resolved = _resolved.get((method, url))  # a URL seen before, as it was
        if resolved is None:
            resolved = _resolve(url, method)
            if resolved is None:
                return None
        return Call(tracker, resolved, library, method)
    except Exception as exc:
        _report(site, exc)
        return None


#: The gate's source (see ``dexcost.instrument._gated.InlineGate``); ``HOST`` stands for
#: the library's host expression. Whether an outer layer owns the call is asked last:
#: for a host nobody prices it does not matter, and a context variable read in a fresh
#: asyncio task's context costs an unpriced aiohttp request about half a µs. The host
#: cache is never stale (emptied when the prices change), so it is read as it is.
_GATE = """\
try:
    _dx_host = HOST
    _dx_go = _dx_hosts.get(_dx_host)
    if _dx_go is None:
        _dx_go = _dx_may_price(_dx_host)
    if _dx_go:
        _dx_go = _dx_owner() is None
except Exception as _dx_error:
    _dx_report("http.gate", _dx_error)
    _dx_go = _dx_owner() is None
"""


def gate(host: str, wrapper: WrapperFn, count: int = 1, **names: Any) -> GateSpec:
    """A gate for a library's send method (see ``dexcost.instrument._gated``): ``host``
    is an expression naming the host from the instance ``{0}`` and the method's first
    ``count`` parameters ``{1}``... (see :func:`authority_of`); it may call the functions
    in ``names`` (named ``_dx_...``). ``wrapper`` (built with ``gated=True``) runs for
    the calls it lets through.

    It lets through every call that may be recorded: none that an outer billing layer
    owns, none to a host nobody prices (learnt here, once per host). An error is
    reported and lets the call through.
    """
    spec = InlineGate(
        _GATE.replace("HOST", host),
        {
            "_dx_owner": _owner,
            "_dx_hosts": _hosts,
            "_dx_may_price": _may_price,
            "_dx_report": _report,
            **names,
        },
    )
    return spec, count, wrapper


#: What :func:`_host_to_check` returns for a host the cache knows nobody prices.
_UNPRICED = "\0unpriced"


def _host_to_check(host: Host, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """For a wrapper that no gate precedes: ``_UNPRICED`` for a host the cache knows
    nobody prices, else the host for :func:`_start` (empty if reading it failed:
    ``_start`` reads it again and reports)."""
    try:
        name = host(instance, args, kwargs)
        return _UNPRICED if _hosts.get(name) is False else name
    except Exception:
        return ""


def sync_wrapper(
    library: str, host: Host, target: Target, finish: Finish, *, gated: bool = False
) -> WrapperFn:
    """The wrapper for a library's synchronous send method; ``gated``: only for the
    calls a :func:`gate` lets through, which has checked the host already."""
    site = f"http.{library}"

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name = None  # a gate let the call through: not owned, its host may be priced
        if not gated:
            if _owner() is not None:
                return wrapped(*args, **kwargs)
            name = _host_to_check(host, instance, args, kwargs)
            if name is _UNPRICED:
                return wrapped(*args, **kwargs)
        call = _start(site, library, name, host, target, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = _claim(LAYER)
        if token is None:
            return wrapped(*args, **kwargs)
        started = _perf_ns()
        try:
            response = wrapped(*args, **kwargs)
        finally:
            _release(token)
        call.latency_ms = (_perf_ns() - started) // 1_000_000
        try:
            return finish(call, instance, args, kwargs, response)
        except Exception as exc:
            _report(site, exc)
            return response

    return wrapper


def async_wrapper(
    library: str, host: Host, target: Target, finish: Finish, *, gated: bool = False
) -> WrapperFn:
    """The wrapper for a library's coroutine send method; ``gated`` as for
    :func:`sync_wrapper`."""
    site = f"http.{library}"

    async def wrapper(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        name = None  # a gate let the call through: not owned, its host may be priced
        if not gated:
            if _owner() is not None:
                return await wrapped(*args, **kwargs)
            name = _host_to_check(host, instance, args, kwargs)
            if name is _UNPRICED:
                return await wrapped(*args, **kwargs)
        call = _start(site, library, name, host, target, instance, args, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        token = _claim(LAYER)
        if token is None:
            return await wrapped(*args, **kwargs)
        started = _perf_ns()
        try:
            response = await wrapped(*args, **kwargs)
        finally:
            _release(token)
        call.latency_ms = (_perf_ns() - started) // 1_000_000
        try:
            return finish(call, instance, args, kwargs, response)
        except Exception as exc:
            _report(site, exc)
            return response

    return wrapper
