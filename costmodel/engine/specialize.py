"""Two-stage evaluation of a formula on numbers: once per spec, the formula runs on Traced inputs (engine/traced.py)
and what depends on them is compiled to straight-line Python; every later call with that spec runs only that code.

Stage one is the formula itself at the spec (the model's, format's and device's columns, the layout): everything
computed from the spec alone becomes a constant of the compiled code, the coefficient table of the issue's
two-stage lowering. Stage two evaluates the token counts' part: the same operations, in the same order, on the same
Python floats, so the same bits (tests/engine/test_specialize.py checks every catalogue model). The formulas stay the
one source (explain and the array path read them as they are).

A spec is compiled on its SIGHTINGS-th sighting (a CLI call, which lowers each spec once, pays nothing), and keeps
up to VARIANTS compiled codes for inputs that take other branches (a guard failing: the inputs' signs, an empty
prompt). Where the formulas do what a recording cannot hold, or a guard fails on every variant, or the code raises
(a division by zero), the formula runs as before: the result is always the formula's.
"""
from __future__ import annotations

import threading

from costmodel.engine.traced import SCALARS, Recording, Traced, Untraceable

VARIANTS = 4  # compiled codes kept per spec
# A recording and its compile cost about 35 evaluations of the formulas (3.7 ms for lower's, whose formulas take 0.1 ms
# and code 0.02 ms; 17 ms for both phases of an estimate lowered and timed, 0.4 ms and 0.06 ms): a spec is recorded on
# its 32nd sighting, once the formulas have cost about what compiling does (the ski-rental rule: never more than
# twice the time of the better choice made in hindsight)
SIGHTINGS = 32
SPECS = 64  # specs whose codes are kept, the oldest forgotten first (a spec's code for both phases of an estimate
# takes about 0.4 MB: at most some 100 MB with every variant)
SEEN = 512  # specs whose sightings are counted (forgotten all at once past it)


class Specialized:
    """`formula(spec, *inputs)` evaluated through code compiled per spec (a hashable key holding everything the
    formula reads besides `inputs`, which must be Python floats). Safe between threads: specs are added and forgotten
    under a lock, a compiled code is read without one, and a spec another thread forgot runs the formula."""

    def __init__(self, formula, after: int = SIGHTINGS):
        self.formula = formula
        self.after = after  # the sightings of a spec before it is recorded
        self.codes: dict = {}  # spec -> its compiled codes ([] where none could be made)
        self.tries: dict = {}  # spec -> the recordings made of it, compiled or not (none after VARIANTS)
        self.seen: dict = {}  # spec -> its sightings, not yet recorded (at most SEEN specs)
        self._lock = threading.Lock()  # held while the sightings are counted and `codes` gains or loses a spec

    def __call__(self, spec, *inputs):
        codes = self.codes.get(spec)
        if codes is None:
            with self._lock:
                codes = self._sighted(spec)
            if codes is None:
                return self.formula(spec, *inputs)
        for code in codes:
            try:
                out = code(*inputs)
            except ArithmeticError:  # the formula raises too, or its numbers differ there: the formula decides
                return self.formula(spec, *inputs)
            if out is not None:
                return out
        if self.tries.get(spec, VARIANTS) >= VARIANTS:  # no more recordings (or forgotten since): the formula
            return self.formula(spec, *inputs)
        return self._compile(spec, inputs, codes)

    def _sighted(self, spec) -> list | None:
        """A sighting of `spec` counted (the lock held): None while it has been seen fewer than `after` times, else
        its list of codes (a new, empty one on the `after`-th, the oldest spec's forgotten past SPECS)."""
        codes = self.codes.get(spec)
        if codes is not None:  # another thread got there first
            return codes
        seen = self.seen.get(spec, 0) + 1
        if seen < self.after:
            if len(self.seen) >= SEEN:
                self.seen.clear()
            self.seen[spec] = seen
            return None
        self.seen.pop(spec, None)
        if len(self.codes) >= SPECS:
            oldest = next(iter(self.codes))
            del self.codes[oldest]
            self.tries.pop(oldest, None)
        self.tries[spec] = 0
        codes = self.codes[spec] = []
        return codes

    def _compile(self, spec, inputs: tuple, codes: list):
        """The formula's result for `inputs`, recording it; its code added to the spec's `codes` where it can be."""
        self.tries[spec] = self.tries.get(spec, 0) + 1
        rec = Recording()
        traced = tuple(Traced(x, f"a{i}", rec) for i, x in enumerate(inputs))
        try:
            out = self.formula(spec, *traced)
            code = compile_recording(rec, len(inputs), out)
        except ArithmeticError:  # these inputs' numbers (a division by zero): another try on other inputs
            return self.formula(spec, *inputs)
        except Exception:  # Untraceable, or numpy's TypeError on a Traced, or what the formula raises itself
            self.tries[spec] = VARIANTS
            return self.formula(spec, *inputs)
        codes.append(code)
        return code(*inputs)


def compile_recording(rec: Recording, n_inputs: int, out):
    """A function of the n inputs that runs the recorded lines (guards returning None) and returns `out` (Traced
    values, constants, and tuples and str-keyed dicts of them) with the recorded names filled in. Arithmetic whose
    result nothing reads is left out (it cannot raise on numbers); calls and divisions stay (they may)."""
    result = _expression(rec, out)
    live = set(_names(out))
    kept = []
    for kind, target, text, reads in reversed(rec.lines):
        if kind == "pure" and target not in live:
            continue
        live.update(reads)
        kept.append(f"    if {text}: return None" if kind == "guard" else f"    {target} = {text}")
    args = ", ".join(f"a{i}" for i in range(n_inputs))
    source = "\n".join([f"def residual({args}):", *reversed(kept), f"    return {result}"])
    namespace = dict(rec.constants)
    exec(compile(source, "<costmodel.engine.specialize>", "exec"), namespace)
    residual = namespace["residual"]
    residual.source = source
    return residual


def _expression(rec: Recording, x) -> str:
    if type(x) is Traced:
        return x.name
    if type(x) is tuple:
        return "(" + "".join(_expression(rec, v) + ", " for v in x) + ")"
    if type(x) is dict and all(type(k) is str for k in x):
        return "{" + ", ".join(f"{k!r}: {_expression(rec, v)}" for k, v in x.items()) + "}"
    if type(x) in SCALARS:
        return rec.constant(x)
    raise Untraceable(f"a result holding {type(x).__name__}")


def _names(x):
    if type(x) is Traced:
        yield x.name
    elif type(x) is tuple:
        for v in x:
            yield from _names(v)
    elif type(x) is dict:
        for v in x.values():
            yield from _names(v)
