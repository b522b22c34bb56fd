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

Reading goes through one generator per stream, made with the proxy, which iterating the
proxy returns: no proxy method and no proxy attribute is touched per item (attributes of
a wrapt proxy are slow to read). ``source=`` hands it the iterator behind an SDK stream
whose own ``__iter__`` only forwards that iterator (openai's), so that the proxy's
generator replaces the SDK's instead of adding a frame per item.

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
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Generator, Iterator
from typing import Any

from dexcost import _guard, _scope

from ._proxy import ObjectProxy

_proxy_init = ObjectProxy.__init__

__all__ = ["AsyncObserved", "StreamObserver", "TrackedAsyncStream", "TrackedStream"]


class StreamObserver:
    """Sees each item of one stream; :meth:`record` runs once, in the call's context.

    Subclasses keep only what they need from the items (usage, model, a count) and
    record in :meth:`record`. ``last`` is the last item seen and ``items`` how many
    were (a sync stream's reader counts on its own and sets both when it stops, before
    recording); ``completed`` is True when the stream was read to its end, ``error`` is
    the exception that ended it early, if any. An observer collected before it recorded
    (its stream dropped unread) records then.
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

    def __del__(self) -> None:
        # Collected unread (or read only by an SDK that dropped it): record what was seen.
        # A generator reading the stream holds the observer, so this runs after it ended.
        if self._once:
            self.finish()

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


def _observed(
    source: Any, observer: StreamObserver, hold: str | None
) -> Generator[Any, None, None]:
    """Yield ``source``'s items unchanged, showing each to ``observer``; finish at the end.

    Created with the proxy but run only from the first read, so ``iter(source)`` is
    called, and a lazy stream's request sent, then. It counts in locals and tells the
    observer ``items`` and ``last`` when it ends (which the proxy forces when the stream
    is closed): per item it costs no more than the SDK's own ``__iter__`` it replaces.
    """
    sending = not observer.requested  # lazy: this first read sends the request
    observer.requested = True
    items = 0
    item = None
    try:
        it = iter(source)
        if hold is not None:
            it = _held(it, hold)
        for item in it:  # the first item, then the rest in the loop for its kind
            observer.first_item_ns = time.perf_counter_ns()
            if sending:
                sending = False
                _sent(observer)
            items = 1
            if observer.per_item:
                observe = observer.observe
                while True:
                    try:
                        observe(item)
                    except Exception as exc:  # our bug: stop watching, never break the stream
                        _guard.report(observer.site, exc)
                        break
                    yield item
                    try:
                        item = next(it)
                    except StopIteration:
                        observer.completed = True
                        return
                    items += 1
            yield item
            for item in it:  # the same iterator, after the items already seen
                items += 1
                yield item
            break
        observer.completed = True
    except Exception as exc:
        observer.error = exc
        raise
    finally:
        if sending:  # the first read failed or found nothing
            _sent(observer)
        observer.items = items
        observer.last = item
        observer.finish()


class TrackedStream(ObjectProxy):
    """A sync stream (iterator) that records its call once; otherwise the stream itself.

    ``source`` is what to read instead of the stream itself: the iterator behind an SDK
    stream whose ``__iter__`` only forwards it, so reading through the proxy costs no
    more generator frames per item than reading the bare stream.
    """

    __slots__ = ("_self_gen", "_self_observer")

    def __init__(
        self,
        wrapped: Any,
        observer: StreamObserver,
        *,
        hold: str | None = None,
        lazy: bool = False,
        source: Any = None,
    ) -> None:
        _proxy_init(self, wrapped)
        self._self_gen = _observed(wrapped if source is None else source, observer, hold)
        self._self_observer = observer
        if lazy:  # nothing is sent until the first read; unread, nothing to record
            observer.requested = False

    def __iter__(self) -> Iterator[Any]:
        return self._self_gen

    def __next__(self) -> Any:
        return next(self._self_gen)

    def _dexcost_finish(self) -> None:
        """Record now with what was read: the stream was closed (or its body was)."""
        try:
            # A reader that started tells the observer what it read and records; the
            # stream is closed, so nothing more is read through this proxy.
            self._self_gen.close()
        except ValueError:  # being read in another thread: records when that read ends
            return
        self._self_observer.finish()  # never read

    def __enter__(self) -> TrackedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._dexcost_finish()

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._dexcost_finish()


async def _finish_after(awaitable: Awaitable[Any], observer: StreamObserver) -> Any:
    try:
        return await awaitable
    finally:
        observer.finish()


async def _aheld(it: Any, layer: str) -> AsyncIterator[Any]:
    """Read ``it`` with ``layer`` owning the scope (see ``hold`` of the proxies)."""
    while True:
        token = _scope.hold(layer)
        try:
            item = await it.__anext__()
        except StopAsyncIteration:
            return
        finally:
            _scope.release(token)
        yield item


async def _aobserved(
    source: Any, observer: StreamObserver, hold: str | None
) -> AsyncGenerator[Any, None]:
    """The async :func:`_observed`."""
    sending = not observer.requested  # lazy: this first read sends the request
    observer.requested = True
    try:
        it = _async_iterator(source)
        if hold is not None:
            it = _aheld(it, hold)
        async for item in it:
            observer.first_item_ns = time.perf_counter_ns()
            if sending:
                sending = False
                _sent(observer)
            observer.last = item
            observer.items = 1
            if observer.per_item:
                observe = observer.observe
                while True:
                    try:
                        observe(item)
                    except Exception as exc:  # our bug: stop watching, never break the stream
                        _guard.report(observer.site, exc)
                        break
                    yield item
                    try:
                        item = await it.__anext__()
                    except StopAsyncIteration:
                        observer.completed = True
                        return
                    observer.last = item
                    observer.items += 1
            yield item
            async for item in it:  # the same iterator, after the items already seen
                observer.last = item
                observer.items += 1
                yield item
            break
        observer.completed = True
    except Exception as exc:
        observer.error = exc
        raise
    finally:
        if sending:  # the first read failed or found nothing
            _sent(observer)
        observer.finish()


def _async_iterator(source: Any) -> Any:
    """The async iterator to read ``source`` with: itself if it is one, else its ``__aiter__()``.

    aiobotocore's event stream names an async generator function ``__anext__``: only
    ``__aiter__()`` iterates it.
    """
    step = getattr(type(source), "__anext__", None)
    if step is None or inspect.isasyncgenfunction(step):
        return source.__aiter__()
    return source


class AsyncObserved(ObjectProxy):
    """An async object read by the caller (a stream, a body), otherwise unchanged, whose
    observer finishes when it is closed or leaves its ``async with`` block (or, collected,
    when the observer is).
    """

    __slots__ = ("_self_observer",)

    def __init__(self, wrapped: Any, observer: StreamObserver) -> None:
        _proxy_init(self, wrapped)
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


class TrackedAsyncStream(AsyncObserved):
    """An async stream that records its call once; otherwise the stream itself.

    ``source`` as for :class:`TrackedStream` (the async iterator behind the stream).
    ``async for`` reads the proxy's async generator directly; a stream dropped while
    partly read records when the event loop closes that generator, or when collected.
    """

    __slots__ = ("_self_gen",)

    def __init__(
        self,
        wrapped: Any,
        observer: StreamObserver,
        *,
        hold: str | None = None,
        lazy: bool = False,
        source: Any = None,
    ) -> None:
        super().__init__(wrapped, observer)
        self._self_gen = _aobserved(wrapped if source is None else source, observer, hold)
        if lazy:  # nothing is sent until the first read; unread, nothing to record
            observer.requested = False

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._self_gen

    def __anext__(self) -> Awaitable[Any]:
        return self._self_gen.__anext__()

    def _dexcost_finish(self) -> None:
        """Record now with what was read (the body under the stream was closed)."""
        self._self_observer.finish()
