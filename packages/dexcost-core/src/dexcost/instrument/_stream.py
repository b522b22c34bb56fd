"""The one transparent stream proxy, sync and async, that records exactly once.

A provider wrapper that gets a stream back returns ``TrackedStream(stream, observer)``
(or ``TrackedAsyncStream``) instead. The proxy is the stream for every other purpose
(``isinstance``, attributes, ``.response``); it yields every item unchanged, also when
the stream is used with ``with`` / ``async with``, and it shows each item to the
observer. The observer records once, whichever comes first: the stream is exhausted,
fails, is closed, leaves its ``with`` block, or is garbage collected. A stream read only
partly still records what it saw. Recording runs in a copy of the context the call was
made in, so the event lands in the task that made the call even when the stream is
consumed or collected elsewhere.

``hold=layer`` makes the stream own the billing scope while it reads, for streams
whose requests or callbacks happen during reading (generator-based SDK streams,
litellm's end-of-stream callback). ``lazy=True`` says nothing was sent before the first
read: a lazy stream never read records nothing, and its observer hears when that first
read ended (:meth:`StreamObserver.sent`), in the reader's context.
"""

from __future__ import annotations

import contextvars
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any

from dexcost import _guard, _scope

from ._proxy import ObjectProxy

__all__ = ["AsyncObserved", "StreamObserver", "TrackedAsyncStream", "TrackedStream"]


class StreamObserver:
    """Sees each item of one stream; :meth:`record` runs once, in the call's context.

    Subclasses keep only what they need from the items (usage, model, a count) and
    record in :meth:`record`. ``last`` is the last item seen and ``items`` how many
    were; ``completed`` is True when the stream was read to its end, ``error`` is the
    exception that ended it early, if any.
    """

    __slots__ = (
        "_context",
        "_once",
        "completed",
        "error",
        "first_item_ns",
        "items",
        "last",
        "requested",
        "started_ns",
    )

    #: Where errors in this observer are reported (``_guard`` site name).
    site = "instrument.stream"
    #: False when ``last`` and ``items`` are all :meth:`record` needs: :meth:`observe`
    #: is then not called at all, which keeps long streams cheap.
    per_item = True

    def __init__(self, started_ns: int) -> None:
        self._once = [True]
        self._context = contextvars.copy_context()
        self.started_ns = started_ns
        self.first_item_ns: int | None = None
        self.completed = False
        self.error: BaseException | None = None
        self.last: Any = None
        self.items = 0
        #: False for a lazy stream not read yet: its request was never sent.
        self.requested = True

    def observe(self, item: Any) -> None:
        """Look at one item (must be cheap: it runs for every chunk)."""

    def sent(self) -> None:
        """A lazy stream's first read ended (its request answered or failed).

        Runs once, in the reader's context, before the first item is observed or the
        failure recorded: what the request left in that context can be taken here.
        """

    def record(self) -> None:
        """Record the call from what was observed (runs at most once)."""

    def finish(self) -> None:
        """Record now unless already done. Safe to call from any thread, any number of times."""
        try:
            self._once.pop()  # atomic: only one caller gets the item
        except IndexError:
            return
        if not self.requested:
            return
        _guard.call(self.site, None, self._context.run, self.record)

    def latency_ms(self) -> int:
        """Milliseconds from the call to now (the end of the stream)."""
        return (time.perf_counter_ns() - self.started_ns) // 1_000_000

    def time_to_first_item_ms(self) -> int | None:
        """Milliseconds from the call to the first item, if any arrived."""
        if self.first_item_ns is None:
            return None
        return (self.first_item_ns - self.started_ns) // 1_000_000


def _held(it: Iterator[Any], layer: str) -> Iterator[Any]:
    """Read ``it`` with ``layer`` owning the scope (see ``hold`` of the proxies)."""
    while True:
        token = _scope.hold(layer)
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            _scope.release(token)
        yield item


def _sent(observer: StreamObserver) -> None:
    _guard.call(observer.site, None, observer.sent)


def _observed(it: Iterator[Any], observer: StreamObserver) -> Iterator[Any]:
    """Yield ``it``'s items unchanged, showing each to ``observer``; finish at the end."""
    sending = not observer.requested  # lazy: this first read sends the request
    observer.requested = True
    try:
        for item in it:  # the first item, then the rest in the loop for its kind
            observer.first_item_ns = time.perf_counter_ns()
            if sending:
                sending = False
                _sent(observer)
            observer.last = item
            observer.items = 1
            if observer.per_item:
                yield from _each(item, it, observer)
            else:
                yield item
                for rest in it:  # the same iterator, after its first item
                    observer.last = rest
                    observer.items += 1
                    yield rest
            break
        observer.completed = True
    except Exception as exc:
        observer.error = exc
        raise
    finally:
        if sending:  # the first read failed or found nothing
            _sent(observer)
        observer.finish()


