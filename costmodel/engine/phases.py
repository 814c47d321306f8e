"""The two phases of an evaluation, lowered once and timed for any roofline parameters.

Lowering (operators.py: FLOPs, bytes, kernels per operator) reads the model, the format, the device's
structure and the workload; timing (roofline.op_times) reads the efficiencies, peaks and overheads
that calibration fits. `lower_phases` builds the operators of the prefill, of the first decode step
and of the decode's attention at its last step; `.times(hw, f)` gives
  (prefill step time, prefill busy fraction, mean decode step time, decode busy fraction, detail)
where only attention grows with the context, so the decode averages it exactly over [c0, c1] and
keeps the rest at c0. With `groups` (rows with equal groups have equal model, format and hardware
columns and the same layout tp, pp, dp, ep), the prefill is lowered once per distinct (group, batch,
prompt, context), the decode's other operators once per distinct (group, batch, new tokens) and its
attention at c0 once per distinct (group, batch, new tokens, c0) (distinct.py), at c1 for every
configuration: the same results.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, partial
from typing import Callable

import numpy as np

from costmodel.engine import scalar_times
from costmodel.engine.attention import ATTENTION_OPS, attention_present, coefficients_at, pair_coefficients, terms_of
from costmodel.engine.distinct import Gathered, columns_at, distinct, rows
from costmodel.engine.elementwise import as_float, maximum
from costmodel.engine.operators import (COMM, OP_FIELDS, OP_NAMES, OP_UNITS, NumberOps, Ops, attention_ops, concat,
                                       group_batch, lower, lower_attention, lower_formula)
from costmodel.engine.roofline import OpTimes, mean_times, op_times, rates_finite, zeros_divide_to_zeros
from costmodel.engine.spec_keys import Spec, columns_key, spec_of
from costmodel.engine.specialize import Specialized
from costmodel.engine.timeline import overlapped, share
from costmodel.engine.traced import Traced

COMM_OPS = OP_UNITS == COMM
ATT = np.isin(np.asarray(OP_NAMES), ATTENTION_OPS)  # the decode's context-dependent operators
# lower_attention packs them in ATTENTION_OPS order; ATT selects them in OP_NAMES order: the same
assert [n for n in OP_NAMES if n in ATTENTION_OPS] == list(ATTENTION_OPS)
_ATT_AT = np.flatnonzero(ATT)
_ATT_LIST = _ATT_AT.tolist()
_REST, _COMM = np.flatnonzero(~COMM_OPS).tolist(), np.flatnonzero(COMM_OPS).tolist()  # positions in OP_NAMES


class _Timed:
    """`times(hw, f, fast)`: the compiled kernels (fast.py) where they apply (`_compiled` gives None where
    not), one configuration on Python floats (`_scalar`, scalar_times.py; None where it does not apply), else
    numpy (`_numpy`); the same bits every way."""

    def times(self, hw: dict, f: dict, fast: bool = False) -> tuple:
        got = self._compiled(hw, f) if fast else self._scalar(hw, f)
        return got if got is not None else self._numpy(hw, f)

    def _scalar(self, hw: dict, f: dict) -> None:
        return None

    def compiled_parts(self, hw: dict, f: dict) -> None:
        """SharedPhaseOps' parts for a sweep's one pass from the decode to its metrics; None here."""
        return None


@dataclass(frozen=True)
class PhaseOps(_Timed):
    """Every configuration lowered: the prefill, the first decode step, the decode's attention at c1."""

    pre: Ops
    d0: Ops
    a1: Ops
    timed: tuple | None = None  # (Keys of hw and f, _scalar's four figures on them): compiled code's (lower_phases)

    def _numpy(self, hw: dict, f: dict) -> tuple:
        pre_t, d0_t, a1_t = times_of(hw, f, self.pre, self.d0, self.a1)
        dec_per_op = d0_t.total.copy()
        dec_per_op[ATT] = mean_times(d0_t.at(ATT), a1_t)
        return (step_time(pre_t.total, hw), busy_fraction(pre_t), step_time(dec_per_op, hw), busy_fraction(d0_t),
                lambda: (self.pre, pre_t, self.d0, dec_per_op))

    def _scalar(self, hw: dict, f: dict) -> tuple | None:
        """_numpy's four figures for one configuration, operator by operator on its values (scalar_times.py)."""
        if self.timed is not None and self.timed[0] == columns_key(hw) and self.timed[1] == columns_key(f):
            return (*self.timed[2], lambda: self._numpy(hw, f)[4]())  # timed on these columns as they are now
        figures = self.figures(hw, f)
        return None if figures is None else (*figures, lambda: self._numpy(hw, f)[4]())

    def figures(self, hw: dict, f: dict) -> tuple | None:
        """_scalar's four figures, None where they do not apply."""
        if self.a1.names != ATTENTION_OPS or not scalar_times.applies(self.pre, hw, f):
            return None
        idle = zeros_divide_to_zeros(hw, f)
        pre, d0, a1 = (scalar_times.op_times(ops, hw, f, idle) for ops in (self.pre, self.d0, self.a1))
        dec = list(d0[5])
        for i, j in enumerate(_ATT_LIST):  # the decode's attention averaged over its context
            dec[j] = scalar_times.mean_total(*(x[j] for x in d0[:4]), *(x[i] for x in a1[:4]))
        return (overlap(*scalar_times.step_sums(pre[5], _REST, _COMM), hw), share(*scalar_times.busy_sums(pre)),
                overlap(*scalar_times.step_sums(dec, _REST, _COMM), hw), share(*scalar_times.busy_sums(d0)))

    def _compiled(self, hw: dict, f: dict) -> tuple | None:
        from costmodel.engine import fast

        n = fast.config_count(hw, f, self.pre, self.d0, self.a1)
        if n is None or not fast.usable(n):
            return None
        cols = fast.columns(hw, f, n)
        rest, comm, busy, total = fast.phase_sums(self.pre, cols)
        d_rest, d_comm, d_busy, d_total = fast.phase_sums(self.d0, cols, self.a1, _ATT_AT)
        return (overlap(rest, comm, hw), share(busy, total), overlap(d_rest, d_comm, hw), share(d_busy, d_total),
                lambda: self._numpy(hw, f)[4]())


