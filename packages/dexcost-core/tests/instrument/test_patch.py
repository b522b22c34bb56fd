"""The patch mechanism: idempotent, thread-safe, removable, and removes only its own wrapper."""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest
import wrapt

from dexcost.instrument import _patch

MODULE = "dexcost_test_patch_target"


class Base:
    def inherited(self) -> str:
        return "base"


@pytest.fixture
def target() -> Iterator[types.ModuleType]:
    """A fresh module with a class, a static method and a function to patch."""
    module = types.ModuleType(MODULE)

    class Service(Base):
        def call(self, x: int) -> int:
            """Double x."""
            return x * 2

        async def acall(self, x: int) -> int:
            return x * 3

        def numbers(self, n: int) -> Iterator[int]:
            yield from range(n)

        @staticmethod
        def helper(x: int) -> int:
            return x + 1

        @classmethod
        def build(cls) -> str:
            return cls.__name__

    def function(x: int) -> int:
        return x - 1

    async def afunction(x: int) -> int:
        return x - 2

    module.Service = Service  # type: ignore[attr-defined]
    module.function = function  # type: ignore[attr-defined]
    module.afunction = afunction  # type: ignore[attr-defined]
    sys.modules[MODULE] = module
    yield module
    for patch in _patch.installed("test"):
        _patch.unwrap(patch)
    del sys.modules[MODULE]


def adding(n: int) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs) + n

    return wrapper


def suffixing(text: str) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs) + text

    return wrapper


def test_wrap_then_unwrap_restores_the_exact_objects(target: Any) -> None:
    originals = {name: vars(target.Service)[name] for name in ("call", "helper", "build")}
    function = target.function
    patches = [_patch.wrap("test", MODULE, f"Service.{n}", adding(100)) for n in ("call", "helper")]
    patches.append(_patch.wrap("test", MODULE, "Service.build", suffixing("!")))
    patches.append(_patch.wrap("test", MODULE, "function", adding(100)))
    service = target.Service()
    assert (service.call(1), target.Service.helper(1), target.function(1)) == (102, 102, 100)
    assert (target.Service.build(), service.build()) == ("Service!", "Service!")
    for patch in patches:
        assert patch is not None
        assert _patch.unwrap(patch) is True
    for name, original in originals.items():
        assert vars(target.Service)[name] is original
    assert type(vars(target.Service)["helper"]) is staticmethod
    assert type(vars(target.Service)["build"]) is classmethod
    assert target.function is function
    assert service.call(1) == 2


def test_wrapping_twice_installs_one_wrapper(target: Any) -> None:
    first = _patch.wrap("test", MODULE, "Service.call", adding(10))
    second = _patch.wrap("test", MODULE, "Service.call", adding(10))
    assert first is second
    assert target.Service().call(1) == 12  # not 22
    assert [p.target for p in _patch.installed("test")] == [f"{MODULE}:Service.call"]


def test_concurrent_wrapping_installs_one_wrapper(target: Any) -> None:
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def race() -> None:
        barrier.wait()
        results.append(_patch.wrap("test", MODULE, "Service.call", adding(10)))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(p) for p in results}) == 1
    assert target.Service().call(1) == 12


def test_an_inherited_method_is_patched_on_the_class_and_removed_cleanly(target: Any) -> None:
    patch = _patch.wrap("test", MODULE, "Service.inherited", adding(0))
    assert patch is not None
    assert "inherited" in vars(target.Service)
    _patch.unwrap(patch)
    assert "inherited" not in vars(target.Service)  # no shadowing copy left behind
    assert target.Service().inherited() == "base"


def test_missing_targets_are_skipped(target: Any) -> None:
    assert _patch.wrap("test", "no_such_module_for_dexcost", "x", adding(1)) is None
    assert _patch.wrap("test", MODULE, "Service.absent", adding(1)) is None


