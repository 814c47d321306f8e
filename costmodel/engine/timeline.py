"""A configuration's timeline and what it costs, from its phases' times (evaluate.finish's formulas):

  prefill = the prefill step + the step overhead (none without a prompt)
  TPOT    = the decode step (an encoder has none: NaN)
  e2e     = prefill + (gen − 1) · TPOT
  power   = TDP · (idle + (1 − idle) · (u_prefill · prefill + u_decode · decode) / e2e)
  per token: e2e / output tokens (an encoder's: its input tokens)
  energy/token = tp · pp · power · per token;  $/Mtok = tp · pp · $/h / 3600 · per token · 10^6

and a step's time from its operators' sums (the collectives overlapped or not) and its busy share.

Plain arithmetic through elementwise.py's functions, on arrays or numbers: kernels.py compiles these
functions as they are for a sweep's [fast] metrics (the same bits; callers hold np.errstate).
"""
from __future__ import annotations

import numpy as np

from costmodel.engine.elementwise import divide, maximum, minimum, nan_to_num, where

TIMELINE = ("prefill_s", "tpot", "e2e", "out_tokens", "power", "per_token_s")  # prefill_seconds, then timeline's


def steps(B, pp, context, prompt, gen) -> tuple:
    """(the batch timed, at least one sequence even where none fits; the decode's batch per micro-batch, m =
    min(pp, batch) of them in flight; the context at the first decode step; at the last) of evaluate.lower_all."""
    Bc = maximum(B, 1.0)
    Bd = Bc / minimum(pp, Bc)
    c0 = context + prompt
    return Bc, Bd, c0, c0 + maximum(gen - 2, 0.0)


def prefill_seconds(pre_total, prompt, step):
    """The prefill's time: its step plus the step overhead, 0 without a prompt."""
    return where(prompt > 0, pre_total + step, 0.0)


def timeline(prefill_s, step_s, u_pre, u_dec, prompt, gen, Bc, encoder, idle, tdp) -> tuple:
    """(TPOT, e2e, output tokens, average power, device-seconds per output token of one replica / (tp·pp))."""
    tpot = where(encoder, np.nan, step_s)
    steps = maximum(gen - 1, 0.0)
    e2e = prefill_s + where(encoder, 0.0, steps * nan_to_num(tpot))
    out_tokens = where(encoder, Bc * prompt, Bc * gen)  # encoders: per input token
    decode_s = e2e - prefill_s
    power = tdp * (idle + divide((1 - idle) * (u_pre * prefill_s + u_dec * decode_s), e2e))
    return tpot, e2e, out_tokens, power, divide(e2e, out_tokens)


def energy_per_token(tp, pp, power, per_token_s):
    """Joules per output token: every device of the replica at its average power."""
    return tp * pp * power * per_token_s


def usd_per_million_tokens(tp, pp, price_per_hour, per_token_s):
    """Dollars per million output tokens: every device of the replica at its hourly price."""
    return usd_per_million_at(usd_per_second(tp, pp, price_per_hour), per_token_s)


def usd_per_second(tp, pp, price_per_hour):
    """Dollars per second of every device of the replica: tp · pp · $/h / 3600."""
    return tp * pp * price_per_hour / 3600.0


def usd_per_million_at(usd_s, per_token_s):
    """Dollars per million output tokens at `usd_s` dollars a second and `per_token_s` seconds a token."""
    return usd_s * per_token_s * 1e6


def prefill_rate(Bc, prompt, prefill_s):
    """Prompt tokens per second of the prefill."""
    return divide(Bc * prompt, prefill_s)


def decode_rate(tpot):
    """One sequence's generated tokens per second."""
    return divide(1.0, tpot)


def throughput(replicas, out_tokens, e2e):
    """Output tokens per second of every replica (static batch, prefill included)."""
    return divide(replicas * out_tokens, e2e)


def overlapped(rest, comm, comm_overlap):
    """A step of `rest` compute/memory time and `comm` collective time: rest + comm, or max(rest, comm) where
    the engine overlaps them (its `comm_overlap` flag: phases.overlap)."""
    return where(comm_overlap > 0, maximum(rest, comm), rest + comm)


def share(busy, total):
    """busy / total, 0 where the phase takes no time (a phase's busy fraction: phases.busy_fraction)."""
    return where(total > 0, busy / where(total > 0, total, 1.0), 0.0)