@dataclass(frozen=True)
class SharedPhaseOps(_Timed):
    """The prefill at distinct rows `p` (row i is p_inv[i]), the decode's operators other than attention
    at distinct rows `d`, its attention at c0 at distinct rows `q` and at c1 for every configuration. The rows d
    and q are searched among the rows p: row i's are d_of_p[p_inv[i]] and q_of_p[p_inv[i]] (`d_inv`, `q_inv`).
    The attention at c1 holds only the variants the models have layers for (`present`, attention.
    attention_present); the others are zero work and take no time, so the decode's sums leave them out
    (the same sums: adding zeros changes nothing). It is lowered when first read (`a1`, from `last`:
    the model and format columns, the decode's batch, DP groups, new tokens, context and tp, whose attention
    group's batch and tp lower_attention takes); the [fast] kernels lower it themselves from its pair
    coefficients at the rows q (`at_q`: the model and format columns, the group's batch, new tokens and tp
    there). The prefill may hold only the operators with work (operators.lower's `busy_only`; `full` then lowers
    all of them, `pre_all`): those are timed where the others take no time (`timed_pre`), else all, and the phases'
    detail holds all."""

    pre: Ops
    p: np.ndarray
    p_inv: np.ndarray
    rest: Ops
    d: np.ndarray
    d_of_p: np.ndarray
    a0: Ops
    q: np.ndarray
    q_of_p: np.ndarray
    present: tuple
    last: tuple
    at_q: tuple
    full: Callable | None = None

    @cached_property
    def pre_all(self) -> Ops:
        """The prefill's operators, all of OP_NAMES (at the rows p)."""
        return self.pre if self.full is None else self.full()

    def timed_pre(self, hp: dict, fp: dict) -> Ops:
        """The prefill's operators to time on the columns at the rows p: `pre` where the operators it leaves out take
        +0.0 or -0.0 time (roofline.rates_finite) and its sums add operator after operator (two rows or more: numpy
        sums one row's pairwise, and the kernels' run on two or more), else all of them."""
        if self.full is None or (len(self.p) >= 2 and rates_finite(hp, fp)):
            return self.pre
        return self.pre_all

    @cached_property
    def d_inv(self) -> np.ndarray:
        """Each configuration's distinct row of the decode's other operators (among `d`)."""
        return self.d_of_p[self.p_inv]

    @cached_property
    def q_inv(self) -> np.ndarray:
        """Each configuration's distinct row of the decode's attention at c0 (among `q`)."""
        return self.q_of_p[self.p_inv]

    @cached_property
    def a1(self) -> Ops:
        """The decode's attention at c1 for every configuration, the variants of `present`: lower_attention's terms
        (attention.terms_of) from the pair coefficients, encoder flags and activation bytes at the rows q (`at_q`),
        each configuration's those of its row (the values at its own columns: q's key fixes the group, the
        attention group's batch and tp, and the new tokens), so no model column is gathered to every configuration."""
        m, f, Bd, dp, n, c1, tp = self.last
        mq, fq, _, nq, tpq = self.at_q
        q_inv = self.q_inv
        coef = coefficients_at(pair_coefficients(mq, fq, nq, tpq, True, self.present), q_inv)
        B, n = group_batch(Bd, dp), as_float(n)
        terms = terms_of(coef, B, n, as_float(c1), True, rows(mq["encoder"], q_inv), rows(fq["a_bits"] / 8, q_inv))
        return attention_ops(terms, self.present)

    def _numpy(self, hw: dict, f: dict) -> tuple:
        hp, fp = columns_at(hw, self.p), columns_at(f, self.p)
        pre = self.timed_pre(hp, fp)
        pre_t = op_times(pre, hp, fp)
        rest_t = op_times(self.rest, columns_at(hw, self.d), columns_at(f, self.d))
        for x in (rest_t.compute, rest_t.memory, rest_t.fixed, rest_t.comm):
            x[ATT] = 0.0  # attention comes from the full-size terms
        a0 = op_times(self._a0(), columns_at(hw, self.q), columns_at(f, self.q)).at((slice(None), self.q_inv))
        att_mean = mean_times(a0, op_times(self.a1, hw, f))  # the variants of a1.names
        rest_total = rest_t.total
        d_inv = self.d_inv
        dec_step = overlap(over_ops(rest_total[~COMM_OPS])[d_inv] + over_ops(att_mean),
                           over_ops(rest_total[COMM_OPS])[d_inv], hw)
        u_dec = share(over_ops(maximum(rest_t.compute, rest_t.memory))[d_inv]
                      + over_ops(maximum(a0.compute, a0.memory)),
                      over_ops(rest_total)[d_inv] + over_ops(a0.total))

        def detail():
            d0 = _gather(self.rest, d_inv)
            for name in OP_FIELDS:
                getattr(d0, name)[ATT] = getattr(self.a0, name)[:, self.q_inv]
            dec_per_op = rest_total[:, d_inv]
            dec_per_op[_ATT_AT[self._present()]] = att_mean
            all_t = pre_t if pre is self.pre_all else op_times(self.pre_all, hp, fp)
            return _gather(self.pre_all, self.p_inv), all_t.at((slice(None), self.p_inv)), d0, dec_per_op

        return (step_time(pre_t.total, hp, pre.units == COMM)[self.p_inv], busy_fraction(pre_t)[self.p_inv], dec_step,
                u_dec, detail)

    def _present(self) -> list:
        """Positions in ATTENTION_OPS of the variants a1 holds."""
        return [ATTENTION_OPS.index(name) for name in self.present]

    def _a0(self) -> Ops:
        """The attention at c0 of a1's variants."""
        return self.a0 if self.a0.names == self.present else self.a0.take(self._present())

    def _compiled(self, hw: dict, f: dict) -> tuple | None:
        from costmodel.engine import fast

        parts = self.compiled_parts(hw, f)
        if parts is None:
            return None
        pre_total, u_pre, attention, step, detail = parts
        dec_step, u_dec = fast.decode_step(fast.attention_means(attention), *step)
        return pre_total[self.p_inv], u_pre[self.p_inv], dec_step, u_dec, detail

    def compiled_parts(self, hw: dict, f: dict) -> tuple | None:
        """By the [fast] kernels, (the prefill's step time and busy fraction at the distinct rows p, the decode's
        attention per configuration as its kernel's arguments (fast.attention_arguments: fast.attention_means
        computes it, fast.decode_metrics in its own pass), the rest of fast.decode_step's arguments, `times`'
        detail), or None where they do not apply."""
        from costmodel.engine import fast

        if not fast.usable(len(self.p), len(self.d)):
            return None
        hp, fp = columns_at(hw, self.p), columns_at(f, self.p)
        rest, comm, busy, total = fast.phase_sums(self.timed_pre(hp, fp), fast.columns(hp, fp, len(self.p)))
        d_sums = fast.phase_sums(self.rest, fast.columns(columns_at(hw, self.d), columns_at(f, self.d), len(self.d)),
                                 skip=_ATT_AT)  # attention: below
        hq = columns_at(hw, self.q)
        q_cols = fast.columns(hq, columns_at(f, self.q), len(self.q))
        a0 = self._a0()
        mq, fq, Bq, nq, tpq = self.at_q
        coef = pair_coefficients(mq, fq, nq, tpq, True, self.present)
        attention = fast.attention_arguments(fast.fields(a0, q_cols), a0, coef, Bq, nq, mq["encoder"], self.last[5],
                                             (self.p_inv, self.q_of_p), q_cols)
        at = self.p_inv  # the rows q and d by the rows p: no index gathered to every configuration (fast._via)
        step = ((at, self.q_of_p), len(self.q), hq.get("comm_overlap", 0.0), d_sums, (at, self.d_of_p))
        return overlap(rest, comm, hp), share(busy, total), attention, step, lambda: self._numpy(hw, f)[4]()


