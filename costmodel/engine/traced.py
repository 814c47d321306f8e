"""A number whose operations are recorded: the engine's formulas run once on Traced inputs, and what they compute
from those inputs is written down as straight-line Python (engine/specialize.py compiles it).

A Traced holds the value it stands for (the input's at trace time) and the name of the variable that will hold it in
the recorded code. Python's operators on it, and the engine's element-wise functions (engine/elementwise.py and
engine/truth.py test for it where a Python float would take their scalar path), compute that value as they would
and record the operation. Everything else, the model's and device's columns, is computed as usual, once: the
recording holds their results as constants (the partial evaluation of a formula at one spec). A decision taken on
a recorded value (`if`, `and`, a truth function) is recorded as a guard: the code returns None where it would go the
other way. Anything the recording cannot hold — numpy's functions, float(), a hash, an array — raises Untraceable,
and the caller computes as before.
"""
from __future__ import annotations

import operator

import numpy as np

# constants a recording may hold: numbers, as the columns of an estimate hold them
SCALARS = (float, int, bool, np.float64, np.bool_, np.int64)


class Untraceable(Exception):
    """The formulas did something a recording cannot hold."""


class Recording:
    """The lines recorded so far: assignments, calls and guards over named values and constants."""

    def __init__(self):
        self.lines: list[tuple] = []  # (kind, target name or None, text, names read)
        self.constants: dict[str, object] = {}  # name -> the constant's object (bound in the compiled code)
        self._ids: dict[tuple, str] = {}
        self._exprs: dict[str, Traced] = {}
        self._guards: set[str] = set()

    def constant(self, value) -> str:
        """The name that holds `value` in the recorded code (one per distinct type and value)."""
        if type(value) not in SCALARS:
            raise Untraceable(f"a constant of type {type(value).__name__}")
        return self._bound((type(value), value, repr(value)), "k", value)  # repr: -0.0 and 0.0, NaN, differ

    def ref(self, x) -> str:
        return x.name if type(x) is Traced else self.constant(x)

    def new(self, value, text: str, reads: tuple, pure: bool) -> Traced:
        """The value of `text` (an operation on recorded names and constants), recorded once: the operations and
        the engine's element-wise functions are deterministic, so a repeat is the value already recorded."""
        if type(value) not in SCALARS:
            raise Untraceable(f"a result of type {type(value).__name__}")
        known = self._exprs.get(text)
        if known is not None:
            return known
        name = f"t{len(self.lines)}"
        self.lines.append(("pure" if pure else "call", name, text, reads))
        self._exprs[text] = out = Traced(value, name, self)
        return out

    def guard(self, test: str, reads: tuple) -> None:
        """A line that returns None where `test` (Python on recorded names) holds (once: a repeat cannot fail)."""
        if test not in self._guards:
            self._guards.add(test)
            self.lines.append(("guard", None, test, reads))

    def function(self, fn) -> str:
        """The name that holds function `fn` in the recorded code."""
        return self._bound(("fn", id(fn)), "f", fn)

    def _bound(self, key: tuple, prefix: str, obj) -> str:
        """The name (`prefix` and a number) bound to `obj` in the recorded code, one per `key`."""
        name = self._ids.get(key)
        if name is None:
            name = self._ids[key] = f"{prefix}{len(self.constants)}"
            self.constants[name] = obj
        return name


def _binary(symbol: str, fn, reflected: bool = False, pure: bool = True):
    def method(self, other):
        if type(other) is Traced:
            if other.rec is not self.rec:
                raise Untraceable("two recordings")
        elif type(other) not in SCALARS:
            return NotImplemented
        a, b = (other, self) if reflected else (self, other)
        value = fn(value_of(a), value_of(b))  # raises as the operation would (ZeroDivisionError): the caller's to catch
        rec = self.rec
        names = (rec.ref(a), rec.ref(b))
        return rec.new(value, f"{names[0]} {symbol} {names[1]}", _reads(a, b), pure)

    return method


