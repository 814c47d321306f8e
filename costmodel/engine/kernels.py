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


unit_roof = jit(scalar_times.unit_roof)  # roofline.op_times of one operator, the scalar path's own code


@jit
def comm_roof(ab, launches, lat, link):
    """roofline.op_times of a collective at one configuration: (fixed, comm); no compute or memory time."""
    return launches * lat, (ab / link if ab > 0 else 0.0)


@jit
def op_fields(flops, wb, ab, kb, launches, rows, dq, kind, fused, hr, ec, ae, em, bw, ko, lat, link, pm, pv, pa,
              any_dq, any_ae):
    """roofline.op_times: (compute, memory, fixed, comm), each (operators, configurations); kind per
    operator: 0 the matrix peak pm, 1 the attention peak pa, 2 the vector peak pv, 3 the interconnect."""
    K, N = flops.shape
    c, m, fx, cm = np.zeros((K, N)), np.zeros((K, N)), np.empty((K, N)), np.zeros((K, N))
    for k in range(K):
        u = kind[k]
        if u == 3:  # the interconnect
            for j in range(N):
                fx[k, j], cm[k, j] = comm_roof(ab[k, j], launches[k, j], lat[j], link[j])
            continue
        peak = pm if u == 0 else pa if u == 1 else pv
        att = any_ae and fused[k]
        for j in range(N):  # branch-free but for `att` and `any_dq`, fixed per operator: vectorized
            c[k, j], m[k, j], fx[k, j] = unit_roof(flops[k, j], wb[k, j], ab[k, j], kb[k, j], launches[k, j],
                                                   rows[k, j], dq[k, j], att, hr[j], ec[j], ae[j], em[j], bw[j],
                                                   ko[j], peak[j], pv[j], any_dq)
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
def decode_step(c0, m0, f0, x0, q_inv, flops, wb, ab, kb, launches, rows, dq, kind, fused, hr, ec, ae, em, bw, ko,
                lat, link, pm, pv, pa, any_dq, any_ae, overlap, d_rest, d_comm, d_busy, d_total, d_inv):
    """SharedPhaseOps.times' decode, per configuration j: its attention operators' times at the last step
    (op_fields of the *1 operators, on the columns of distinct row q_inv[j], where j's model, format and
    device are), averaged with the first step's (column q_inv[j] of the *0 fields: mean_total); the step
    (phases.overlap of the other operators' sums at distinct row d_inv[j] plus that mean, and their
    collectives) and its busy fraction (phases.share, the first step's attention included)."""
    K, N = flops.shape
    mean, busy, total = np.zeros(N), np.zeros(N), np.zeros(N)
    for k in range(K):
        u = kind[k]
        peak = pm if u == 0 else pa if u == 1 else pv
        att = any_ae and fused[k]
        for j in range(N):
            q = q_inv[j]
            if u == 3:  # the interconnect
                c1 = m1 = 0.0
                f1, x1 = comm_roof(ab[k, j], launches[k, j], lat[q], link[q])
            else:
                c1, m1, f1 = unit_roof(flops[k, j], wb[k, j], ab[k, j], kb[k, j], launches[k, j], rows[k, j],
                                       dq[k, j], att, hr[q], ec[q], ae[q], em[q], bw[q], ko[q], peak[q], pv[q], any_dq)
                x1 = 0.0
            top = maximum(c0[k, q], m0[k, q])
            busy[j] += top
            total[j] += top + f0[k, q] + x0[k, q]
            mean[j] += mean_total(c0[k, q], m0[k, q], f0[k, q], x0[k, q], c1, m1, f1, x1)
    step, u_dec = np.empty(N), np.empty(N)
    for j in range(N):
        i = d_inv[j]
        rest, comm = d_rest[i] + mean[j], d_comm[i]
        step[j] = maximum(rest, comm) if overlap[q_inv[j]] > 0 else rest + comm
        b, t = d_busy[i] + busy[j], d_total[i] + total[j]
        u_dec[j] = b / t if t > 0 else 0.0
    return step, u_dec
