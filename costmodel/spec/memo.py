"""Memoize pure functions of spec objects by identity: a spec (Model, Hardware, Format, Efficiency, the
parsed calibration tables) is frozen, so a result computed for an object holds while the object lives.

The cache keeps each entry's arguments alive, so an id is not reused while its entry stands; a new object
(a re-read catalogue, a user's --mem-fraction) is a new key. Errors are not cached.
"""
from __future__ import annotations

import functools

_PLAIN = (str, int, float, bool, type(None))


def by_identity(maxsize: int = 512):
    """Decorator: fn(*args) computed once per tuple of arguments, plain values (str, numbers, None) by type and value
    and the rest by identity; at `maxsize` entries the cache starts over."""
    def wrap(fn):
        cache: dict = {}

        @functools.wraps(fn)
        def memoized(*args):
            key = tuple((type(a), a) if type(a) in _PLAIN else id(a) for a in args)  # 1, 1.0 and True differ
            objects = tuple(a for a in args if type(a) not in _PLAIN)
            hit = cache.get(key)
            if hit is not None and all(x is y for x, y in zip(hit[0], objects)):
                return hit[1]
            out = fn(*args)
            if len(cache) >= maxsize:
                cache.clear()
            cache[key] = (objects, out)
            return out

        memoized.cache_clear = cache.clear
        return memoized
    return wrap