def test_another_tools_wrapper_on_top_is_left_working(target: Any) -> None:
    ours = _patch.wrap("test", MODULE, "Service.call", adding(10))
    assert ours is not None
    wrapt.wrap_function_wrapper(MODULE, "Service.call", adding(1000))
    assert target.Service().call(1) == 1012
    assert _patch.unwrap(ours) is False  # cannot remove from under their wrapper
    assert target.Service().call(1) == 1002  # theirs runs, ours is switched off
    again = _patch.wrap("test", MODULE, "Service.call", adding(20))
    assert again is ours  # switched back on in place, not stacked, with the new wrapper
    assert target.Service().call(1) == 1022
    assert _patch.unwrap(ours) is False
    assert target.Service().call(1) == 1002


def test_wrapping_again_with_another_wrapper_replaces_it(target: Any) -> None:
    first = _patch.wrap("test", MODULE, "Service.call", adding(10))
    second = _patch.wrap("test", MODULE, "Service.build", suffixing("!"))
    assert _patch.wrap("test", MODULE, "Service.call", adding(20)) is first
    assert _patch.wrap("test", MODULE, "Service.build", suffixing("?")) is second
    assert (target.Service().call(1), target.Service.build()) == (22, "Service?")


def test_one_target_belongs_to_one_owner(target: Any) -> None:
    _patch.wrap("test", MODULE, "Service.call", adding(1))
    with pytest.raises(RuntimeError, match="already patched"):
        _patch.wrap("other", MODULE, "Service.call", adding(1))


def test_a_patched_function_shows_the_originals_name_docstring_and_signature(target: Any) -> None:
    original = vars(target.Service)["call"]
    bound = inspect.signature(target.Service().call)
    _patch.wrap("test", MODULE, "Service.call", adding(0))
    patched = vars(target.Service)["call"]
    assert patched is not original
    assert (patched.__name__, patched.__qualname__) == (original.__name__, original.__qualname__)
    assert (patched.__doc__, patched.__module__) == ("Double x.", original.__module__)
    assert patched.__wrapped__ is original
    assert inspect.signature(patched) == inspect.signature(original)
    assert inspect.signature(target.Service().call) == bound


def test_the_wrapper_gets_the_instance_and_the_bound_method(target: Any) -> None:
    seen: list[tuple[Any, Any, Any, Any]] = []

    def spy(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        seen.append((getattr(wrapped, "__self__", None), instance, args, kwargs))
        return wrapped(*args, **kwargs)

    _patch.wrap("test", MODULE, "Service.call", spy)
    _patch.wrap("test", MODULE, "function", spy)
    service = target.Service()
    assert service.call(3) == 6
    assert target.Service.call(service, x=4) == 8  # through the class, self passed
    assert target.function(5) == 4
    assert seen == [
        (service, service, (3,), {}),
        (service, service, (), {"x": 4}),
        (None, None, (5,), {}),
    ]


def test_coroutine_and_generator_functions_stay_what_they_are(target: Any) -> None:
    calls: list[tuple[str, Any]] = []

    def counting(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        calls.append((wrapped.__name__, instance))
        return wrapped(*args, **kwargs)

    patches = [
        _patch.wrap("test", MODULE, path, counting)
        for path in ("Service.acall", "Service.numbers", "afunction")
    ]
    assert inspect.iscoroutinefunction(target.Service.acall)
    assert inspect.iscoroutinefunction(target.afunction)
    assert inspect.isgeneratorfunction(target.Service.numbers)
    service = target.Service()
    assert asyncio.run(service.acall(2)) == 6
    assert asyncio.run(target.afunction(5)) == 3
    assert list(service.numbers(3)) == [0, 1, 2]
    assert calls == [("acall", service), ("afunction", None), ("numbers", service)]
    for patch in patches:
        assert patch is not None
        patch.active = False
    assert asyncio.run(service.acall(2)) == 6
    assert asyncio.run(target.afunction(5)) == 3
    assert len(calls) == 3


def test_a_switched_off_patch_calls_straight_through(target: Any) -> None:
    calls: list[Any] = []

    def counting(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        calls.append(instance)
        return wrapped(*args, **kwargs)

    patch = _patch.wrap("test", MODULE, "Service.call", counting)
    assert patch is not None
    bound = target.Service().call  # bound while on: follows the switch all the same
    patch.active = False
    assert (bound(1), target.Service().call(2)) == (2, 4)
    assert calls == []
    patch.active = True
    assert bound(1) == 2
    assert len(calls) == 1
