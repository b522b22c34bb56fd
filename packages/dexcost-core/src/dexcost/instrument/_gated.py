"""Gated patches: a method replaced by one with its exact signature and a cheap gate.

A plain patch (``_patch._function_patch``) takes ``*args, **kwargs``, binds the original
and calls the wrapper, which calls the original with the arguments unpacked again. Per
call that is two frames, a bound method, and a dict of keyword arguments built twice:
little in a tight loop, but about 4 µs between two real HTTP requests, whose own work
pushes this code out of the CPU caches. HTTP capture leaves almost every call alone (a
host nobody prices), so it asks first.

A gated patch is compiled from the original's own parameter list, so each argument
arrives in a local and goes on to the original as it came, without packing. Its first
lines are the gate (:class:`InlineGate`), which runs in the method's own frame and reads
the parameters directly, with no call of a gate function or of whatever it would call
to read them; only when the gate says the call may be recorded are the arguments
packed for the wrapper, positionals as ``args`` and keyword-only ones (and
``**kwargs``) as ``kwargs``. Defaults are the original's own objects
(``__defaults__``, ``__kwdefaults__``), so an argument left out is the same object
either way. A ``**kwargs`` is passed on only when it holds something: without it the
call to the original is a plain vectorcall, not a tuple and a dict built anew. A method
with many keyword-only parameters (more than :data:`_NAMED_LIMIT`) has them collected
into a ``**kwargs`` of the patch's own instead: they can only be passed by name, so the
original receives the same call, and the wrapper sees what was passed, not every
default. Its signature is then the original's through ``__wrapped__`` only, and for a
coroutine method a wrong keyword is refused when the call is awaited.

Only methods whose parameters are plain (no ``*args``, no positional-only ones, none
named ``_dx_...``, the prefix of the patch's own names) are gated; :func:`gated_patch`
returns None for anything else, and the caller patches it the plain way.
"""

from __future__ import annotations

import inspect
import keyword
import types
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

__all__ = ["InlineGate", "gated_patch"]


class InlineGate(NamedTuple):
    """A gate compiled into the patched method: ``source``, statements that set
    ``_dx_go`` (False when the wrapper surely has nothing to do: the original is then
    called directly), naming the instance ``{0}`` and the method's first parameters
    ``{1}``, ``{2}``... (``str.format`` fields: a literal brace is written twice);
    ``names``, the globals it reads (each named ``_dx_...``). It must not raise."""

    source: str
    names: Mapping[str, Any]


#: Past this many keyword-only parameters (aiohttp's ``_request`` has over thirty), a
#: method without ``**kwargs`` has them collected as they came: listing them would pass
#: every default explicitly, on every call.
_NAMED_LIMIT = 8

_TEMPLATE = """
def _dx_factory(_dx_func, _dx_bind, _dx_on):
    _dx_wrapper = None

    {kind} _dx_patched({params}):
        if _dx_on:
{block}
            if _dx_go:
                return {wait}_dx_wrapper(_dx_bind(_dx_func, {self}), {self}, ({args}), {{{kwargs}}})
{direct}

    def _dx_set(new):
        nonlocal _dx_wrapper
        _dx_wrapper = new

    return _dx_patched, _dx_set
"""


def _plain_parameters(func: types.FunctionType) -> list[inspect.Parameter] | None:
    try:
        parameters = list(inspect.signature(func, follow_wrapped=False).parameters.values())
    except (TypeError, ValueError):
        return None
    if not parameters or parameters[0].kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
        return None  # a method takes its instance first
    for p in parameters:
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL):
            return None
        if p.name.startswith("_dx_") or keyword.iskeyword(p.name) or not p.name.isidentifier():
            return None
    return parameters


def gated_patch(
    func: types.FunctionType,
    wrapper: Callable[..., Any],
    on: list[bool],
    gate: InlineGate,
    count: int,
) -> tuple[types.FunctionType, Callable[[Callable[..., Any]], None]] | None:
    """A method with ``func``'s exact signature that calls ``wrapper`` (wrapt's signature)
    around ``func`` while ``on`` is non-empty and ``gate``, reading the instance and the
    first ``count`` parameters, lets the call through, else ``func`` itself; and a
    setter for its wrapper. None if ``func``'s parameters are not all plain (see the
    module's docstring)."""
    parameters = _plain_parameters(func)
    if parameters is None:
        return None
    P = inspect.Parameter
    instance, rest = parameters[0].name, parameters[1:]
    positional = [p.name for p in rest if p.kind is P.POSITIONAL_OR_KEYWORD]
    named = [p.name for p in rest if p.kind is P.KEYWORD_ONLY]
    extra = [p.name for p in rest if p.kind is P.VAR_KEYWORD]
    if count > len(positional):
        return None
    if len(named) > _NAMED_LIMIT and not extra:
        named, extra = [], ["_dx_named"]
    signature = [instance, *positional]
    if named:
        signature += ["*", *named]
    signature += [f"**{name}" for name in extra]
    packed = [f"{n!r}: {n}" for n in named] + [f"**{n}" for n in extra]
    coroutine = inspect.iscoroutinefunction(func)
    wait = "await " if coroutine else ""
    call = ", ".join([instance, *positional] + [f"{n}={n}" for n in named])
    direct = f"        return {wait}_dx_func({call})"
    if extra:  # passed on only when not empty: without it the call is a plain vectorcall
        more = extra[0]
        direct = (
            f"        if {more}:\n            return {wait}_dx_func({call}, **{more})\n{direct}"
        )
    block = gate.source.format(instance, *positional[:count])
    namespace: dict[str, Any] = dict(gate.names)
    source = _TEMPLATE.format(
        block="\n".join(f"            {line}" for line in block.splitlines()),
        kind="async def" if coroutine else "def",
        params=", ".join(signature),
        wait=wait,
        self=instance,
        args="".join(f"{n}, " for n in positional),
        kwargs=", ".join(packed),
        direct=direct,
    )
    exec(compile(source, f"<dexcost gated patch of {func.__qualname__}>", "exec"), namespace)
    patched, set_wrapper = namespace["_dx_factory"](func, types.MethodType, on)
    set_wrapper(wrapper)
    patched.__defaults__ = func.__defaults__
    if named:
        patched.__kwdefaults__ = func.__kwdefaults__
    # Python 3.10 names the code object, not the function, in a TypeError for a wrong call.
    names: dict[str, Any] = {"co_name": func.__name__}
    if hasattr(patched.__code__, "co_qualname"):
        names["co_qualname"] = func.__qualname__
    patched.__code__ = patched.__code__.replace(**names)
    return patched, set_wrapper
