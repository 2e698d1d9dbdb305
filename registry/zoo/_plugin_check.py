"""Checks a loaded plugin against the hook specs (:class:`zoo.plugins.FrameworkPlugin`, :class:`zoo.plugins.OptionalHooks`).

pluggy's rules, for plugins that are classes rather than modules: every hook a plugin defines must
accept what the core passes (``_signature_problem``), and a public member that is *not* a hook but
is spelled like one (``inference_option``, ``strict_fp16``) is a mistake to refuse, not a helper to
ignore, since a misspelled optional hook would otherwise silently never run. Called once per plugin
load; reads signatures and attributes only, never calls a hook that could import a framework.
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import PluginError

__all__ = ["HookSpec", "check_plugin", "signature_problem"]

# How close a public name must be to a hook's to "look like" it (difflib ratio): catches one or two
# wrong letters (native_runer, weights_formats, strict_fp16) without flagging ordinary helper names.
LOOKS_LIKE = 0.8

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@dataclass(frozen=True)
class HookSpec:
    """One member of a spec class: a method the core calls, or an attribute it reads (``kind`` is its type)."""

    name: str
    owner: type  # the spec class that documents it
    method: Callable[..., Any] | None = None  # None for an attribute hook
    kind: tuple[type, ...] = ()  # the attribute's accepted types

    def expected(self) -> str:
        if self.method is None:
            return f"{self.name}: {' | '.join(t.__name__ for t in self.kind)}"
        spec = inspect.signature(self.method)
        return f"{self.name}{_unquoted(spec.replace(parameters=list(spec.parameters.values())[1:]))}"


def _unquoted(signature: inspect.Signature) -> str:
    """``(arch: str) -> Any`` rather than ``(arch: 'str') -> 'Any'`` (annotations are strings under PEP 563)."""
    return str(signature).replace("'", "")


def signature_problem(spec: Callable[..., Any], impl: Callable[..., Any]) -> str | None:
    """Why ``impl`` (a bound method) cannot be called as the core calls ``spec`` (an unbound spec method), or None.

    The core passes the spec's positional parameters by position and its keyword-only ones by name:
    ``impl`` must take at least as many positionally, accept each keyword (or ``**kwargs``), and may add
    parameters only with defaults. A ``**options`` in the spec is the plugin's to accept or refuse.
    """
    try:
        got = inspect.signature(impl)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to read, nothing to refuse
        return None
    wanted = list(inspect.signature(spec).parameters.values())[1:]
    params = list(got.parameters.values())
    var_positional = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    positional = [p for p in params if p.kind in _POSITIONAL]
    spec_positional = [p for p in wanted if p.kind in _POSITIONAL]
    if len(positional) < len(spec_positional) and not var_positional:
        return f"it takes {len(positional)} positional argument(s); the core passes {len(spec_positional)}"
    passed = {p.name for p in positional[: len(spec_positional)]}
    for p in wanted:
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        q = got.parameters.get(p.name)
        accepts = q is not None and q.name not in passed and q.kind in (inspect.Parameter.KEYWORD_ONLY,
                                                                         inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if not (accepts or var_keyword):
            return f"it does not accept the keyword argument {p.name!r}"
        passed.add(p.name)
    required = [q.name for q in params if q.default is q.empty and q.name not in passed
                and q.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    if required:
        return f"it requires {', '.join(map(repr, required))}, which the core never passes"
    return None


def _received(name: str, value: Any) -> str:
    if callable(value):
        try:
            return f"{name}{_unquoted(inspect.signature(value))}"
        except (TypeError, ValueError):
            return f"{name} (a {type(value).__name__})"
    return f"{name} = {value!r} (a {type(value).__name__})"


def _public_members(plugin: Any) -> set[str]:
    names = {n for n in dir(type(plugin)) if not n.startswith("_")}
    names |= {n for n in getattr(plugin, "__dict__", {}) if not n.startswith("_")}
    return names


def check_plugin(plugin: Any, specs: Iterable[HookSpec], *, label: str,
                 extra: Mapping[str, Callable[[Any], str | None]] | None = None) -> None:
    """Refuse ``plugin`` (:class:`~zoo.errors.PluginError`, exit 4) if a hook it defines has the wrong signature
    or type, or a public member is spelled like a hook but is none. ``label`` names the plugin in messages
    (``"'toy' (zoo_toy:ToyPlugin)"``); ``extra`` maps hook names to further value checks (a message or None)."""
    specs = list(specs)
    by_name = {s.name: s for s in specs}
    for spec in specs:
        if not hasattr(plugin, spec.name):
            continue  # a missing required member is the protocol check's to report; a missing optional hook has a default
        value = getattr(plugin, spec.name)
        where = f"{spec.owner.__module__}.{spec.owner.__qualname__}.{spec.name}"
        if spec.method is not None:
            problem = "it is not callable" if not callable(value) else signature_problem(spec.method, value)
        elif isinstance(value, bool) or not isinstance(value, spec.kind):
            problem = f"it is a {type(value).__name__}"
        else:
            check = (extra or {}).get(spec.name)
            problem = check(value) if check is not None else None
        if problem:
            raise PluginError(
                f"Plugin {label} defines the hook {spec.name!r} wrongly: {problem}. Expected: {spec.expected()}. "
                f"Received: {_received(spec.name, value)}",
                hint=f"give it the signature of {where} (see its docstring), or remove it to get the core's default",
            )
    for name in sorted(_public_members(plugin) - set(by_name)):
        close = difflib.get_close_matches(name, list(by_name), n=1, cutoff=LOOKS_LIKE)
        if close:
            raise PluginError(
                f"Plugin {label} defines {name!r}, which is not a zoo hook: a misspelled {close[0]!r}? "
                f"Expected: {by_name[close[0]].expected()}. Received: {_received(name, getattr(plugin, name))}",
                hint=f"rename it to {close[0]!r} if it is that hook, or make it private ('_{name}') if it is a helper",
            )
