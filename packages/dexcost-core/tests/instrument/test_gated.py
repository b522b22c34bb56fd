"""Gated patches: the method keeps its exact signature, the gate decides per call whether
the gated wrapper runs, and anything that cannot be gated is patched the plain way."""

from __future__ import annotations

import asyncio
import inspect
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from dexcost.instrument import _patch

MODULE = "dexcost_test_gated_target"
DEFAULT = object()


@pytest.fixture
def target() -> Iterator[types.ModuleType]:
    module = types.ModuleType(MODULE)

    class Client:
        def send(self, url: str, body: Any = DEFAULT, *, flag: bool = False, **extra: Any) -> Any:
            """Echo what arrived."""
            return ("sent", url, body, flag, extra)

        async def asend(self, url: str, *, flag: bool = False, **extra: Any) -> Any:
            return ("asent", url, flag, extra)

        def many(  # more keyword-only parameters than a gated patch lists
            self, url: str, *, k0=0, k1=1, k2=2, k3=3, k4=4, k5=5, k6=6, k7=7, k8=DEFAULT
        ) -> Any:
            return ("many", url, k0, k3, k8)

        def spread(self, *args: Any) -> Any:
            return args

        def only(self, url: str, /) -> Any:
            return url

    module.Client = Client  # type: ignore[attr-defined]
    sys.modules[MODULE] = module
    yield module
    for patch in _patch.installed("test"):
        _patch.unwrap(patch)
    del sys.modules[MODULE]


class Gate:
    """Lets through the URLs in ``allowed``; remembers what it was asked."""

    def __init__(self, *allowed: str) -> None:
        self.allowed = set(allowed)
        self.asked: list[tuple[Any, ...]] = []

    def __call__(self, instance: Any, *params: Any) -> bool:
        self.asked.append(params)
        return params[0] in self.allowed


def spec(gate: Gate, count: int, wrapper: Any) -> _patch.GateSpec:
    """``gate`` compiled in, asked with the instance and the first ``count`` parameters."""
    fields = ", ".join(f"{{{i}}}" for i in range(count + 1))
    return _patch.InlineGate(f"_dx_go = _dx_ask({fields})", {"_dx_ask": gate}), count, wrapper


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        self.calls.append((args, dict(kwargs)))
        return ("wrapped", wrapped(*args, **kwargs))


def test_the_signature_defaults_and_name_are_the_originals(target: Any) -> None:
    original = target.Client.send
    _patch.wrap("test", MODULE, "Client.send", Recorder(), spec(Gate(), 1, Recorder()))
    patched = vars(target.Client)["send"]
    assert patched is not original
    assert inspect.signature(patched, follow_wrapped=False) == inspect.signature(original)
    assert patched.__defaults__ is original.__defaults__
    assert patched.__kwdefaults__ is original.__kwdefaults__
    assert (patched.__name__, patched.__qualname__, patched.__doc__) == (
        "send",
        original.__qualname__,
        "Echo what arrived.",
    )
    with pytest.raises(TypeError, match=r"send\(\) takes from 2 to 3 positional"):
        target.Client().send("a", "b", "c")


def test_a_closed_gate_calls_the_original_with_the_arguments_as_given(target: Any) -> None:
    plain, wrapper, gate = Recorder(), Recorder(), Gate()
    _patch.wrap("test", MODULE, "Client.send", plain, spec(gate, 1, wrapper))
    client = target.Client()
    assert client.send("u") == ("sent", "u", DEFAULT, False, {})
    assert client.send(url="v", flag=True, x=1) == ("sent", "v", DEFAULT, True, {"x": 1})
    assert client.send("w", 2) == ("sent", "w", 2, False, {})
    assert wrapper.calls == plain.calls == []
    assert gate.asked == [("u",), ("v",), ("w",)]  # the first parameter, however passed


def test_an_open_gate_hands_the_wrapper_positionals_and_keywords(target: Any) -> None:
    plain, wrapper = Recorder(), Recorder()
    _patch.wrap("test", MODULE, "Client.send", plain, spec(Gate("u"), 1, wrapper))
    client = target.Client()
    assert client.send("u", flag=True, x=1) == ("wrapped", ("sent", "u", DEFAULT, True, {"x": 1}))
    assert wrapper.calls == [(("u", DEFAULT), {"flag": True, "x": 1})]
    assert plain.calls == []


def test_the_gate_takes_as_many_parameters_as_asked(target: Any) -> None:
    gate = Gate()
    _patch.wrap("test", MODULE, "Client.send", Recorder(), spec(gate, 2, Recorder()))
    target.Client().send("u", body=5)
    assert gate.asked == [("u", 5)]