def lower_phases(m, f, hw, Bc, prompt, context, Bd, n_dec, c0, c1, tp, pp, dp, ep, groups=None, fast=False,
                 keep=None, follows=False, starts=None):
    """The operators of both phases (PhaseOps, or SharedPhaseOps with `groups`; `fast`: their distinct rows found
    by the [fast] kernel where it applies, the same rows). `keep` (optional, with `groups` and `fast`): a mask of
    the configurations whose times are read; where the kernel applies, the others' prefill is lowered only where it
    is also a kept one's, and is otherwise another configuration's (find_distinct). `follows`: the decode's batch,
    new tokens and c0 are functions of the groups, the batch, prompt and context (lower_all's: timeline.steps of
    them, with pp and the drafts fixed by its groups), so the prefill's rows are searched on those four alone: the
    same groups, two full-size columns fewer to compare. `starts` (optional, with `groups`): rows among which is
    every row where the prefill's key differs from the row before (distinct.distinct's), so none is searched for."""
    if groups is None:  # the decode's attention at c0 and c1: one attention group's pair coefficients
        spec = spec_of(m, f, hw, tp, pp, dp, ep, "phases", Bc, prompt, context, Bd, n_dec, c0, c1)
        got = None if spec is None else _SPECIALIZED(spec, Bc, prompt, context, Bd, n_dec, c0, c1)
        if got is not None:  # an estimate's (Python floats): lowered and timed by code compiled per spec
            pre, d0, a1, figures = got
            _, kf, kh = spec.key[:3]
            return PhaseOps(NumberOps(pre, OP_NAMES), NumberOps(d0, OP_NAMES), NumberOps(a1, ATTENTION_OPS),
                            None if figures is None else (kh, kf, figures))
        coef = pair_coefficients(m, f, as_float(n_dec), as_float(tp) / as_float(dp), True)
        return PhaseOps(lower(m, f, hw, Bc, prompt, context, tp, pp, decode=False, dp=dp, ep=ep),
                        lower(m, f, hw, Bd, n_dec, c0, tp, pp, decode=True, dp=dp, ep=ep, coefficients=coef),
                        lower_attention(m, f, group_batch(Bd, dp), n_dec, c1, tp / dp, decode=True, coefficients=coef))
    g = np.asarray(groups)
    Bc, prompt, context, Bd, n_dec, c0, tp, pp, dp, ep = (np.broadcast_to(np.asarray(x, dtype=float), g.shape)
                                                          for x in (Bc, prompt, context, Bd, n_dec, c0, tp, pp, dp, ep))
    # the group fixes the layout; the decode's batch, new tokens and c0 are in the key too unless they follow from
    # the others (`follows`: lower_all's; no more rows either way): the decode's keys are then functions of this
    # one, searched below among its distinct rows rather than every row
    p, p_inv = find_distinct(fast, g, Bc, prompt, context, *(() if follows else (Bd, n_dec, c0)), keep=keep,
                             starts=starts)
    tp_p, dp_p, ep_p = tp[p], dp[p], ep[p]
    at_p = (columns_at(m, p), columns_at(f, p), columns_at(hw, p), Bc[p], prompt[p], context[p], tp_p, pp[p])
    pre = lower(*at_p, decode=False, dp=dp_p, ep=ep_p, busy_only=True)  # timed_pre: what has work
    full = partial(lower, *at_p, decode=False, dp=dp_p, ep=ep_p) if pre.names != OP_NAMES else None  # pickles
    d_p, d_of_p = find_distinct(fast, g[p], Bd[p], n_dec[p])
    d = p[d_p]
    rest = lower(columns_at(m, d), columns_at(f, d), columns_at(hw, d), Bd[d], n_dec[d], 0.0, tp[d], pp[d],
                 decode=True, dp=dp[d], ep=ep[d])
    B_att, a_tp = group_batch(Bd[p], dp_p), tp_p / dp_p  # an attention group's batch and tp at the rows p
    q_p, q_of_p = find_distinct(fast, g[p], B_att, n_dec[p], c0[p])  # the generated length plays no part
    q = p[q_p]
    at_q = (columns_at(m, q), columns_at(f, q), B_att[q_p], n_dec[q], a_tp[q_p])
    a0 = lower_attention(*at_q[:4], c0[q], at_q[4], decode=True)
    present = attention_present(m.table_rows() if isinstance(m, Gathered) else m)  # a chunk's blocks' models
    return SharedPhaseOps(pre, p, p_inv, rest, d, d_of_p, a0, q, q_of_p, present,
                          (m, f, Bd, dp, n_dec, c1, tp), at_q, full)


