"""The scope rule: one call, several layers, recorded once; framework markers get covered."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import types
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

import dexcost
from dexcost import _guard, _scope
from dexcost._scope import (
    FrameworkCall,
    billing_scope,
    current_billing_layer,
    current_framework_call,
    mark_covered,
    on_covered,
    set_implicit_owner,
)

MESSAGES = [{"role": "user", "content": "hi"}]
COMPLETION = {
    "id": "chatcmpl-scope",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


@pytest.fixture
def http_layer_saw() -> list[bool]:
    """What a nested HTTP-capture layer decided for each request: did it own the call?"""
    return []


@pytest.fixture
def client(fake_api: Any, http_layer_saw: list[bool]) -> Iterator[openai.OpenAI]:
    def http_capture(request: httpx.Request) -> None:
        # Like HTTP capture: it covers a call only once it knows it records it.
        with billing_scope("http", covers=False) as owns:
            http_layer_saw.append(owns)

    http = httpx.Client(event_hooks={"request": [http_capture]})
    with openai.OpenAI(api_key="k", base_url=fake_api.url + "/v1", http_client=http) as c:
        yield c


def test_scopes_nest_and_the_outermost_owns() -> None:
    assert current_billing_layer() is None
    with billing_scope("litellm") as outer:
        assert outer is True
        assert current_billing_layer() == "litellm"
        with billing_scope("openai") as inner:
            assert inner is False
            assert current_billing_layer() == "litellm"
    assert current_billing_layer() is None
    with billing_scope("openai") as again:
        assert again is True


def test_http_layer_stays_silent_under_an_instrumented_provider(
    tracker: dexcost.CostTracker,
    client: openai.OpenAI,
    fake_api: Any,
    http_layer_saw: list[bool],
    events: Any,
) -> None:
    fake_api.reply_json(COMPLETION)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert http_layer_saw == [True]  # nothing above it: HTTP capture would record
    tracker.instrument("openai")
    fake_api.reply_json(COMPLETION)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert http_layer_saw == [True, False]  # the openai patch owns it
    assert len(events()) == 1


def test_framework_marker_is_covered_by_the_provider_patch(
    tracker: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any
) -> None:
    tracker.instrument("openai")
    fake_api.reply_json(COMPLETION)
    with FrameworkCall(key="run-1") as marker:
        assert current_framework_call() is marker
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert current_framework_call() is None
    assert (marker.covered, marker.covered_by) == (True, "openai")


def test_framework_marker_stays_uncovered_when_no_provider_layer_bills(
    tracker: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any
) -> None:
    fake_api.reply_json(COMPLETION)  # openai not instrumented: the adapter must record
    marker = FrameworkCall("run-2")
    token = marker.activate()
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    marker.deactivate(token)
    assert marker.covered is False


def test_on_covered_runs_in_the_callers_context_and_can_be_removed(
    tracker: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any
) -> None:
    framework_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
        "framework_call_id", default=None
    )
    billed: list[tuple[str, str | None]] = []
    remove = on_covered(lambda layer: billed.append((layer, framework_call_id.get())))
    tracker.instrument("openai")
    fake_api.reply_json(COMPLETION)
    fake_api.reply_json(COMPLETION)
    framework_call_id.set("call-42")
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    remove()
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert billed == [("openai", "call-42")]


def test_a_failing_listener_is_logged_not_raised(
    tracker: dexcost.CostTracker, client: openai.OpenAI, fake_api: Any, events: Any
) -> None:
    def broken(layer: str) -> None:
        raise KeyError(layer)

    remove = on_covered(broken)
    try:
        tracker.instrument("openai")
        fake_api.reply_json(COMPLETION)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    finally:
        remove()
    assert len(events()) == 1
    assert [site for site, _ in _guard.swallowed()] == ["scope.on_covered"]
    _guard.clear()


async def test_concurrent_asyncio_tasks_own_their_calls_separately() -> None:
    started = asyncio.Event()
    seen: dict[str, bool] = {}

    async def layer(name: str) -> None:
        with billing_scope(name) as owns:
            seen[name] = owns
            if name == "a":
                started.set()
                await asyncio.sleep(0.01)
            else:
                await started.wait()

    await asyncio.gather(layer("a"), layer("b"))
    assert seen == {"a": True, "b": True}


def test_a_layer_that_records_later_marks_the_call_covered() -> None:
    with FrameworkCall() as marker, billing_scope("http", covers=False) as owns:
        assert owns
        assert marker.covered is False
        mark_covered("http")
    assert marker.covered_by == "http"


def test_a_thread_does_not_inherit_ownership() -> None:
    seen: list[bool] = []
    with billing_scope("openai"):
        thread = threading.Thread(target=lambda: seen.append(billing_scope("http").__enter__()))
        thread.start()
        thread.join()
    assert seen == [True]


def _module_chain(names: list[str]) -> Any:
    """A call that goes through one function per module in ``names`` (outermost first)
    and asks billing_scope("inner") whether it owns the call."""

    def innermost() -> bool:
        with billing_scope("inner") as owns:
            return owns

    call: Any = innermost
    for name in reversed(names):
        module = types.ModuleType(name)
        module.__dict__["below"] = call
        exec("def call():\n    return below()\n", module.__dict__)
        call = module.__dict__["call"]
    return call


def test_calls_from_an_implicit_owners_code_are_owned_and_only_those() -> None:
    """What keeps ``from litellm import completion`` (bound before dexcost patched it)
    from being recorded twice: inner layers see a call made from litellm's code as
    owned; calls from elsewhere, or from farther up than the frames looked at, are not."""
    from_owner = _module_chain(["ownerpkg.main", "ownerpkg.llms.handler", "sdk.resources"])
    repeated = _module_chain(["ownerpkg.main", *["sdk.resources"] * 3, "sdk.utils"])
    elsewhere = _module_chain(["app.main", "sdk.resources"])
    too_far = _module_chain(["ownerpkg.main", *(f"sdk.m{i}" for i in range(_scope._FRAMES))])
    try:
        assert (from_owner(), elsewhere(), repeated()) == (True, True, True)  # no owner yet
        set_implicit_owner("ownerpkg", True)
        for _ in range(2):  # the second time from what was remembered
            assert not from_owner()
            assert not repeated()
            assert elsewhere()
            assert too_far()
        set_implicit_owner("ownerpkg", False)
        # nothing remembered outlives the owner
        assert (from_owner(), repeated()) == (True, True)
        set_implicit_owner("sdk", True)
        assert not elsewhere()
    finally:
        set_implicit_owner("ownerpkg", False)
        set_implicit_owner("sdk", False)
