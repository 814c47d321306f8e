"""Keys of an estimate's specs for code compiled per spec (engine/specialize.py): the model's, format's and
device's columns of Python floats (names and values' bits) and the layout, hashed once and remembered for the few
dicts an estimate passes around."""
from __future__ import annotations

from struct import error as StructError
from struct import pack

FLOATS = {float}  # the types of an estimate's numbers (Python floats): what a spec is made of


class Key:
    """A hashable key whose hash is computed once (a columns dict's: a Spec holds three)."""

    __slots__ = ("key", "hash")

    def __init__(self, key: tuple):
        self.key, self.hash = key, hash(key)

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other) -> bool:
        return self is other or (isinstance(other, Key) and self.key == other.key)


class Spec(Key):
    """What a formula of an estimate reads besides its recorded inputs: the Keys of its columns (Python floats), the
    layout and a tag (specialize's key), and those arguments (`args`: spec_of's)."""

    __slots__ = ("args",)

    def __init__(self, key: tuple, args: tuple):
        super().__init__(key)
        self.args = args


_recent: tuple = ()  # ((columns dict, its values' bits, its Key or None), ...): the last few seen, newest first


def columns_key(d: dict) -> Key | None:
    """A Key of a columns dict of Python floats, else None: its names and its values' bits (struct's doubles, so -0.0
    and 0.0 differ, as the formulas' results on them may). The last few dicts seen are remembered with those bits:
    the same object holding the same bits has the same Key (an estimate lowers and times its columns five times);
    one whose values changed since is keyed anew. (Not a value replaced in place by one of the same bits and another
    type, a numpy float64 for a float, whose compiled code gives the same values as Python floats; nor a name renamed
    in place with its value kept.)"""
    global _recent
    try:
        bits = pack(f"{len(d)}d", *d.values())
    except (StructError, TypeError):  # not all numbers (an array): no Key
        return None
    for seen, held, key in _recent:
        if seen is d:
            if held == bits:
                return key
            break
    key = Key((tuple(d), bits)) if set(map(type, d.values())) == FLOATS else None
    _recent = ((d, bits, key),) + _recent[:5]  # one tuple, replaced whole: safe between threads
    return key


def _layout(tp: float, pp: float, dp: float, ep: float) -> bytes:
    """A layout's numbers as their bits (a Spec's key: -0.0 is not 0.0 there either)."""
    return pack("4d", tp, pp, dp, ep)


def spec_of(m: dict, f: dict, hw: dict, tp, pp, dp, ep, tag, *inputs) -> Spec | None:
    """The Spec of a formula of the columns (m, f, hw), the layout and `inputs` (its recorded ones), where all of those
    are Python floats, else None (the formula evaluated as it is). `tag` tells formulas of the same spec apart (lower's
    `decode`, the phases', memory's); `args`: (m, f, hw, tp, pp, dp, ep, tag)."""
    if set(map(type, (tp, pp, dp, ep, *inputs))) != FLOATS:
        return None
    km, kf, kh = columns_key(m), columns_key(f), columns_key(hw)
    if km is None or kf is None or kh is None:
        return None
    return Spec((km, kf, kh, _layout(tp, pp, dp, ep), tag), (m, f, hw, tp, pp, dp, ep, tag))
