"""Parallel layouts of one replica as engines state them, and which combinations are legal.

SGLang (--tp, --dp with --enable-dp-attention, --ep), TensorRT-LLM (tp_size, enable_attention_dp,
moe_ep_size) and vLLM's expert parallelism count a replica's devices as `tp`; attention runs on
tp/dp of them per data-parallel group, experts are sharded over `ep` of them, each expert over tp/ep
(operators.py and memory.py use the same split).
"""
from __future__ import annotations

import math

import numpy as np

from costmodel.engine.operators import OP_NAMES
from costmodel.errors import WorkloadError
from costmodel.spec.model import Model

# named layouts of a replica's tp devices, as plan and sweep search them: (dp, ep) as multiples of tp
# (0: 1, 1: tp) — tensor parallelism, EP over the tp devices, DP attention + EP
LAYOUTS = {"tp": (0, 0), "ep": (0, 1), "dp-ep": (1, 1)}
COLLECTIVES = ("tp_allreduce", "dp_allgather", "ep_alltoall", "pp_sendrecv")


def layout_of(name: str, tp: int) -> tuple[int, int]:
    """(dp, ep) of a named layout on tp devices."""
    dp_of, ep_of = LAYOUTS[name]
    return (tp if dp_of else 1), (tp if ep_of else 1)


def layout_summary(tp: int, dp: int, ep: int, batch: float, decode_per_op, step_s: float | None) -> dict:
    """A replica's layout as the outputs report it: attention and expert TP, sequences of the busiest
    attention group, each collective's time in a decode step (`decode_per_op`, axis 0 the operators)
    and, given the step time, the share they take of it."""
    dec = np.asarray(decode_per_op).reshape(len(OP_NAMES), -1)[:, 0]
    comm = {n: float(dec[OP_NAMES.index(n)]) for n in COLLECTIVES}
    out = {"tp": tp, "dp_attention": dp, "ep": ep, "attention_tp": tp // dp, "moe_tp": tp // ep,
           "batch_per_attention_group": math.ceil(batch / dp) if dp > 1 else batch, "decode_comm_s": comm}
    if step_s is not None:
        out["decode_step_s"] = step_s
        out["decode_comm_share"] = sum(comm.values()) / step_s if step_s > 0 else 0.0
    return out


def check_layout(tp: int, dp: int, ep: int, model: Model) -> tuple[int, int]:
    """Check a parallel layout as engines state it (SGLang --tp/--dp/--ep, TensorRT-LLM tp_size /
    enable_attention_dp / moe_ep_size): `tp` ranks per replica, split into `dp` attention groups of
    tp/dp ranks and `ep` expert shards of tp/ep ranks."""
    if tp % dp:
        raise WorkloadError(f"--dp {dp} must divide --tp {tp}: --tp counts the devices of one replica and "
                            f"attention runs on tp/dp of them (e.g. --tp {dp * tp} --dp {dp} for {tp}-way "
                            f"attention in {dp} groups)")
    if tp % ep:
        raise WorkloadError(f"--ep {ep} must divide --tp {tp}: experts are sharded over ep of the replica's "
                            f"tp devices (e.g. --tp {ep} --ep {ep})")
    a_tp = tp // dp
    if model.heads % a_tp and not model.attention_layers:  # a recurrent-only model: no attention heads to split
        raise WorkloadError(f"--tp {tp}: {model.id} has no attention layers, and tensor parallelism of its recurrent "
                            f"heads is not modelled; use --tp 1 (replicas via --devices)")
    if model.heads % a_tp:
        what = f"tp/dp = {a_tp}" if dp > 1 else f"--tp {tp}"
        raise WorkloadError(f"{what} must divide the {model.heads} attention heads of {model.id}"
                            + ("" if dp > 1 else "; with DP attention (--dp) only tp/dp must"))
    if ep > 1:
        if model.moe is None:
            raise WorkloadError(f"--ep {ep}: {model.id} is dense (no experts to shard); use --ep 1")
        if ep > model.moe.experts:
            raise WorkloadError(f"--ep {ep} exceeds the {model.moe.experts} experts of {model.id}")
    return dp, ep