def _phases(spec: Spec, Bc, prompt, context, Bd, n_dec, c0, c1) -> tuple | None:
    """One configuration's PhaseOps as its three Ops' columns (NumberOps') and their four figures on the Spec's hw
    and f (PhaseOps.figures; None where they do not apply or raise: lowering never raises the timing's errors);
    None where an Ops is not of Python floats. The formulas lower_phases evaluates, as they are: what
    engine/specialize.py compiles per spec."""
    m, f, hw, tp, pp, dp, ep, _ = spec.args
    coef = pair_coefficients(m, f, as_float(n_dec), tp / dp, True)
    ops = PhaseOps(lower_formula(m, f, hw, Bc, prompt, context, tp, pp, decode=False, dp=dp, ep=ep),
                   lower_formula(m, f, hw, Bd, n_dec, c0, tp, pp, decode=True, dp=dp, ep=ep, coefficients=coef),
                   lower_attention(m, f, group_batch(Bd, dp), n_dec, c1, tp / dp, decode=True, coefficients=coef))
    if ops.pre.columns is None or ops.d0.columns is None or ops.a1.columns is None:
        return None
    try:
        figures = ops.figures(hw, f)
    except ArithmeticError:  # the timing's (a zero efficiency): raised where the phases are timed, as before
        if type(Bc) is Traced:  # a recording: these inputs' numbers stop it (specialize records other inputs)
            raise
        figures = None
    return ops.pre.columns, ops.d0.columns, ops.a1.columns, figures