def test_an_inline_gate_reads_the_parameters_by_their_placeholders(target: Any) -> None:
    asked: list[tuple[Any, ...]] = []

    def allowed(instance: Any, url: str, body: Any) -> bool:
        asked.append((type(instance).__name__, url, body))
        return url == "u"

    wrapper = Recorder()
    inline = _patch.InlineGate("_dx_go = _dx_allowed({0}, {1}, {2})", {"_dx_allowed": allowed})
    _patch.wrap("test", MODULE, "Client.send", Recorder(), (inline, 2, wrapper))
    client = target.Client()
    assert client.send("u", flag=True)[0] == "wrapped"
    assert client.send(body=3, url="v") == ("sent", "v", 3, False, {})
    assert asked == [("Client", "u", DEFAULT), ("Client", "v", 3)]
    assert wrapper.calls == [(("u", DEFAULT), {"flag": True})]


def test_a_parameter_named_like_the_patch_s_own_is_patched_plainly(target: Any) -> None:
    def send(self: Any, _dx_go: Any) -> Any:
        return _dx_go

    target.Client.send = send
    plain, wrapper = Recorder(), Recorder()
    patch = _patch.wrap("test", MODULE, "Client.send", plain, spec(Gate(), 1, wrapper))
    assert patch is not None
    assert not patch.gated
    assert target.Client().send(1) == ("wrapped", 1)
    assert (len(plain.calls), wrapper.calls) == (1, [])


def test_many_keyword_only_parameters_pass_as_they_came(target: Any) -> None:
    original = target.Client.many
    plain, wrapper = Recorder(), Recorder()
    _patch.wrap("test", MODULE, "Client.many", plain, spec(Gate("u"), 1, wrapper))
    patched = vars(target.Client)["many"]
    assert inspect.signature(patched) == inspect.signature(original)  # via __wrapped__
    client = target.Client()
    assert client.many("v") == ("many", "v", 0, 3, DEFAULT)  # the original's defaults
    assert client.many(url="v", k3=30) == ("many", "v", 0, 30, DEFAULT)
    assert client.many("u", k0=10)[1] == ("many", "u", 10, 3, DEFAULT)
    assert wrapper.calls == [(("u",), {"k0": 10})]  # what was passed, not every default
    with pytest.raises(TypeError, match="unexpected keyword argument 'k9'"):
        client.many("v", k9=9)


def test_a_switched_off_or_replaced_gated_patch(target: Any) -> None:
    first, second = Recorder(), Recorder()
    patch = _patch.wrap("test", MODULE, "Client.send", Recorder(), spec(Gate("u"), 1, first))
    assert patch is not None
    patch.active = False
    assert target.Client().send("u") == ("sent", "u", DEFAULT, False, {})
    again = _patch.wrap("test", MODULE, "Client.send", Recorder(), spec(Gate("u"), 1, second))
    assert again is patch
    assert target.Client().send("u")[0] == "wrapped"
    assert (len(first.calls), len(second.calls)) == (0, 1)
    original = patch.original
    assert _patch.unwrap(patch) is True
    assert vars(target.Client)["send"] is original


def test_a_coroutine_method_stays_one(target: Any) -> None:
    wrapper = Recorder()

    async def awaited(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        wrapper.calls.append((args, kwargs))
        return ("wrapped", await wrapped(*args, **kwargs))

    _patch.wrap("test", MODULE, "Client.asend", Recorder(), spec(Gate("u"), 1, awaited))
    assert inspect.iscoroutinefunction(target.Client.asend)

    async def main() -> tuple[Any, Any, Any]:
        client = target.Client()
        return (
            await client.asend("u", flag=True),
            await client.asend("v"),
            await client.asend("w", x=1),
        )

    assert asyncio.run(main()) == (
        ("wrapped", ("asent", "u", True, {})),
        ("asent", "v", False, {}),
        ("asent", "w", False, {"x": 1}),
    )
    assert wrapper.calls == [(("u",), {"flag": True})]


@pytest.mark.parametrize("name", ["spread", "only"])
def test_what_cannot_be_gated_is_patched_plainly(target: Any, name: str) -> None:
    plain, wrapper, gate = Recorder(), Recorder(), Gate()
    _patch.wrap("test", MODULE, f"Client.{name}", plain, spec(gate, 1, wrapper))
    assert getattr(target.Client(), name)("u")[0] == "wrapped"  # the gate is not asked
    assert (len(plain.calls), wrapper.calls, gate.asked) == (1, [], [])
