"""A policy's knobs set from outside (``--policy-knob NAME=VALUE`` of the service and the
simulator): every default works untuned, and ``benchmarks/frontier.py`` measures what moving
one trades (adaptive's ``linger_boots=2``, say: a lower p95 for more core-seconds).

A policy has the knobs its class lists in ``KNOBS``, each with the range it is checked
against (a value past it would only make the policy slow or absurd: ``max_chunks=1e9``
loops over a billion chunk counts); a policy without that list has none. A value must be
a plain decimal number within its knob's range, and whole for an ``int`` field; anything
else is a ``ValueError`` that names the knob and what is wrong.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from dacirco.policies.base import Policy

Knobs = tuple[tuple[str, float], ...]  # (name, value) pairs, in the order given
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class Knob(NamedTuple):
    whole: bool  # an int field: whole values only
    low: float
    high: float


def parse(texts: Iterable[str]) -> Knobs:
    """``["NAME=VALUE", ...]`` as pairs; a name given twice keeps its last value."""
    out: dict[str, float] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValueError(f"{text!r}: expected NAME=VALUE (e.g. linger_boots=2)")
        if not _NUMBER.fullmatch(value) or not math.isfinite(x := float(value)):
            raise ValueError(f"{name}: {value!r} is not a number")
        out.pop(name, None)
        out[name] = x
    return tuple(out.items())


def knobs_of(policy: Policy) -> dict[str, Knob]:
    """The knobs of ``policy`` by name: those its class lists in ``KNOBS`` (name -> (low,
    high)) that are fields of its dataclass."""
    ranges: Mapping[str, tuple[float, float]] = getattr(type(policy), "KNOBS", {})
    if not dataclasses.is_dataclass(policy) or not ranges:
        return {}
    types = {f.name: f.type for f in dataclasses.fields(policy) if f.init}
    return {
        name: Knob(types[name] in (int, "int"), low, high)
        for name, (low, high) in ranges.items()
        if name in types
    }


def described(policy: Policy) -> str:
    """The knobs of ``policy``, each with its range, for an error message."""
    own = knobs_of(policy)
    return ", ".join(f"{n} ({k.low:g} to {k.high:g})" for n, k in sorted(own.items())) or "none"


def of_policy(name: str, knobs: Knobs) -> Knobs:
    """Those of ``knobs`` that the registered policy ``name`` has (none for a name that is
    not registered: the simulator's oracle)."""
    from dacirco.policies.base import available, make_policy

    if not knobs or name not in available():
        return ()
    own = knobs_of(make_policy(name))
    return tuple((k, v) for k, v in knobs if k in own)


def check(names: Sequence[str], knobs: Knobs) -> None:
    """Every one of ``knobs`` is a knob of one of the registered policies ``names`` at least,
    each policy taking its own with its values checked: a ``ValueError`` naming what is
    wrong (for one policy, its message lists that policy's knobs)."""
    from dacirco.policies.base import PolicyParams, make_policy

    if not knobs:
        return
    if len(names) == 1:
        make_policy(names[0], PolicyParams(knobs=knobs))
        return
    have = {k for name in names for k, _ in of_policy(name, knobs)}
    if lone := [k for k, _ in knobs if k not in have]:
        raise ValueError(f"none of {', '.join(names)} has the knob {lone[0]!r}")
    for name in names:
        make_policy(name, PolicyParams(knobs=of_policy(name, knobs)))


def note(names: Sequence[str], knobs: Knobs) -> str:
    """The knobs each of the policies ``names`` takes, for a table's title (empty when it
    takes none)."""
    parts = [
        (f"{n} " if len(names) > 1 else "") + ", ".join(f"{k}={v:g}" for k, v in own)
        for n in names
        if (own := of_policy(n, knobs))
    ]
    return f" (knobs {'; '.join(parts)})" if parts else ""


def apply(policy: Policy, knobs: Knobs, name: str) -> Policy:
    """``policy`` (registered as ``name``) with ``knobs`` set."""
    if not knobs:
        return policy
    own = knobs_of(policy)
    changes: dict[str, float | int] = {}
    for knob, value in knobs:
        spec = own.get(knob)
        if spec is None:
            raise ValueError(
                f"policy {name!r} has no knob {knob!r}; its knobs: {described(policy)}"
            )
        if not spec.low <= value <= spec.high:
            span = f"{spec.low:g} to {spec.high:g}"
            raise ValueError(f"{knob}: {value:g} is out of its range, {span}")
        if spec.whole and value != int(value):
            raise ValueError(f"{knob}: {value:g} must be a whole number")
        changes[knob] = int(value) if spec.whole else value
    return dataclasses.replace(policy, **changes)  # type: ignore[type-var]


def markdown(names: Sequence[str]) -> str:
    """A Markdown table of the registered policies ``names`` that have knobs: each knob with
    its default and its range (docs/policies.md shows the peers' this way)."""
    from dacirco.policies.base import make_policy

    lines = ["| policy | its knobs: default (range) |", "| --- | --- |"]
    for name in names:
        policy = make_policy(name)
        own = knobs_of(policy)
        if own:
            cells = (
                f"`{k}` {_num(getattr(policy, k))} ({_num(spec.low)} to {_num(spec.high)})"
                for k, spec in own.items()
            )
            lines.append(f"| {name} | {', '.join(cells)} |")
    return "\n".join(lines)


def _num(value: float) -> str:
    """A number as people read it: whole ones with thousands separators, others in short."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"