_SPECIALIZED = Specialized(_phases)


def find_distinct(fast: bool, *keys, keep=None, starts=None) -> tuple:
    """distinct.distinct's (first, inverse) of the key columns, by fast.distinct_rows with `fast` where it applies
    (the same groups; with a mask `keep`, the rows of runs of equal keys with none kept one group more); `starts`:
    distinct's, rows where every run of equal keys starts."""
    if fast:
        from costmodel.engine import fast as compiled

        got = compiled.distinct_rows(*keys, keep=keep, starts=starts)
        if got is not None:
            return got
    return distinct(*keys, starts=starts)


def times_of(hw: dict, f: dict, *sets: Ops) -> list:
    """op_times of each of `sets`. One configuration's (1-D fields) in one call over their operators
    concatenated: numpy's cost per call, not the 28 numbers, is the time there; the same values."""
    if any(s.flops.ndim != 1 for s in sets):
        return [op_times(s, hw, f) for s in sets]
    t = op_times(concat(*sets), hw, f)
    ends = np.cumsum([len(s.names) for s in sets]).tolist()
    return [t.at(slice(a, b)) for a, b in zip([0] + ends[:-1], ends)]


def step_time(per_op: np.ndarray, hw: dict, comm: np.ndarray = COMM_OPS) -> np.ndarray:
    """A step's time from its operators' (axis 0; `comm`: which are collectives, OP_NAMES' by default): their sum, or
    with `comm_overlap` (SGLang's two-batch overlap: one micro-batch's collectives under the other's compute)
    max(the rest, the collectives), the communication hidden up to the compute it overlaps."""
    return overlap(over_ops(per_op[~comm]), over_ops(per_op[comm]), hw)


