"""evaluate = finish(lower_all(...)): the lowering never reads the roofline's efficiencies, peaks and
overheads (TIMING), so a calibration lowers its rows once and times them for every parameter vector
(tests/calibration/test_fit_speed.py checks the predictions)."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pytest

from costmodel.engine.columns import format_columns, hardware_columns, model_columns, take
from costmodel.engine.evaluate import TIMING, evaluate, finish, lower_all
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import all_models


def _columns(n=600, seed=5):
    models = all_models()
    hws = [load_hardware(h) for h in ("h100-sxm", "mi300x", "rtx-4090")]
    pairs = [(load_format(f), h, None, False) for h in hws for f in ("bf16", "fp8")]
    rng = np.random.default_rng(seed)
    mi = rng.integers(0, len(models), n)
    hi = rng.integers(0, len(hws), n)
    fi = hi * 2 + rng.integers(0, 2, n)
    cols = take(model_columns(models), mi), take(format_columns(pairs), fi), take(hardware_columns(hws), hi)
    work = (rng.choice([1.0, 16.0, -1.0], n), rng.choice([0.0, 1.0, 900.0], n), rng.choice([1.0, 2.0, 300.0], n),
            rng.choice([0.0, 5000.0], n), rng.choice([1.0, 2.0, 8.0], n), 1.0, 1.0)
    return cols, work, mi * 6 + fi


def _arrays(x, prefix=""):
    """Every array inside a Lowered (dataclasses, dicts), by path."""
    if dataclasses.is_dataclass(x):
        return {k: v for f in dataclasses.fields(x) for k, v in _arrays(getattr(x, f.name), f"{prefix}.{f.name}").items()}
    if isinstance(x, Mapping):  # evaluate.Later too: every entry, the deferred ones computed
        return {k: v for key in x for k, v in _arrays(x[key], f"{prefix}[{key}]").items()}
    if isinstance(x, (np.ndarray, np.floating, float, int)):
        return {prefix: np.asarray(x)}
    return {}


@pytest.mark.parametrize("shared,layout", [(False, "tp"), (True, "tp"), (False, "dp-ep-pp-mtp"), (True, "dp-ep-pp-mtp")])
def test_the_lowering_reads_no_timing_column(shared, layout):
    (m, f, hw), work, groups = _columns()
    g = groups if shared else None
    kw = {}
    if layout != "tp":  # DP attention + EP over the tp ranks, two pipeline stages, MTP drafting (draft ops)
        work = work[:5] + (2.0,) + work[6:]
        kw = dict(dp=work[4], ep=work[4], mtp=2.0)
    base = _arrays(lower_all(m, f, hw, *work, groups=g, **kw))
    assert {".work[full_len]", ".work[kv_tokens]", ".work[state]"} <= base.keys()  # the deferred ones too
    if layout != "tp":
        assert ".draft_ops.flops" in base and base[".draft_ops.flops"].size
    rng = np.random.default_rng(0)
    for key in (*TIMING, "request_overhead_s"):
        hw2, f2 = dict(hw), dict(f)
        for cols in (hw2, f2):
            if key in cols:
                cols[key] = cols[key] * rng.uniform(0.2, 5.0, np.shape(cols[key]))
        got = _arrays(lower_all(m, f2, hw2, *work, groups=g, **kw))
        assert got.keys() == base.keys()
        for path, value in base.items():
            np.testing.assert_array_equal(got[path], value, err_msg=f"{key} changes {path}")


def test_finish_of_a_lowering_is_evaluate_for_other_timing_columns():
    (m, f, hw), work, _ = _columns(n=300, seed=9)
    lw = lower_all(m, f, hw, *work)
    hw2 = {**hw, "compute_efficiency": hw["compute_efficiency"] * 0.5, "kernel_overhead_s": hw["kernel_overhead_s"] * 3}
    f2 = {**f, "peak_matmul": f["peak_matmul"] * 0.7}
    a, b = finish(lw, hw2, f2).metrics, evaluate(m, f2, hw2, *work).metrics
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
    assert not np.allclose(np.asarray(a["ttft_s"]), np.asarray(finish(lw, hw, f).metrics["ttft_s"]))


def test_later_computes_its_deferred_entries_once_and_copies_as_a_dict():
    """evaluate.Later: a deferred entry is computed on its first read, once; membership, iteration and length
    count it unread; a copy, a deep copy or a pickle is a plain dict with every entry computed."""
    import copy
    import pickle

    from costmodel.engine.evaluate import Later

    calls = []
    w = Later({"a": 1.0}, {"b": lambda: calls.append("b") or 2.0})
    assert "b" in w and "c" not in w and len(w) == 2 and list(w) == ["a", "b"] and calls == []
    assert w.get("c") is None and w.get("b") == 2.0 and w["b"] == 2.0 and calls == ["b"]
    with pytest.raises(KeyError):
        w["c"]
    fresh = Later({"a": 1.0}, {"b": lambda: 2.0})
    for c in (copy.copy(fresh), copy.deepcopy(fresh), pickle.loads(pickle.dumps(fresh)), dict(fresh), {**fresh}):
        assert type(c) is dict and c == {"a": 1.0, "b": 2.0}


@pytest.mark.parametrize("shared", [False, True])
def test_a_lowering_pickles_and_finishes_the_same(shared):
    """A Lowered survives a pickle (its deferred memory figures computed first): the same metrics, bit for bit."""
    import pickle

    (m, f, hw), work, groups = _columns()
    lw = lower_all(m, f, hw, *work, groups=groups if shared else None)
    again = pickle.loads(pickle.dumps(lw))
    for (k, a), b in zip(finish(lw, hw, f).metrics.items(), finish(again, hw, f).metrics.values()):
        assert np.array_equal(np.asarray(a), np.asarray(b), equal_nan=np.asarray(a).dtype.kind == "f"), k
