"""Parallel layouts of one replica as engines state them, and which combinations are legal.

SGLang (--tp, --dp with --enable-dp-attention, --ep), TensorRT-LLM (tp_size, enable_attention_dp,
moe_ep_size) and vLLM's expert parallelism count a replica's devices as `tp`; attention runs on
tp/dp of them per data-parallel group, experts are sharded over `ep` of them, each expert over tp/ep
(operators.py and memory.py use the same split).
"""
from __future__ import annotations

from costmodel.errors import WorkloadError
from costmodel.spec.model import Model


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
