"""A policy's knobs set from outside (``--policy-knob NAME=VALUE`` of the service and the
simulator): every default works untuned, and ``benchmarks/frontier.py`` measures what moving
one trades (adaptive's ``linger_boots=2``, say: a lower p95 for more core-seconds).

A knob is a number a policy's dataclass takes (an ``int`` or a ``float`` field: adaptive's
``max_idle_time`` too, which ``--max-idle-time`` does not set, as adaptive sizes its own
pool; where a policy reads that option, its knob wins). A value must be finite and above 0,
and whole for an ``int`` knob; anything else is a ``ValueError`` that names the knob and
what is wrong.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dacirco.policies.base import Policy

Knobs = tuple[tuple[str, float], ...]  # (name, value) pairs, in the order given


def parse(texts: Iterable[str]) -> Knobs:
    """``["NAME=VALUE", ...]`` as pairs; a name given twice keeps its last value."""
    out: dict[str, float] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise ValueError(f"{text!r}: expected NAME=VALUE (e.g. linger_boots=2)")
        try:
            x = float(value)
        except ValueError:
            raise ValueError(f"{name}: {value.strip()!r} is not a number") from None
        if not (math.isfinite(x) and x > 0):
            raise ValueError(f"{name}: {value.strip()} must be a finite number above 0")
        out.pop(name, None)
        out[name] = x
    return tuple(out.items())


def knobs_of(policy: Policy) -> dict[str, type]:
    """The knobs of ``policy`` by name, each with its type (int or float)."""
    if not dataclasses.is_dataclass(policy):
        return {}
    hints = {int: int, "int": int, float: float, "float": float}
    return {
        f.name: hints[f.type]  # type: ignore[index]
        for f in dataclasses.fields(policy)
        if f.init and f.type in hints
    }


def of_policy(name: str, knobs: Knobs) -> Knobs:
    """Those of ``knobs`` that the registered policy ``name`` has (none for a name that is
    not registered: the simulator's oracle)."""
    from dacirco.policies.base import available, make_policy

    if not knobs or name not in available():
        return ()
    own = knobs_of(make_policy(name))
    return tuple((k, v) for k, v in knobs if k in own)


def unclaimed(names: Iterable[str], knobs: Knobs) -> list[str]:
    """The knobs that none of the registered policies ``names`` has."""
    from dacirco.policies.base import available, make_policy

    have: set[str] = set()
    for name in names:
        if name in available():
            have |= set(knobs_of(make_policy(name)))
    return [k for k, _ in knobs if k not in have]


def apply(policy: Policy, knobs: Knobs, name: str) -> Policy:
    """``policy`` (registered as ``name``) with ``knobs`` set."""
    if not knobs:
        return policy
    own = knobs_of(policy)
    changes: dict[str, float | int] = {}
    for knob, value in knobs:
        if knob not in own:
            known = ", ".join(sorted(own)) or "none"
            raise ValueError(f"policy {name!r} has no knob {knob!r}; its knobs: {known}")
        if own[knob] is int:
            if value != int(value):
                raise ValueError(f"{knob}: {value:g} must be a whole number")
            changes[knob] = int(value)
        else:
            changes[knob] = value
    return dataclasses.replace(policy, **changes)  # type: ignore[type-var]
