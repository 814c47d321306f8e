"""The compiled kernels of fast.py (numba, imported only through it; compiled on first use and cached
on disk). Each writes one of numpy's formulas element by element in numpy's order of operations:
the same bits (fast.py's docstring, tests/engine/test_fast.py). They read no module constant (a cached
kernel would keep an old value): an operator's unit comes as its `kind` (fast.kinds)."""
import numba
import numpy as np

from costmodel.engine import scalar_times

jit = numba.njit(cache=True, error_model="numpy")  # x/0 is inf or NaN, as numpy's


@jit
def maximum(a, b):  # np.maximum: NaN wins
    return a if (a >= b or a != a) else b

@jit
def minimum(a, b):  # np.minimum: NaN wins
    return a if (a <= b or a != a) else b

@jit
def op_fields(flops, wb, ab, kb, launches, rows, dq, kind, fused, hr, ec, ae, em, bw, ko, lat, link, pm, pv, pa,
              any_dq, any_ae):
    """roofline.op_times: (compute, memory, fixed, comm), each (operators, configurations); kind per
    operator: 0 the matrix peak pm, 1 the attention peak pa, 2 the vector peak pv, 3 the interconnect."""
    K, N = flops.shape
    c, m, fx, cm = np.zeros((K, N)), np.zeros((K, N)), np.empty((K, N)), np.zeros((K, N))
    for k in range(K):
        u = kind[k]
        if u == 3:  # the interconnect: no compute or memory time
            for j in range(N):
                fx[k, j] = launches[k, j] * lat[j]
                w = ab[k, j]
                cm[k, j] = w / link[j] if w > 0 else 0.0
            continue
        peak = pm if u == 0 else pa if u == 1 else pv
        att = any_ae and fused[k]
        for j in range(N):  # branch-free but for `att` and `any_dq`, fixed per operator: vectorized
            r = rows[k, j]
            e = r / (r + hr[j])
            e = e * ec[j]
            if att:
                e = minimum(e * ae[j], 1.0)
            e = maximum(e, 1e-12)
            e = e * peak[j]
            t = flops[k, j] / e
            if any_dq:
                t = t + dq[k, j] / (pv[j] * ec[j])
            c[k, j] = t
            b = wb[k, j] + ab[k, j] + kb[k, j]
            if att:
                b = b * (em[j] / minimum(em[j] * ae[j], 1.0))
            m[k, j] = b / (bw[j] * em[j])
            fx[k, j] = launches[k, j] * ko[j]
    return c, m, fx, cm

mean_total = jit(scalar_times.mean_total)  # roofline.mean_times of one operator, the scalar path's own code


@jit
def sums(c, m, fx, cm, is_comm, att_of, c1, m1, f1, x1):
    """Per configuration: the step's non-comm and comm operator times (operators of att_of >= 0
    averaged with row att_of of the *1 fields), and the busy and total times of the fields."""
    K, N = c.shape
    rest, comm, busy, total = np.zeros(N), np.zeros(N), np.zeros(N), np.zeros(N)
    for k in range(K):
        a = att_of[k]
        for j in range(N):
            top = maximum(c[k, j], m[k, j])
            t = top + fx[k, j] + cm[k, j]
            busy[j] += top
            total[j] += t
            if a >= 0:
                t = mean_total(c[k, j], m[k, j], fx[k, j], cm[k, j], c1[a, j], m1[a, j], f1[a, j], x1[a, j])
            if is_comm[k]:
                comm[j] += t
            else:
                rest[j] += t
    return rest, comm, busy, total


@jit
def attention_sums(c0, m0, f0, x0, q_inv, c1, m1, f1, x1):
    """Per configuration j, over the attention operators: the sum of mean_total between the first
    step's times (column q_inv[j] of the *0 fields) and the last step's (column j of the *1 fields),
    and the first step's busy and total sums (SharedPhaseOps.times)."""
    K, N = c1.shape
    mean, busy, total = np.zeros(N), np.zeros(N), np.zeros(N)
    for k in range(K):
        for j in range(N):
            q = q_inv[j]
            top = maximum(c0[k, q], m0[k, q])
            busy[j] += top
            total[j] += top + f0[k, q] + x0[k, q]
            mean[j] += mean_total(c0[k, q], m0[k, q], f0[k, q], x0[k, q], c1[k, j], m1[k, j], f1[k, j], x1[k, j])
    return mean, busy, total