def _each(first: Any, it: Iterator[Any], observer: StreamObserver) -> Iterator[Any]:
    """The per-item loop: :meth:`StreamObserver.observe` sees every item."""
    observe = observer.observe
    watching = True
    item = first
    while True:
        if watching:
            try:
                observe(item)
            except Exception as exc:  # our bug: stop watching, never break the stream
                watching = False
                _guard.report(observer.site, exc)
        yield item
        try:
            item = next(it)
        except StopIteration:
            return
        observer.last = item
        observer.items += 1


class TrackedStream(ObjectProxy):
    """A sync stream (iterator) that records its call once; otherwise the stream itself."""

    def __init__(
        self,
        wrapped: Any,
        observer: StreamObserver,
        *,
        hold: str | None = None,
        lazy: bool = False,
    ) -> None:
        super().__init__(wrapped)
        self._self_observer = observer
        self._self_hold = hold
        self._self_gen: Iterator[Any] | None = None
        if lazy:  # nothing is sent until the first read; unread, nothing to record
            observer.requested = False

    def _dexcost_iter(self) -> Iterator[Any]:
        gen = self._self_gen
        if gen is None:
            source = iter(self.__wrapped__)
            if self._self_hold is not None:
                source = _held(source, self._self_hold)
            gen = self._self_gen = _observed(source, self._self_observer)
        return gen

    def __iter__(self) -> Iterator[Any]:
        return self._dexcost_iter()

    def _dexcost_finish(self) -> None:
        """Record now with what was read (the body under the stream was closed)."""
        self._self_observer.finish()

    def __next__(self) -> Any:
        return next(self._dexcost_iter())

    def __enter__(self) -> TrackedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_observer.finish()

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_observer.finish()

    def __del__(self) -> None:
        # Once iteration started, the generator finishes (it may outlive this proxy:
        # ``for x in proxy`` keeps only the generator).
        if self._self_gen is None:
            self._self_observer.finish()


async def _finish_after(awaitable: Awaitable[Any], observer: StreamObserver) -> Any:
    try:
        return await awaitable
    finally:
        observer.finish()


class AsyncObserved(ObjectProxy):
    """An async object read by the caller (a stream, a body), otherwise unchanged, whose
    observer finishes when it is closed, leaves its ``async with`` block or is collected.
    """

    def __init__(self, wrapped: Any, observer: StreamObserver) -> None:
        super().__init__(wrapped)
        self._self_observer = observer

    async def __aenter__(self) -> Any:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_observer.finish()

    def close(self) -> Any:
        result = self.__wrapped__.close()  # sync or a coroutine, depending on the SDK
        if inspect.isawaitable(result):
            return _finish_after(result, self._self_observer)
        self._self_observer.finish()
        return result

    def aclose(self) -> Any:
        return _finish_after(self.__wrapped__.aclose(), self._self_observer)

    def __del__(self) -> None:
        self._self_observer.finish()


class TrackedAsyncStream(AsyncObserved):
    """An async stream that records its call once; otherwise the stream itself."""

    def __init__(
        self,
        wrapped: Any,
        observer: StreamObserver,
        *,
        hold: str | None = None,
        lazy: bool = False,
    ) -> None:
        super().__init__(wrapped, observer)
        self._self_hold = hold
        self._self_ait: Any = None
        self._self_watching = True
        if lazy:  # nothing is sent until the first read; unread, nothing to record
            observer.requested = False

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    def _dexcost_finish(self) -> None:
        """Record now with what was read (the body under the stream was closed)."""
        self._self_observer.finish()

    async def __anext__(self) -> Any:
        observer = self._self_observer
        it = self._self_ait
        if it is None:
            wrapped = self.__wrapped__
            step = getattr(type(wrapped), "__anext__", None)
            # An async iterator is its own; aiobotocore's event stream names an async
            # generator function ``__anext__``, and only ``__aiter__()`` iterates it.
            if step is None or inspect.isasyncgenfunction(step):
                it = wrapped.__aiter__()
            else:
                it = wrapped
            self._self_ait = it
        sending = not observer.requested  # lazy: this first read sends the request
        observer.requested = True
        layer = self._self_hold
        token = _scope.hold(layer) if layer is not None else None
        try:
            try:
                item = await it.__anext__()
            finally:
                if token is not None:
                    _scope.release(token)
                if sending:
                    _sent(observer)
        except StopAsyncIteration:
            observer.completed = True
            observer.finish()
            raise
        except BaseException as exc:
            if isinstance(exc, Exception):
                observer.error = exc
            observer.finish()
            raise
        if observer.first_item_ns is None:
            observer.first_item_ns = time.perf_counter_ns()
        observer.last = item
        observer.items += 1
        if observer.per_item and self._self_watching:
            try:
                observer.observe(item)
            except Exception as exc:  # our bug: stop watching, never break the stream
                self._self_watching = False
                _guard.report(observer.site, exc)
        return item
