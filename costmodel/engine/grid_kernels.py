"""The [fast] kernels of a sweep chunk's own columns (fast.chunk_frame, fast.outcome, fast.code_groups,
fast.distinct_rows): its frame (indices, inputs, codes and masks) before the engine runs, its distinct
batch-free codes and distinct rows, and its outcome after: sweeps/grid.py's and distinct.py's numpy, element by
element, the same values (distinct rows: the same groups)."""
import numpy as np

from costmodel.engine.kernel_base import inline, jit, rows_of


@jit
def chunk_frame(start, n, shape, batch, tp, prompt, gen, context, dp_of, ep_of, layout_reason, f_ok, encoder,
                interconnect):
    """sweeps/grid.evaluate_chunk's columns for the n configurations from flat index `start` in grid order, an
    odometer over the axes of `shape` (models, devices, formats, KV formats, engines, batch, tp, layouts, prompt,
    gen, context) in place of unravelling each index: the model, device and format rows, the inputs as the engine
    takes them (gen 0 for an encoder; tp, dp and ep 1 where the layout cannot run), the groups and batch-free
    codes, and the layout's reason, link, format and run flags (grid._frame's numpy, the same values). What the
    outer eight axes fix is computed once per run of the three lengths inside them (`lengths`), whose counters are
    locals: in a 10^7 sweep 0.19-0.22 s against 0.34-0.35 s for every column per configuration
    (benchmarks/bench_sweep.py stages)."""
    K = shape.shape[0]
    at = np.empty(K, dtype=np.int64)
    r = start
    for k in range(K - 1, -1, -1):
        at[k] = r % shape[k]
        r //= shape[k]
    n_h, n_k, n_e, n_t, n_l = shape[1], shape[3], shape[4], shape[6], shape[7]
    batch_stride = 1
    for k in range(6, K):
        batch_stride *= shape[k]
    # batch-free codes (grid._batch_free): the flat index with the batch's coordinate out, less (n_b - 2) batch
    # strides per block of the five axes before it (two classes, a number and "max", where it held n_b batches)
    spare = (2 - shape[5]) * batch_stride
    ints = np.empty((5, n), dtype=np.int64)  # model, device and format rows, groups, batch-free codes
    floats = rows_of(7, n)  # batch, prompt, gen, context, tp, dp, ep
    first = np.empty(n, dtype=np.int8)
    flags = np.empty((3, n), dtype=np.bool_)  # link, format, run
    n_f = f_ok.shape[0]
    j = 0
    while j < n:
        im, ih, i_f, ik, ie, ib, it, il = at[0], at[1], at[2], at[3], at[4], at[5], at[6], at[7]
        hw_i = (i_f * n_h + ih) * n_e + ie
        f_i = ((i_f * n_h + ih) * n_k + ik) * n_e + ie
        t, b = tp[it], batch[ib]
        reason = layout_reason[(im * n_t + it) * n_l + il]
        link = (t == 1) | (interconnect[hw_i] > 0)
        run = (reason == 0) & link
        block = (((im * n_h + ih) * shape[2] + i_f) * n_k + ik) * n_e + ie  # on the five axes before the batch
        code = start + ((b < 0) - ib) * batch_stride + block * spare
        j = lengths(j, n, at, shape, ints, floats, first, flags, im, hw_i, f_i, im * n_f + f_i,
                    code, b, prompt, gen, context, encoder[im] > 0,
                    t if run else 1.0, (t if dp_of[il] > 0 else 1.0) if run else 1.0,
                    (t if ep_of[il] > 0 else 1.0) if run else 1.0, reason, link, f_ok[f_i], run)
        k = 7  # the next outer configuration: the layout axis on, carried outward
        at[k] += 1
        while k > 0 and at[k] == shape[k]:
            at[k] = 0
            k -= 1
            at[k] += 1
    return ints, floats, first, flags


@inline
def lengths(j, n, at, shape, ints, floats, first, flags, im, hw_i, f_i, g, code, b, prompt, gen, context, enc, t, dp,
            ep, reason, link, fmt, run):
    """chunk_frame's configurations from j on while the outer axes stay (prompt, gen and context counted on from
    at[8:11], left there at their next values): each one's columns; the next j."""
    a8, a9, a10 = at[8], at[9], at[10]
    s8, s9, s10 = shape[8], shape[9], shape[10]
    while j < n:
        ints[0, j], ints[1, j], ints[2, j], ints[3, j], ints[4, j] = im, hw_i, f_i, g, code + j
        floats[0, j], floats[1, j], floats[3, j] = b, prompt[a8], context[a10]
        floats[2, j] = 0.0 if enc else gen[a9]
        floats[4, j], floats[5, j], floats[6, j] = t, dp, ep
        first[j] = reason
        flags[0, j], flags[1, j], flags[2, j] = link, fmt, run
        j += 1
        a10 += 1
        if a10 == s10:
            a10 = 0
            a9 += 1
            if a9 == s9:
                a9 = 0
                a8 += 1
                if a8 == s8:
                    a8 = 0
                    break
    at[8], at[9], at[10] = a8, a9, a10
    return j


