"""The stream proxy on its own, over plain iterables: the edges no SDK test reaches.

Provider tests drive the proxy through real SDKs; these pin what it does when a stream
is closed while it is being read, when an observer fails, and which SDK stream methods
it may read around.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from dexcost import _guard
from dexcost.instrument._stainless import forwarding
from dexcost.instrument._stream import StreamObserver, TrackedAsyncStream, TrackedStream


class Seen(StreamObserver):
    """Records into a list what it was told at the end."""

    __slots__ = ("records", "seen")

    def __init__(self) -> None:
        super().__init__(0)
        self.records: list[tuple[int, Any, bool, BaseException | None]] = []
        self.seen: list[Any] = []

    def observe(self, item: Any) -> None:
        self.seen.append(item)

    def record(self) -> None:
        self.records.append((self.items, self.last, self.completed, self.error))


class Quiet(Seen):
    """Looks at nothing per item (``last`` and ``items`` only)."""

    __slots__ = ()
    per_item = False


class Stream:
    """A minimal SDK-like stream: iterable, closable, a context manager."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.closed = False
        self._iterator = self._read()

    def _read(self) -> Iterator[Any]:
        for item in self.items:
            if self.closed:
                raise RuntimeError("read after close")
            yield item

    def __iter__(self) -> Iterator[Any]:
        for item in self._iterator:  # noqa: UP028 - the shape forwarding() recognises
            yield item

    def __next__(self) -> Any:
        return next(self._iterator)

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


@pytest.mark.parametrize("observer_cls", [Seen, Quiet])
def test_every_item_is_yielded_once_and_recorded_at_the_end(observer_cls: type[Seen]) -> None:
    stream = Stream([1, 2, 3])
    observer = observer_cls()
    proxy = TrackedStream(stream, observer, source=stream._iterator)
    assert isinstance(proxy, Stream)
    assert next(proxy) == 1
    assert list(proxy) == [2, 3]
    assert list(proxy) == []
    assert observer.records == [(3, 3, True, None)]
    assert observer.seen == ([1, 2, 3] if observer_cls is Seen else [])


def test_closed_while_its_reader_runs_it_records_once_when_the_read_ends() -> None:
    observer = Quiet()
    proxy: Any = None

    def items() -> Iterator[int]:
        yield 1
        proxy.close()  # as if another thread closed it mid-read: the reader is running
        yield 2

    class Closable(list[int]):
        def close(self) -> None:
            pass

    proxy = TrackedStream(Closable(), observer, source=items())
    assert list(proxy) == [1, 2]
    assert observer.records == [(2, 2, True, None)]


def test_closed_after_a_partial_read_records_what_was_read() -> None:
    observer = Quiet()
    with TrackedStream(Stream(["a", "b", "c"]), observer) as proxy:
        assert next(proxy) == "a"
        assert observer.records == []
    assert observer.records == [(1, "a", False, None)]
    assert list(proxy) == []  # closed: the reader reads nothing more


def test_dropped_unread_it_records_and_a_lazy_one_does_not() -> None:
    eager, lazy = Quiet(), Quiet()
    records = eager.records, lazy.records
    TrackedStream(Stream([1]), eager)
    TrackedStream(Stream([1]), lazy, lazy=True)
    del eager, lazy  # the proxies held their observers: all of it is gone now
    assert records == ([(0, None, False, None)], [])


def test_the_streams_error_passes_through_unchanged_and_is_recorded() -> None:
    failure = ConnectionResetError("peer went away")

    def items() -> Iterator[int]:
        yield 1
        raise failure

    observer = Quiet()
    proxy = TrackedStream(Stream([]), observer, source=items())
    with pytest.raises(ConnectionResetError) as raised:
        list(proxy)
    assert raised.value is failure
    assert observer.records == [(1, 1, False, failure)]


def test_an_observer_that_fails_stops_watching_and_the_stream_goes_on() -> None:
    class Broken(Seen):
        __slots__ = ()

        def observe(self, item: Any) -> None:
            if item == 2:
                raise ValueError("observer bug")
            super().observe(item)

    observer = Broken()
    assert list(TrackedStream(Stream([1, 2, 3]), observer)) == [1, 2, 3]
    assert observer.seen == [1]
    assert observer.records == [(3, 3, True, None)]
    assert [site for site, _ in _guard.swallowed()] == ["instrument.stream"]
    _guard.clear()


async def test_async_items_are_yielded_once_and_recorded_at_the_end() -> None:
    async def items() -> AsyncIterator[int]:
        for i in (1, 2, 3):
            yield i

    class AsyncStream:
        def __aiter__(self) -> AsyncIterator[int]:
            return items()

    observer = Seen()
    proxy = TrackedAsyncStream(AsyncStream(), observer)
    assert isinstance(proxy, AsyncStream)
    assert await proxy.__anext__() == 1
    assert [i async for i in proxy] == [2, 3]
    assert observer.seen == [1, 2, 3]
    assert observer.records == [(3, 3, True, None)]


def test_forwarding_accepts_only_methods_that_just_yield_the_inner_iterator() -> None:
    class Observing(Stream):
        def __iter__(self) -> Iterator[Any]:
            for item in self._iterator:
                print(item)
                yield item

    async def aforward(self: Any) -> AsyncIterator[Any]:
        async for item in self._iterator:
            yield item

    assert forwarding(Stream.__iter__) is Stream.__iter__
    assert forwarding(Observing.__iter__) is None
    assert forwarding(aforward, is_async=True) is aforward
    assert forwarding(aforward) is None
    assert forwarding(len) is None