def overlap(rest, comm, hw: dict) -> np.ndarray:
    """timeline.overlapped with the engine's `comm_overlap` flag (SGLang's two-batch overlap)."""
    return overlapped(rest, comm, hw.get("comm_overlap", 0.0))


def busy_fraction(t: OpTimes) -> np.ndarray:
    """Share of a phase's time that operators spend at a roof (not in overheads or latencies)."""
    return share(over_ops(maximum(t.compute, t.memory)), over_ops(t.total))


def over_ops(x: np.ndarray) -> np.ndarray:
    """x (operators, configurations...) summed over its operators one after another, as numpy sums two or more
    configurations' (down a column: each row added in turn). A lone configuration's operators lie side by side, which
    numpy would sum pairwise, another order of additions and other last bits: the same configuration would time
    differently alone than among others (a sweep's chunk of one distinct row, an estimate: scalar_times.array_sum)."""
    x = np.asarray(x)
    if x.ndim >= 1 and x.shape[0] >= 1 and x[0].size == 1:
        y = np.array(x, dtype=float)
        y[0] += 0.0  # numpy's sum starts from its identity, +0.0 (-0.0 + 0.0 is +0.0), then adds each row
        return np.add.accumulate(y, axis=0)[-1]
    return x.sum(axis=0)


def _gather(ops: Ops, idx) -> Ops:
    return Ops(*(getattr(ops, k)[:, idx] for k in OP_FIELDS), names=ops.names)
