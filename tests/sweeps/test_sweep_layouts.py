"""Sweeps over parallel layouts: the same numbers as `estimate` with --dp/--ep, and a reason where a
layout cannot apply."""
import numpy as np
import pytest

from costmodel import estimate
from costmodel.sweeps.grid import SweepError
from costmodel.sweeps.sweep import sweep


def test_layout_axis_matches_estimate():
    r = sweep(models=["deepseek-r1", "llama-3.1-70b"], hw=["h200"], fmt=["fp8"], tp=[8], batch=[64],
              layouts=["tp", "ep", "dp-ep"])
    cols = r.to_dict()
    assert len(r) == 6
    for i in range(6):
        model, dp, ep = cols["model"][i], int(cols["dp"][i]), int(cols["ep"][i])
        if model == "llama-3.1-70b" and (dp, ep) != (1, 1):
            # a dense model has no experts to shard: kept, with its reason
            assert not cols["valid"][i] and "dense model" in cols["reason"][i]
            continue
        e = estimate(model, "h200", "fp8", tp=8, dp=dp, ep=ep, batch=64)
        assert cols["tpot_s"][i] == pytest.approx(e.metric("tpot_s"), rel=1e-9)
        assert cols["ttft_s"][i] == pytest.approx(e.metric("ttft_s"), rel=1e-9)


def test_unknown_layout():
    with pytest.raises(SweepError, match="--layouts 'pp': expected tp, ep or dp-ep"):
        sweep(models=["deepseek-r1"], hw=["h200"], tp=[8], layouts=["pp"])


def test_layouts_on_one_device_are_not_duplicates():
    r = sweep(models=["deepseek-r1"], hw=["h200"], fmt=["fp8"], tp=[1], batch=[1], layouts=["tp", "ep", "tp"])
    cols = r.to_dict()
    assert len(r) == 2  # 'tp' once
    reasons = list(cols["reason"])
    assert "dense model or a single device" in reasons[1]


def test_csv_cells_of_object_columns():
    from costmodel.spec.files import csv_cell
    from costmodel.sweeps.sweep import _text_cells

    a = np.array(["=cmd", -1.5, "a,b", "=cmd", None], dtype=object)
    assert _text_cells(a, csv_cell) == [csv_cell(x) for x in a.tolist()]


def test_layout_and_head_reasons_per_model_tp_and_layout():
    """grid._layout_reasons, the table a chunk gathers its configurations' first reasons from, by hand: Llama 3.1
    8B (32 heads, dense) and Mixtral 8x7B (32 heads, 8 experts); 5 where EP or DP attention cannot apply (a
    dense model, tp 1, more expert groups than experts), 1 where tp/dp does not divide the heads."""
    from costmodel.sweeps.grid import Tables, make_axes

    ax = make_axes(models=["llama-3.1-8b", "mixtral-8x7b"], hw=["h100"], tp=[1, 3, 8, 16], layouts=["tp", "ep", "dp-ep"])
    got = Tables(ax).layout_reason.reshape(2, 4, 3)  # model, tp, layout
    want = {"llama-3.1-8b": [[0, 5, 5], [1, 5, 5], [0, 5, 5], [0, 5, 5]],
            "mixtral-8x7b": [[0, 5, 5], [1, 1, 0], [0, 0, 0], [0, 5, 5]]}
    assert got.tolist() == [want[m.id] for m in ax.models]