@jit
def outcome(first, link_ok, fmt_ok, valid, fits):
    """sweeps/grid.evaluate_chunk's closing columns per configuration j: ok = valid & fits, reason = first, else 2
    without a link, 4 without the format, 3 where it does not fit, 0 (its np.where chain, as int8)."""
    N = first.shape[0]
    ok, reason = np.empty(N, dtype=np.bool_), np.empty(N, dtype=np.int8)
    for j in range(N):
        ok[j] = valid[j] and fits[j]
        r = first[j]
        if r == 0:
            r = 2 if not link_ok[j] else 4 if not fmt_ok[j] else 3 if not fits[j] else 0
        reason[j] = r
    return ok, reason


@jit
def code_groups(codes):
    """distinct.distinct_codes by its table over the codes' range (a range under four times the rows: else `wide`
    True and empty arrays): (wide, first, inverse), each row's group the number of present codes below its own."""
    n = codes.shape[0]
    lo, hi = codes[0], codes[0]
    for j in range(n):
        lo, hi = min(lo, codes[j]), max(hi, codes[j])
    if hi - lo >= 4 * n:
        return True, np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    rank = np.zeros(hi - lo + 1, dtype=np.intp)
    for j in range(n):
        rank[codes[j] - lo] = 1
    count = 0
    for k in range(rank.shape[0]):
        present = rank[k]
        rank[k] = count
        count += present
    inverse = np.empty(n, dtype=np.intp)
    first = np.empty(count, dtype=np.intp)
    for j in range(n):
        g = rank[codes[j] - lo]
        inverse[j] = g
        first[g] = j  # one row of each group (the last, as numpy's repeated targets)
    return False, first, inverse


_MIX = 0x9E3779B97F4A7C15  # distinct.py's multiplier (2^64 / golden ratio)


@jit
def run_heads(ints, floats, n):
    """(the rows where a run of equal consecutive rows of the key columns starts, 0 first; how many)."""
    new = np.zeros(n, dtype=np.bool_)
    new[:1] = True
    for c in ints:  # column by column: each a loop the compiler vectorizes
        for j in range(1, n):
            new[j] |= c[j] != c[j - 1]
    for c in floats:
        for j in range(1, n):
            new[j] |= c[j] != c[j - 1]
    heads = np.empty(n, dtype=np.int64)
    nh = 0
    for j in range(n):
        if new[j]:
            heads[nh] = j
            nh += 1
    return heads, nh


@jit
def distinct_rows(ints, floats, keep, starts):
    """distinct.distinct's (first, inverse) of key columns, integer (`ints`) and float (`floats`), of one length:
    runs of equal consecutive rows found column by column (or, where `starts` is not empty, rows given where every
    run starts: rising, 0 first, each row where a key changes among them), the runs' first rows grouped in a hash
    table (a 64-bit hash of each key's bits, +0.0 for -0.0; a slot taken by other keys, the next), each group's first
    row the earliest of its rows, groups numbered as they first appear. Keys compare with ==, so a NaN key is a group
    of its own row, as numpy's. The same groups as distinct's, in another order. With a mask `keep` (empty: every
    row), the runs without a row kept are not searched: their rows form one group more, its first row theirs that
    comes first (rows whose results are not read, each given the inputs of a row of that group)."""
    n = ints[0].shape[0]
    masked = keep.shape[0] > 0
    spare = -1  # the group of the runs without a row kept
    if starts.shape[0] > 0:
        heads, nh = starts, starts.shape[0]
    else:
        heads, nh = run_heads(ints, floats, n)
    size = 1
    while size < 2 * nh:
        size *= 2
    table = np.full(size, -1, dtype=np.int64)
    first = np.empty(nh, dtype=np.intp)
    group = np.empty(nh, dtype=np.intp)
    bits = np.empty(1, dtype=np.float64)
    word = bits.view(np.uint64)
    mix, shift, mask = np.uint64(_MIX), np.uint64(31), np.uint64(size - 1)
    count = 0
    for r in range(nh):
        j = heads[r]
        if masked:
            stop = heads[r + 1] if r + 1 < nh else n
            kept = False
            for i in range(j, stop):
                kept |= keep[i]
            if not kept:
                if spare < 0:
                    spare = count
                    first[count] = j
                    count += 1
                group[r] = spare
                continue
        h = np.uint64(0)
        for c in ints:
            h = h * mix + np.uint64(c[j])
            h ^= h >> shift
        for c in floats:
            bits[0] = c[j] + 0.0
            h = h * mix + word[0]
            h ^= h >> shift
        slot = h & mask
        while True:
            g = table[slot]
            if g < 0:
                table[slot] = count
                first[count] = j
                group[r] = count
                count += 1
                break
            i = first[g]
            same = True
            for c in ints:
                if c[i] != c[j]:
                    same = False
            for c in floats:
                if not c[i] == c[j]:
                    same = False
            if same:
                group[r] = g
                break
            slot = (slot + np.uint64(1)) & mask
    inverse = np.empty(n, dtype=np.intp)
    for r in range(nh):
        stop = heads[r + 1] if r + 1 < nh else n
        for j in range(heads[r], stop):
            inverse[j] = group[r]
    return first[:count], inverse