def _unary(form: str, fn):
    def method(self):
        return self.rec.new(fn(self.value), form.format(self.name), (self.name,), True)

    return method


def value_of(x):
    """x's value: a recorded number's (the value it stands for now), anything else as it is. What is computed from
    it is a constant of the recording: for facts fixed by the spec, such as a result's type (types follow from the
    inputs' types, which specialize fixes)."""
    return x.value if type(x) is Traced else x


def _reads(*xs) -> tuple:
    return tuple(x.name for x in xs if type(x) is Traced)


def _refuse(self, *args, **kwargs):
    raise Untraceable("a recorded value converted or hashed")


class Traced:
    """A recorded number (the module's docstring)."""

    __slots__ = ("value", "name", "rec")
    __array_ufunc__ = None  # numpy's operators and ufuncs refuse it (TypeError), never an object array

    def __init__(self, value, name: str, rec: Recording):
        self.value, self.name, self.rec = value, name, rec

    # arithmetic that cannot raise on numbers is `pure`: specialize drops it where nothing reads it
    __add__, __radd__ = _binary("+", operator.add), _binary("+", operator.add, True)
    __sub__, __rsub__ = _binary("-", operator.sub), _binary("-", operator.sub, True)
    __mul__, __rmul__ = _binary("*", operator.mul), _binary("*", operator.mul, True)
    __truediv__ = _binary("/", operator.truediv, pure=False)
    __rtruediv__ = _binary("/", operator.truediv, True, pure=False)
    __mod__ = _binary("%", operator.mod, pure=False)
    __rmod__ = _binary("%", operator.mod, True, pure=False)
    __lt__, __le__ = _binary("<", operator.lt), _binary("<=", operator.le)
    __gt__, __ge__ = _binary(">", operator.gt), _binary(">=", operator.ge)
    __eq__, __ne__ = _binary("==", operator.eq), _binary("!=", operator.ne)
    __and__, __rand__ = _binary("&", operator.and_), _binary("&", operator.and_, True)
    __or__, __ror__ = _binary("|", operator.or_), _binary("|", operator.or_, True)
    __neg__, __pos__ = _unary("-{}", operator.neg), _unary("+{}", operator.pos)
    __invert__, __abs__ = _unary("~{}", operator.invert), _unary("abs({})", abs)
    __hash__ = None

    def __bool__(self) -> bool:
        """The value's truth, recorded as a guard."""
        result = bool(self.value)
        self.rec.guard(f"{'not ' if result else ''}{self.name}", (self.name,))
        return result

    __float__ = __int__ = __index__ = __complex__ = __round__ = __array__ = __array_function__ = _refuse
    # ** can turn floats complex, // is not the engine's: refused rather than recorded
    __pow__ = __rpow__ = __floordiv__ = __rfloordiv__ = __len__ = __iter__ = _refuse


def call(fn, *args):
    """fn(*args) recorded, where some argument is Traced: the function's own result on the values (an element-wise
    function's scalar path then, as the recorded code will call it)."""
    rec = next(x.rec for x in args if type(x) is Traced)
    value = fn(*map(value_of, args))
    text = f"{rec.function(fn)}({', '.join(rec.ref(x) for x in args)})"
    return rec.new(value, text, _reads(*args), False)


def choice(where, condition, a, b):
    """where(condition, a, b) (elementwise.where) recorded: with a Python bool condition and operands whose values
    are Python floats the chosen operand itself, as where's first path returns it; else the call."""
    if type(condition) is bool and type(value_of(a)) is float and type(value_of(b)) is float:
        return a if condition else b
    return call(where, condition, a, b)


def holds(test, x) -> bool:
    """test(x) (a truth function of one Traced column, engine/truth.py) on its value, recorded as a guard."""
    result = test(x.value)
    if type(result) is not bool:
        raise Untraceable(f"{test.__name__} gave {type(result).__name__}")
    rec = x.rec
    rec.guard(f"{rec.function(test)}({x.name}) is not {result}", (x.name,))
    return result
