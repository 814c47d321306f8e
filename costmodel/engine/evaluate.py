"""The array engine: columns + workload arrays -> metric arrays, one code path for all sizes.

  TTFT  = sum of prefill operator times + per-step overhead
  TPOT  = mean decode-step time over the generated context (exact for the piecewise-linear
          roofline), with batch/m sequences per step under pipeline parallelism
          (m = min(pp, batch) micro-batches in flight); with N draft tokens per step (MTP), the
          verification step of N + 1 tokens plus N draft passes over E(α, N) tokens
  e2e   = TTFT + (gen - 1) · TPOT
  throughput = replicas · batch · gen / e2e (static batch, prefill included)
  power        = TDP · (idle + (1 − idle) · u), u = busy fraction of the phase: the share of its time
                 that operators spend at their compute or memory roof (overheads count as idle)
  energy/token = devices · average power · e2e / output tokens
  $/Mtok = devices · $/h · e2e / output tokens (usd_per_million_tokens), or / (prompt + output) tokens
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

from costmodel.engine.distinct import columns_at, distinct
from costmodel.engine.memory import (GIB, Memory, footprint, kv_bytes_per_sequence, kv_pool, max_batch,
                                     pool_in_tokens, state_bytes_per_sequence)
from costmodel.engine.operators import (ATTENTION_OPS, COMM, OP_NAMES, OP_UNITS, Ops, group_batch, lower,
                                       lower_attention)
from costmodel.engine.roofline import OpTimes, mean_times, op_times
from costmodel.engine.speculative import DEFAULT_ACCEPT, draft_pass, tokens_per_step, with_mtp_weights


@dataclass(frozen=True)
class EngineResult:
    metrics: dict  # name -> array
    memory: Memory
    _detail: Callable  # () -> (prefill Ops, prefill OpTimes, decode Ops at the first step, decode per-op times)

    @cached_property
    def _full(self) -> tuple:
        return self._detail()

    @property
    def prefill_ops(self) -> Ops:
        return self._full[0]

    @property
    def prefill_times(self) -> OpTimes:
        return self._full[1]

    @property
    def decode_ops(self) -> Ops:  # at the first decode step
        return self._full[2]

    @property
    def decode_times(self) -> np.ndarray:  # per-operator mean over the decode
        return self._full[3]


def evaluate(m: dict, f: dict, hw: dict, batch, prompt, gen, context, tp, pp, replicas, dp=1.0,
             ep=1.0, mtp=0.0, accept=DEFAULT_ACCEPT, groups=None) -> EngineResult:
    """Evaluate every configuration at once. `batch` < 0 means the largest batch that fits.
    `dp` attention data-parallel groups and `ep`-way expert parallelism split the `tp` ranks of a
    replica (operators.py); `batch` is the replica's. `mtp` draft tokens per decode step accepted
    at `accept` each make a decode step a verification of mtp + 1 tokens (speculative.py).
    `groups` (1-D, optional): rows with equal values have equal model, format and hardware columns;
    the prefill and the decode's operators other than attention are then evaluated once per distinct
    input (distinct.py) and gathered, with the same results."""
    prompt = np.asarray(prompt, dtype=float)
    gen = np.asarray(gen, dtype=float)
    context = np.asarray(context, dtype=float)
    tp = np.asarray(tp, dtype=float)
    pp = np.asarray(pp, dtype=float)
    replicas = np.asarray(replicas, dtype=float)
    dp = np.asarray(dp, dtype=float)
    ep = np.asarray(ep, dtype=float)
    a_tp = tp / dp
    m = with_mtp_weights(m, mtp)  # drafting with the model's own MTP modules loads their weights
    pool = kv_pool(m, f, hw, tp, pp, dp, ep) if groups is None else _shared_pool(m, f, hw, tp, pp, dp, ep, groups)
    bmax = max_batch(m, f, hw, prompt, gen, context, tp, pp, dp, ep, pool)
    requested = np.asarray(batch, dtype=float)
    B = np.where(requested < 0, bmax, requested)
    held = np.where(requested < 0, hw["kv_reserved_gen_fraction"], 1.0)
    mem = footprint(m, f, hw, B, prompt, gen, context, tp, pp, held, dp, ep, pool)
    max_len = hw["max_model_len"]
    full_len = np.where(max_len > 0, max_len, context + prompt + gen)
    one_long = kv_bytes_per_sequence(m, f, full_len, a_tp, pp, hw)
    fits = mem.fits & (B >= 1) & ((max_len <= 0) | (one_long <= mem.kv_pool))
    Bc = np.maximum(B, 1.0)  # evaluate times even where it does not fit; flagged by `fits`
    encoder = m["encoder"] > 0
    step = hw["step_overhead_s"]

    micro = np.minimum(pp, Bc)
    Bd = Bc / micro
    c0 = context + prompt
    c1 = c0 + np.maximum(gen - 2, 0)
    spec = np.asarray(mtp, dtype=float)
    n_dec = 1.0 + spec  # new tokens per sequence in a decode step (the drafts and the next one)
    phases = _phases if groups is None else _phases_shared
    pre_total, u_pre, dec_step, u_dec, detail = phases(m, f, hw, Bc, prompt, context, Bd, n_dec, c0, c1, tp, pp,
                                                       dp, ep, groups)
    prefill_s = np.where(prompt > 0, pre_total + step, 0.0)
    step_s = dec_step + step
    if np.any(spec > 0):  # N sequential draft passes, E(α, N) tokens per verified step
        one = op_times(lower(m, f, hw, Bd, 1.0, c0, tp, pp, decode=True, dp=dp, ep=ep), hw, f).total
        draft = draft_pass(one, OP_NAMES, m, f, hw, tp / dp)
        step_s = (step_s + spec * draft) / tokens_per_step(accept, spec)
    tpot = np.where(encoder, np.nan, step_s)

    steps = np.maximum(gen - 1, 0)
    e2e = prefill_s + np.where(encoder, 0.0, steps * np.nan_to_num(tpot))
    out_tokens = np.where(encoder, Bc * prompt, Bc * gen)  # encoders: per input token
    devices = tp * pp * replicas
    kv_tokens = pool_in_tokens(m, f, hw, mem.kv_pool, a_tp, pp)
    decode_s = e2e - prefill_s
    idle = hw["idle_power_fraction"]
    with np.errstate(divide="ignore", invalid="ignore"):
        power = hw["tdp"] * (idle + (1 - idle) * (u_pre * prefill_s + u_dec * decode_s) / e2e)
        per_token_s = e2e / out_tokens  # device-seconds per token of one replica, / (tp·pp)
        metrics = {
            "ttft_s": prefill_s,
            "tpot_s": tpot,
            "prefill_tokens_per_s": Bc * prompt / prefill_s,
            "decode_tokens_per_s": 1.0 / tpot,
            # llama-batched-bench's S_TG: generated tokens of all sequences per second of decode only
            "decode_aggregate_tokens_per_s": replicas * Bc / tpot,
            "throughput_tokens_per_s": replicas * out_tokens / e2e,
            "e2e_latency_s": e2e,
            "energy_j_per_token": tp * pp * power * per_token_s,
            "energy_j_per_query": tp * pp * power * e2e / Bc,
            "average_power_w": power,
            "usd_per_million_tokens": tp * pp * hw["price_per_hour"] / 3600.0 * per_token_s * 1e6,
            # the same dollars spread over every token processed (prompt + generated), as API prices mix them
            "usd_per_million_total_tokens": tp * pp * hw["price_per_hour"] / 3600.0 * e2e
            / (Bc * (prompt + np.where(encoder, 0.0, gen))) * 1e6,
            "batch": B,
            "max_batch": bmax,
            "fits": fits,
            "devices": devices + 0 * B,
            # memory as engines print it at start-up (per device)
            "weights_gib": mem.weights / GIB,
            "kv_cache_gib": np.maximum(mem.kv_pool, 0.0) / GIB,
            "kv_cache_tokens": kv_tokens,
            # vLLM's "Maximum concurrency for N tokens per request": pool tokens / N; with recurrent
            # layers, the pool over one sequence's KV and state
            "max_concurrency": dp * np.where(m["rec_layers"] > 0, np.maximum(mem.kv_pool, 0.0) / one_long,
                                             kv_tokens / full_len),
            "state_bytes": B / dp * state_bytes_per_sequence(m, hw, a_tp, pp),
        }
    return EngineResult(metrics, mem, detail)


COMM_OPS = OP_UNITS == COMM
ATT = np.isin(np.asarray(OP_NAMES), ATTENTION_OPS)  # the decode's context-dependent operators


def _phases(m, f, hw, Bc, prompt, context, Bd, n_dec, c0, c1, tp, pp, dp, ep, groups=None):
    """(prefill step time, prefill busy fraction, mean decode step time, decode busy fraction, detail):
    both phases lowered for every configuration; only attention grows with the context, so the
    decode averages it exactly over [c0, c1] and keeps the rest at c0."""
    pre_ops = lower(m, f, hw, Bc, prompt, context, tp, pp, decode=False, dp=dp, ep=ep)
    pre_t = op_times(pre_ops, hw, f)
    d0_ops = lower(m, f, hw, Bd, n_dec, c0, tp, pp, decode=True, dp=dp, ep=ep)
    d0_t = op_times(d0_ops, hw, f)
    a0 = OpTimes(*(x[ATT] for x in (d0_t.compute, d0_t.memory, d0_t.fixed, d0_t.comm)))
    a1 = op_times(lower_attention(m, f, group_batch(Bd, dp), n_dec, c1, tp / dp, decode=True), hw, f)
    dec_per_op = d0_t.total.copy()
    dec_per_op[ATT] = mean_times(a0, a1)
    return (step_time(pre_t.total, hw), _busy_fraction(pre_t), step_time(dec_per_op, hw), _busy_fraction(d0_t),
            lambda: (pre_ops, pre_t, d0_ops, dec_per_op))


def _phases_shared(m, f, hw, Bc, prompt, context, Bd, n_dec, c0, c1, tp, pp, dp, ep, groups):
    """`_phases` with the prefill lowered once per distinct (group, batch, prompt, context, layout) and
    the decode's operators other than attention once per distinct (group, batch, new tokens, layout);
    attention, the only context-dependent part, for every configuration."""
    g = np.asarray(groups)
    Bc, prompt, context, Bd, n_dec, tp, pp, dp, ep = (np.broadcast_to(np.asarray(x, dtype=float), g.shape)
                                                      for x in (Bc, prompt, context, Bd, n_dec, tp, pp, dp, ep))
    p, p_inv = distinct(g, Bc, prompt, context, tp, pp, dp, ep)
    hp, fp = columns_at(hw, p), columns_at(f, p)
    pre_ops = lower(columns_at(m, p), fp, hp, Bc[p], prompt[p], context[p], tp[p], pp[p], decode=False,
                    dp=dp[p], ep=ep[p])
    pre_t = op_times(pre_ops, hp, fp)

    d, d_inv = distinct(g, Bd, n_dec, tp, pp, dp, ep)
    hd, fd = columns_at(hw, d), columns_at(f, d)
    rest_ops = lower(columns_at(m, d), fd, hd, Bd[d], n_dec[d], 0.0, tp[d], pp[d], decode=True, dp=dp[d], ep=ep[d])
    rest_t = op_times(rest_ops, hd, fd)
    for x in (rest_t.compute, rest_t.memory, rest_t.fixed, rest_t.comm):
        x[ATT] = 0.0  # attention comes from the full-size terms below
    B_att = group_batch(Bd, dp)
    a0_ops = lower_attention(m, f, B_att, n_dec, c0, tp / dp, decode=True)
    a0 = op_times(a0_ops, hw, f)
    a1 = op_times(lower_attention(m, f, B_att, n_dec, c1, tp / dp, decode=True), hw, f)
    att_mean = mean_times(a0, a1)
    rest_total = rest_t.total
    rest = rest_total[~COMM_OPS].sum(axis=0)[d_inv] + att_mean.sum(axis=0)
    comm = rest_total[COMM_OPS].sum(axis=0)[d_inv]
    dec_step = np.where(hw.get("comm_overlap", 0.0) > 0, np.maximum(rest, comm), rest + comm)
    busy = np.maximum(rest_t.compute, rest_t.memory).sum(axis=0)[d_inv] + np.maximum(a0.compute, a0.memory).sum(axis=0)
    total = rest_total.sum(axis=0)[d_inv] + a0.total.sum(axis=0)
    u_dec = np.where(total > 0, busy / np.where(total > 0, total, 1.0), 0.0)

    def detail():
        d0_ops = _gather_ops(rest_ops, d_inv)
        for name in Ops.__dataclass_fields__:
            if name != "names":
                getattr(d0_ops, name)[ATT] = getattr(a0_ops, name)
        dec_per_op = rest_total[:, d_inv]
        dec_per_op[ATT] = att_mean
        return (_gather_ops(pre_ops, p_inv), OpTimes(*(x[:, p_inv] for x in (pre_t.compute, pre_t.memory,
                pre_t.fixed, pre_t.comm))), d0_ops, dec_per_op)

    return step_time(pre_t.total, hp)[p_inv], _busy_fraction(pre_t)[p_inv], dec_step, u_dec, detail


def _shared_pool(m, f, hw, tp, pp, dp, ep, groups) -> tuple:
    """kv_pool once per distinct (group, layout)."""
    g = np.asarray(groups)
    tp, pp, dp, ep = (np.broadcast_to(np.asarray(x, dtype=float), g.shape) for x in (tp, pp, dp, ep))
    d, inv = distinct(g, tp, pp, dp, ep)
    pool, headroom = kv_pool(columns_at(m, d), columns_at(f, d), columns_at(hw, d), tp[d], pp[d], dp[d], ep[d])
    return np.broadcast_to(pool, d.shape)[inv], np.broadcast_to(headroom, d.shape)[inv]


def _gather_ops(ops: Ops, idx) -> Ops:
    return Ops(*(getattr(ops, k)[:, idx] for k in Ops.__dataclass_fields__ if k != "names"), names=ops.names)


def step_time(per_op: np.ndarray, hw: dict) -> np.ndarray:
    """A step's time from its operators' (axis 0): their sum, or with `comm_overlap` (SGLang's
    two-batch overlap: one micro-batch's collectives under the other's compute) max(the rest, the
    collectives), the communication hidden up to the compute it overlaps."""
    comm = per_op[COMM_OPS].sum(axis=0)
    rest = per_op[~COMM_OPS].sum(axis=0)
    return np.where(hw.get("comm_overlap", 0.0) > 0, np.maximum(rest, comm), rest + comm)


def _busy_fraction(t: OpTimes) -> np.ndarray:
    """Share of a phase's time that operators spend at a roof (not in overheads or latencies)."""
    busy = np.maximum(t.compute, t.memory).sum(axis=0)
    total = t.total.sum(axis=0)
    return np.where(total > 0, busy / np.where(total > 0, total, 1.0), 0.0)
