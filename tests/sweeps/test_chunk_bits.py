"""A sweep's results do not depend on how it is cut into chunks: every column has the same bits in chunks of 1, 2, 3,
7 and the default, on numpy's path and the [fast] kernels'. A chunk of one distinct row used to sum its operators
pairwise (numpy's order for side-by-side values) and so differ in the last bit from the same configuration among
others (phases.over_ops)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from costmodel.engine.phases import over_ops
from costmodel.sweeps import grid
from costmodel.sweeps.sweep import sweep

GRIDS = {
    "max in the middle": dict(models=["llama-3.1-8b", "mixtral-8x7b"], hw=["h100", "a100"],
                              batch=[1, "max", 8, 64], tp=[1, 2], prompt=[128, 4096], gen=[16, 256]),
    "numbers alone": dict(models=["llama-3.1-8b"], hw=["h100", "l40s"], fmt=["bf16", "fp8"], batch=[1, 2, 3, 4]),
    "encoders, layouts and contexts": dict(models=["bert-base", "deepseek-v3", "qwen2.5-7b"], hw=["h100", "mi300x"],
                                           batch=["max", 3], tp=[1, 8], prompt=[1, 512], gen=[0, 64],
                                           context=[0, 300], layouts=["tp", "dp-ep"]),
}


def _bits(r) -> dict:
    return {k: np.asarray(r[k]).tobytes() for k in r.columns if np.asarray(r[k]).dtype.kind in "fiub"}


@pytest.mark.parametrize("fast", ["0", "1"])
@pytest.mark.parametrize("name", list(GRIDS))
def test_every_chunking_gives_the_same_bits(name, fast, monkeypatch):
    monkeypatch.setattr(grid, "FAST_MIN_CONFIGS", 0)  # the kernels on these small sweeps where "1"
    monkeypatch.setenv("COSTMODEL_FAST", fast)
    whole = _bits(sweep(**GRIDS[name]))
    for chunk in (1, 2, 3, 7):
        got = _bits(sweep(chunk=chunk, **GRIDS[name]))
        assert [k for k in whole if got[k] != whole[k]] == [], chunk


finite = st.floats(-1e6, 1e6, allow_nan=False, width=64)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(2, 5)), elements=finite))
def test_one_configuration_sums_its_operators_as_among_others(x):
    """over_ops of one configuration's column (shape (K, 1) or (K,)) has the bits of that column of the whole sum,
    which numpy adds row after row."""
    whole = over_ops(x)
    assert whole.tobytes() == x.sum(axis=0).tobytes()  # two or more configurations: numpy's own sum, unchanged
    for j in range(x.shape[1]):
        assert over_ops(x[:, j:j + 1]).tobytes() == whole[j:j + 1].tobytes()
        assert over_ops(np.ascontiguousarray(x[:, j])).tobytes() == whole[j].tobytes()
