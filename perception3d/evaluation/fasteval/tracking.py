"""The devkit's TrackingEval (``nuscenes.eval.tracking``, tracking_nips_2019) over arrays: the same tracks, the
same per-frame matching and motmetrics bookkeeping, the same two JSON files.

What the devkit does, and where it is mirrored here:

- ``loaders.create_tracks``: the scenes in the order of the devkit's ``set`` of scene tokens, each scene's
  samples from first to last, the predictions' scores replaced by their track's mean score, the holes in every
  track (ground truth and predictions) filled by ``interpolate_tracks`` → ``_scene_order``, ``_track_means``,
  ``_interpolate``, ``_build_tracks``.
- ``algo.TrackingEvaluation.accumulate_threshold`` with ``mot.MOTAccumulatorCustom`` (motmetrics 1.4.0
  ``MOTAccumulator.update``): per frame the centre distances (sklearn's ``euclidean_distances``, its float
  operations reproduced: -2 X·Y + |X|² + |Y|² with numpy's BLAS rounding per matrix shape, ``_calibrate``), the
  2 m cut, the previous matches kept, the rest assigned by scipy's ``linear_sum_assignment`` (which motmetrics
  picks here: ``motmetrics.lap.default_solver`` is 'scipy', lapsolver and lap not being installed; ``_lsa`` is
  scipy's algorithm step for step on motmetrics' matrix, large constants included, so ties go the same way),
  switches, misses, false positives → ``_accumulate`` (one numba pass per class and score threshold).
- the motmetrics metrics the devkit asks for (``utils.create_motmetrics``: num_frames, num_matches, num_switches,
  num_false_positives, num_misses, num_objects, mostly_tracked, mostly_lost, recall, and the devkit's
  ``metrics.py``: motar, mota_custom, motp_custom, faf, num_fragmentations_custom, tid, lgd) → the per-object
  bookkeeping in ``_accumulate`` and ``_threshold_metrics``.
- ``algo.TrackingEvaluation.compute_thresholds`` / ``accumulate`` and ``evaluate.TrackingEval.evaluate`` step 2
  → ``_class_metric_data``, ``evaluate_tracking``. The devkit's own containers (TrackingMetricData,
  TrackingMetrics, TrackingMetricDataList) hold and serialise the result, so the JSON is theirs.

Numbers: every value equals the devkit's bit for bit when the distance formulas match numpy's products
(``_calibrate`` probes them once per process; ``_EXACT_DISTANCES``), including MOTP, whose sum over the event
table is reproduced in numpy's own pairwise order and in the devkit's scene order. ``eval_time`` is this code's
time.
"""
from __future__ import annotations

import time
import warnings
from typing import Dict, List, Optional, Tuple

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from .boxes import EvalBoxArrays, SampleTable

# Shape classes of the distance matrix: numpy sends X @ Y.T to a different BLAS routine (dot, gemv, gemm) by
# shape, and the routines round x0*y0 + x1*y1 differently (fused multiply-add or not, which product first).
SHAPE_DOT, SHAPE_ROW, SHAPE_COL, SHAPE_GEMM = 0, 1, 2, 3  # 1x1, 1xm, nx1, nxm (n, m >= 2)
_MODES: Optional[np.ndarray] = None  # (4, 2): per shape class, the dot-product and squared-norm formulas
_EXACT_DISTANCES = True


# ------------------------------------------------------------------------------------------------------------
# float kernels
# ------------------------------------------------------------------------------------------------------------
@intrinsic
def _fma(typingctx, a, b, c):
    """Fused multiply-add, round(a * b + c) (LLVM's llvm.fma.f64: the CPU instruction, or libm's fma)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        d = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [d], ir.FunctionType(d, [d, d, d]))
        return builder.call(fn, args)

    return sig, codegen


@numba.njit(cache=True)
def _dot2(a0, a1, b0, b1, mode):
    """a0*b0 + a1*b1 as a BLAS kernel or numpy's einsum rounds it: 0 plain, 1 fma(a1, b1, a0*b0),
    2 fma(a0, b0, a1*b1)."""
    if mode == 1:
        return _fma(a1, b1, a0 * b0)
    if mode == 2:
        return _fma(a0, b0, a1 * b1)
    return a0 * b0 + a1 * b1


@numba.njit(cache=True)
def _euclid(x0, x1, y0, y1, dot_mode, norm_mode):
    """sklearn.metrics.pairwise._euclidean_distances for float64, one entry: -2 * (X @ Y.T) + XX + YY (XX, YY
    by row_norms' einsum), clipped at 0, square root."""
    d = -2.0 * _dot2(x0, x1, y0, y1, dot_mode)
    d = d + _dot2(x0, x1, x0, x1, norm_mode)
    d = d + _dot2(y0, y1, y0, y1, norm_mode)
    if d < 0.0:
        d = 0.0
    return np.sqrt(d)


@numba.njit(cache=True)
def _euclid_matrix(X, Y, dot_mode, norm_mode):
    out = np.empty((X.shape[0], Y.shape[0]))
    for i in range(X.shape[0]):
        for j in range(Y.shape[0]):
            out[i, j] = _euclid(X[i, 0], X[i, 1], Y[j, 0], Y[j, 1], dot_mode, norm_mode)
    return out


@numba.njit(cache=True)
def _dot_matrix(X, Y, mode):
    out = np.empty((X.shape[0], Y.shape[0]))
    for i in range(X.shape[0]):
        for j in range(Y.shape[0]):
            out[i, j] = _dot2(X[i, 0], X[i, 1], Y[j, 0], Y[j, 1], mode)
    return out


def _calibrate() -> np.ndarray:
    """Which formulas reproduce, in each shape class, the two products ``sklearn.metrics.pairwise.
    euclidean_distances`` (what algo.accumulate_threshold calls) rounds through: ``X @ Y.T`` (safe_sparse_dot)
    and ``np.einsum("ij,ij->i", X, X)`` (row_norms), probed once per process on this machine's numpy/BLAS with
    nuScenes-like global coordinates (sklearn's own import, ~0.5 s, is not needed for it; the tests compare
    the whole distance with sklearn's). If none does (another BLAS), distances fall back to the plain formula,
    may differ from the devkit's in the last bits, and a warning says so."""
    global _MODES, _EXACT_DISTANCES
    if _MODES is not None:
        return _MODES
    rng = np.random.default_rng(20190617)
    probes = {SHAPE_DOT: [(1, 1)] * 40, SHAPE_ROW: [(1, 2), (1, 3), (1, 5), (1, 8), (1, 17), (1, 64)],
              SHAPE_COL: [(2, 1), (3, 1), (5, 1), (8, 1), (17, 1), (64, 1)],
              SHAPE_GEMM: [(2, 2), (2, 5), (3, 2), (4, 9), (16, 16), (33, 65), (130, 20)]}
    modes = np.zeros((4, 2), dtype=np.int64)
    exact = True
    for shape_class, shapes in probes.items():
        cases = []
        for n, m in shapes:
            X = rng.uniform(-3000.0, 3000.0, (n, 2))
            Y = np.ascontiguousarray(X[rng.integers(0, n, m)] + rng.normal(0.0, 1.5, (m, 2)))
            cases.append((X, Y, X @ Y.T, np.einsum("ij,ij->i", X, X), np.einsum("ij,ij->i", Y, Y)))
        for dot_mode in (1, 2, 0):
            if all(np.array_equal(_dot_matrix(X, Y, dot_mode), dot) for X, Y, dot, _, _ in cases):
                modes[shape_class, 0] = dot_mode
                break
        else:
            exact = False
        for norm_mode in (0, 1, 2):
            if all(np.array_equal(np.diag(_dot_matrix(A, A, norm_mode)), norms)
                   for X, Y, _, xx, yy in cases for A, norms in ((X, xx), (Y, yy))):
                modes[shape_class, 1] = norm_mode
                break
        else:
            exact = False
    if not exact:
        warnings.warn("fasteval.tracking: no formula reproduces this machine's numpy/BLAS products bit for bit; "
                      "centre distances may differ from the devkit's in the last bits", RuntimeWarning)
    import importlib.util

    # motmetrics.lap._init_standard_solvers takes the first of lapsolver, lap, scipy that is installed
    other = [name for name in ("lapsolver", "lap") if importlib.util.find_spec(name) is not None]
    if other:
        warnings.warn(f"fasteval.tracking: {other[0]} is installed, so motmetrics (the devkit) assigns with it, not "
                      f"with scipy as here: where distances tie, its matches may differ", RuntimeWarning)
    _MODES, _EXACT_DISTANCES = modes, exact
    return modes


@numba.njit(cache=True)
def _pairwise(a, lo, n):
    """numpy's pairwise summation of a[lo:lo+n] (DOUBLE_pairwise_sum: plain below 8 elements, 8 accumulators
    up to 128, halves above)."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    if n <= 128:
        r0 = a[lo]
        r1 = a[lo + 1]
        r2 = a[lo + 2]
        r3 = a[lo + 3]
        r4 = a[lo + 4]
        r5 = a[lo + 5]
        r6 = a[lo + 6]
        r7 = a[lo + 7]
        i = 8
        stop = n - (n % 8)
        while i < stop:
            r0 += a[lo + i]
            r1 += a[lo + i + 1]
            r2 += a[lo + i + 2]
            r3 += a[lo + i + 3]
            r4 += a[lo + i + 4]
            r5 += a[lo + i + 5]
            r6 += a[lo + i + 6]
            r7 += a[lo + i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[lo + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(a, lo, n2) + _pairwise(a, lo + n2, n - n2)


@numba.njit(cache=True)
def _np_sum(a, lo, n):
    """``np.sum`` of a contiguous float64 a[lo:lo+n] (what pandas' Series.sum and np.mean reduce with): 0 plus
    the pairwise sums of consecutive blocks of 8192 (the ufunc reduction's buffer)."""
    acc = 0.0
    i = 0
    while i < n:
        k = min(8192, n - i)
        acc += _pairwise(a, lo + i, k)
        i += k
    return acc


# ------------------------------------------------------------------------------------------------------------
# scipy.optimize.linear_sum_assignment (scipy/optimize/rectangular_lsap/rectangular_lsap.cpp), step for step
# ------------------------------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _lsa(cost, assign):
    """Crouse's shortest augmenting path as scipy implements it (same scan order, same tie rules, same dual
    updates), on a finite (nr, nc) cost matrix. Writes assign[row] = column or -1; returns False if infeasible
    (cannot happen on finite costs)."""
    nr0, nc0 = cost.shape
    for i in range(nr0):
        assign[i] = -1
    if nr0 == 0 or nc0 == 0:
        return True
    transpose = nc0 < nr0
    if transpose:
        C = np.ascontiguousarray(cost.T)
    else:
        C = cost
    nr, nc = C.shape
    u = np.zeros(nr)
    v = np.zeros(nc)
    spc = np.empty(nc)
    path = np.full(nc, -1, dtype=np.int64)
    col4row = np.full(nr, -1, dtype=np.int64)
    row4col = np.full(nc, -1, dtype=np.int64)
    SR = np.zeros(nr, dtype=np.bool_)
    SC = np.zeros(nc, dtype=np.bool_)
    remaining = np.empty(nc, dtype=np.int64)
    for cur_row in range(nr):
        # augmenting_path
        min_val = 0.0
        num_remaining = nc
        for it in range(nc):
            remaining[it] = nc - it - 1  # reverse order: a constant matrix gives the identity
        SR[:] = False
        SC[:] = False
        spc[:] = np.inf
        sink = -1
        i = cur_row
        while sink == -1:
            index = -1
            lowest = np.inf
            SR[i] = True
            for it in range(num_remaining):
                j = remaining[it]
                r = min_val + C[i, j] - u[i] - v[j]
                if r < spc[j]:
                    path[j] = i
                    spc[j] = r
                if spc[j] < lowest or (spc[j] == lowest and row4col[j] == -1):
                    lowest = spc[j]
                    index = it
            min_val = lowest
            if min_val == np.inf:
                return False
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            SC[j] = True
            num_remaining -= 1
            remaining[index] = remaining[num_remaining]
        # update dual variables
        u[cur_row] += min_val
        for i in range(nr):
            if SR[i] and i != cur_row:
                u[i] += min_val - spc[col4row[i]]
        for j in range(nc):
            if SC[j]:
                v[j] -= min_val - spc[j]
        # augment previous solution
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            tmp = col4row[i]
            col4row[i] = j
            j = tmp
            if i == cur_row:
                break
    if transpose:  # scipy returns (col4row[v], v) sorted by row: the same pairs
        for c in range(nr):
            assign[col4row[c]] = c
    else:
        for r_ in range(nr):
            assign[r_] = col4row[r_]
    return True


# ------------------------------------------------------------------------------------------------------------
# loaders.create_tracks
# ------------------------------------------------------------------------------------------------------------
def _scene_order(gt: EvalBoxArrays, samples: SampleTable) -> List[int]:
    """create_tracks' scene order: it collects the scene tokens of the ground truth's samples (in
    ``gt_boxes.sample_tokens`` order) in a ``set`` and iterates it; TrackingEvaluation walks the scenes in that
    order and merges their event tables in it. The same set, built the same way in this process, iterates the
    same way (string hashing is per process), which matters for MOTP's floating-point sum."""
    scene_tokens = set()
    for s in gt.sample_order:
        scene_tokens.add(samples.scene_tokens[samples.scene[s]])
    position = {token: i for i, token in enumerate(samples.scene_tokens)}
    return [position[token] for token in scene_tokens]


@numba.njit(cache=True)
def _track_means(order, key, score, out):
    """create_tracks' track score: each predicted box's score replaced by np.mean of its track's scores, the
    track's boxes in time order (``order``: box rows sorted by (key, frame, list order))."""
    n = order.shape[0]
    vals = np.empty(n)
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and key[order[stop]] == key[order[start]]:
            stop += 1
        for k in range(start, stop):
            vals[k] = score[order[k]]
        mean = _np_sum(vals, start, stop - start) / (stop - start)
        for k in range(start, stop):
            out[order[k]] = mean
        start = stop


@numba.njit(cache=True)
def _interpolate(order, key, frame, first_pos, x, y, score, label, frame_time):
    """loaders.interpolate_tracks: every frame inside a track's span where the track has no box gets one,
    between the track's last box before (left) and first box after (right), ``right_ratio`` = (t_right - t) /
    (t_right - t_left) weighting the *right* box as the devkit computes it (interpolate_tracking_boxes:
    (1 - ratio) * left + ratio * right), the right box's class. ``order``: rows sorted by (key, frame, list
    order). → new boxes' (frame, key, x, y, score, label, first_pos of the track)."""
    n = order.shape[0]
    cap = 16
    o_frame = np.empty(cap, dtype=np.int64)
    o_key = np.empty(cap, dtype=np.int64)
    o_x = np.empty(cap)
    o_y = np.empty(cap)
    o_s = np.empty(cap)
    o_l = np.empty(cap, dtype=np.int64)
    o_p = np.empty(cap, dtype=np.int64)
    m = 0
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and key[order[stop]] == key[order[start]]:
            stop += 1
        right = start
        for f in range(frame[order[start]] + 1, frame[order[stop - 1]]):
            while frame[order[right]] < f:  # bisect: the first box after f, or at f
                right += 1
            if frame[order[right]] == f:
                continue
            ri = order[right]
            li = order[right - 1]
            t_r = frame_time[frame[ri]]
            ratio = float(t_r - frame_time[f]) / float(t_r - frame_time[frame[li]])
            if m == cap:
                cap *= 2
                o_frame = _grow_i(o_frame, cap)
                o_key = _grow_i(o_key, cap)
                o_x = _grow_f(o_x, cap)
                o_y = _grow_f(o_y, cap)
                o_s = _grow_f(o_s, cap)
                o_l = _grow_i(o_l, cap)
                o_p = _grow_i(o_p, cap)
            o_frame[m] = f
            o_key[m] = key[ri]
            o_x[m] = (1.0 - ratio) * x[li] + ratio * x[ri]
            o_y[m] = (1.0 - ratio) * y[li] + ratio * y[ri]
            o_s[m] = (1.0 - ratio) * score[li] + ratio * score[ri]
            o_l[m] = label[ri]
            o_p[m] = first_pos[ri]
            m += 1
        start = stop
    return o_frame[:m], o_key[:m], o_x[:m], o_y[:m], o_s[:m], o_l[:m], o_p[:m]


@numba.njit(cache=True)
def _grow_i(a, cap):
    out = np.empty(cap, dtype=np.int64)
    out[:a.shape[0]] = a
    return out


@numba.njit(cache=True)
def _grow_f(a, cap):
    out = np.empty(cap)
    out[:a.shape[0]] = a
    return out


class _Tracks:
    """One side (ground truth or predictions) after create_tracks, every frame's boxes in the devkit's list
    order (the frame's own boxes, then the interpolated ones in the order their tracks first appeared).
    frame: global frame (the scenes in ``_scene_order``, each from first to last sample); key: the track,
    unique per (scene, tracking id); label, x, y, score (the track's mean for predictions; -1 for ground truth);
    n_keys: number of tracks; track_name: the tracking id's index in the boxes' ``track_ids`` per key."""

    def __init__(self, frame, key, label, x, y, score, n_keys, track_name):
        self.frame, self.key, self.label, self.x, self.y, self.score = frame, key, label, x, y, score
        self.n_keys, self.track_name = n_keys, track_name


def _build_tracks(boxes: EvalBoxArrays, frame_of_sample: np.ndarray, frame_scene: np.ndarray,
                  frame_time: np.ndarray, is_gt: bool) -> _Tracks:
    frame = frame_of_sample[boxes.sample]
    order = np.argsort(frame, kind="stable")  # each frame's boxes in the devkit's list order
    frame = frame[order]
    track = boxes.track[order]
    scene = frame_scene[frame]
    pair = scene * (len(boxes.track_ids) + 1) + track
    uniq, key = np.unique(pair, return_inverse=True)
    key = key.astype(np.int64).ravel()
    track_name = (uniq % (len(boxes.track_ids) + 1)).astype(np.int64)
    x = np.ascontiguousarray(boxes.translation[order, 0])
    y = np.ascontiguousarray(boxes.translation[order, 1])
    label = boxes.label[order].astype(np.int64)
    pos = np.arange(len(order), dtype=np.int64)
    by_track = np.lexsort((pos, key)).astype(np.int64)  # (key, frame, list order): frame is already sorted
    first_pos = np.empty(len(uniq), dtype=np.int64)
    if len(order):
        starts = np.flatnonzero(np.r_[True, key[by_track][1:] != key[by_track][:-1]])
        first_pos[key[by_track[starts]]] = by_track[starts]
    if is_gt:
        score = boxes.score[order].astype(np.float64)
    else:
        score = np.empty(len(order))
        _track_means(by_track, key, boxes.score[order].astype(np.float64), score)
    i_frame, i_key, i_x, i_y, i_s, i_l, i_p = _interpolate(by_track, key, frame, first_pos[key], x, y, score,
                                                           label, frame_time)
    all_frame = np.concatenate([frame, i_frame])
    kind = np.concatenate([np.zeros(len(frame), np.int64), np.ones(len(i_frame), np.int64)])
    rank = np.concatenate([pos, i_p])
    final = np.lexsort((rank, kind, all_frame))
    return _Tracks(all_frame[final], np.concatenate([key, i_key])[final], np.concatenate([label, i_l])[final],
                   np.concatenate([x, i_x])[final], np.concatenate([y, i_y])[final],
                   np.concatenate([score, i_s])[final], len(uniq), track_name)


# ------------------------------------------------------------------------------------------------------------
# TrackingEvaluation.accumulate_threshold + MOTAccumulator.update + the motmetrics metrics, per class
# ------------------------------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _accumulate(n_frames, gptr, g_oid, g_x, g_y, pptr, p_hid, p_x, p_y, p_s, n_obj, n_hyp, threshold, cut,
                dist_th, modes):
    """One accumulate_threshold pass over every frame (scenes in order) of one class: predictions scored below
    ``threshold`` dropped (when ``cut``), frames with neither ground truth nor prediction skipped (no frame id),
    the rest through MOTAccumulator.update:

    0. distances: euclidean_distances of the centres (the rounding of this shape class: ``modes``), NaN from
       ``dist_th`` on;
    1. each object (in list order) keeps the hypothesis it was last paired with (``m``), if that hypothesis is
       here (its first unclaimed box) and within reach → MATCH;
    2. the rest: linear_sum_assignment over the matrix with the claimed rows and columns NaN, NaN turned into
       motmetrics.lap.add_expensive_edges' large constant (all zeros if nothing is left); each assigned finite
       pair (rows ascending) → SWITCH if the object was paired with another hypothesis before, else MATCH;
    3. unassigned objects → MISS; 4. unassigned hypotheses → FP.

    The noraw event table (MATCH, SWITCH, MISS, FP; D NaN→0 as pandas' sum fills it) is kept in order for
    motp's sum. Per object (obj_frequencies' rows): events, non-miss events (track_ratios), first event and
    first non-miss (tid), the longest run of frames without a non-miss inside its span (lgd), the miss runs
    between non-misses (num_fragmentations_custom).

    → stats int64 [frames, matches, switches, fps, misses, objects, mt, ml, frag, tid_matched, lgd_matched],
      floats [D sum, tid sum, lgd sum], the scores of the MATCHed boxes (without cut: compute_thresholds' input).
    """
    m = np.full(n_obj, -1, dtype=np.int64)  # MOTAccumulator.m: object → hypothesis of its last pairing
    freq = np.zeros(n_obj, dtype=np.int64)
    tracked = np.zeros(n_obj, dtype=np.int64)
    first_f = np.full(n_obj, -1, dtype=np.int64)
    last_f = np.full(n_obj, -1, dtype=np.int64)
    first_nm = np.full(n_obj, -1, dtype=np.int64)
    miss_since_nm = np.zeros(n_obj, dtype=np.bool_)
    frag = np.zeros(n_obj, dtype=np.int64)
    cur_gap = np.zeros(n_obj, dtype=np.int64)
    max_gap = np.zeros(n_obj, dtype=np.int64)
    match_stamp = np.full(n_hyp, -1, dtype=np.int64)

    n_g = g_oid.shape[0]
    n_p = p_hid.shape[0]
    d_events = np.zeros(n_g + n_p)
    n_events = 0
    scores = np.empty(n_p)
    n_scores = 0
    max_o = 0
    max_h = 0
    for f in range(n_frames):
        max_o = max(max_o, gptr[f + 1] - gptr[f])
        max_h = max(max_h, pptr[f + 1] - pptr[f])
    hyp = np.empty(max_h, dtype=np.int64)
    dist = np.empty(max_o * max_h)
    omask = np.zeros(max_o, dtype=np.bool_)
    hmask = np.zeros(max_h, dtype=np.bool_)
    assign = np.empty(max_o, dtype=np.int64)

    frames = 0
    matches = 0
    switches = 0
    fps = 0
    misses = 0
    for f in range(n_frames):
        g0 = gptr[f]
        no = gptr[f + 1] - g0
        nh = 0
        for p in range(pptr[f], pptr[f + 1]):
            if not cut or p_s[p] >= threshold:
                hyp[nh] = p
                nh += 1
        if no == 0 and nh == 0:
            continue
        fc = frames  # the frame id
        frames += 1
        for i in range(no):
            omask[i] = False
        for j in range(nh):
            hmask[j] = False
        if no > 0 and nh > 0:
            if no == 1 and nh == 1:
                sc = 0
            elif no == 1:
                sc = 1
            elif nh == 1:
                sc = 2
            else:
                sc = 3
            dm = modes[sc, 0]
            nm = modes[sc, 1]
            for i in range(no):
                for j in range(nh):
                    p = hyp[j]
                    d = _euclid(g_x[g0 + i], g_y[g0 + i], p_x[p], p_y[p], dm, nm)
                    dist[i * nh + j] = d if d < dist_th else np.nan
            # 1. re-establish previous pairings
            for i in range(no):
                hprev = m[g_oid[g0 + i]]
                if hprev < 0:
                    continue
                for j in range(nh):
                    if not hmask[j] and p_hid[hyp[j]] == hprev:
                        if np.isfinite(dist[i * nh + j]):
                            omask[i] = True
                            hmask[j] = True
                            o = g_oid[g0 + i]
                            _event(o, fc, True, freq, tracked, first_f, last_f, first_nm, miss_since_nm, frag,
                                   cur_gap, max_gap)
                            d_events[n_events] = dist[i * nh + j]
                            n_events += 1
                            matches += 1
                            match_stamp[hprev] = fc
                        break
            # 2. the rest by linear_sum_assignment
            n_valid = 0
            c_max = 0.0
            for i in range(no):
                for j in range(nh):
                    if omask[i] or hmask[j]:
                        continue
                    d = dist[i * nh + j]
                    if np.isfinite(d):
                        n_valid += 1
                        if abs(d) > c_max:
                            c_max = abs(d)
            if n_valid > 0:
                cost = np.empty((no, nh))
                if n_valid == no * nh:
                    for i in range(no):
                        for j in range(nh):
                            cost[i, j] = dist[i * nh + j]
                else:
                    large = 2 * min(no, nh) * (c_max + 1.0) + 1.0
                    for i in range(no):
                        for j in range(nh):
                            d = dist[i * nh + j]
                            cost[i, j] = d if (not omask[i] and not hmask[j] and np.isfinite(d)) else large
                _lsa(cost, assign[:no])
                for i in range(no):
                    j = assign[i]
                    if j < 0 or omask[i] or hmask[j]:
                        continue
                    d = dist[i * nh + j]
                    if not np.isfinite(d):
                        continue
                    o = g_oid[g0 + i]
                    h = p_hid[hyp[j]]
                    if m[o] >= 0 and m[o] != h:
                        switches += 1
                    else:
                        matches += 1
                        match_stamp[h] = fc
                    _event(o, fc, True, freq, tracked, first_f, last_f, first_nm, miss_since_nm, frag, cur_gap,
                           max_gap)
                    d_events[n_events] = d
                    n_events += 1
                    omask[i] = True
                    hmask[j] = True
                    m[o] = h
        # 3. misses, 4. false positives
        for i in range(no):
            if not omask[i]:
                _event(g_oid[g0 + i], fc, False, freq, tracked, first_f, last_f, first_nm, miss_since_nm, frag,
                       cur_gap, max_gap)
                n_events += 1  # D = NaN, summed as 0
                misses += 1
        for j in range(nh):
            if not hmask[j]:
                n_events += 1
                fps += 1
        if not cut:  # compute_thresholds: the scores of the boxes whose id has a MATCH event in this frame
            for j in range(nh):
                if match_stamp[p_hid[hyp[j]]] == fc:
                    scores[n_scores] = p_s[hyp[j]]
                    n_scores += 1

    objects = 0
    mt = 0
    ml = 0
    frags = 0
    tid_matched = 0
    lgd_matched = 0
    tid_sum = 0.0
    lgd_sum = 0.0
    for o in range(n_obj):
        if freq[o] == 0:
            continue
        objects += freq[o]
        ratio = tracked[o] / freq[o]
        if ratio >= 0.8:
            mt += 1
        if ratio < 0.2:
            ml += 1
        frags += frag[o]
        if first_nm[o] >= 0:
            tid_matched += 1
            lgd_matched += 1
            tid_sum += (first_nm[o] - first_f[o]) * 0.5
            lgd_sum += max(max_gap[o], cur_gap[o]) * 0.5
    stats = np.array([frames, matches, switches, fps, misses, objects, mt, ml, frags, tid_matched, lgd_matched],
                     dtype=np.int64)
    sums = np.array([_np_sum(d_events, 0, n_events), tid_sum, lgd_sum])
    return stats, sums, scores[:n_scores]


@numba.njit(cache=True)
def _event(o, fc, notmiss, freq, tracked, first_f, last_f, first_nm, miss_since_nm, frag, cur_gap, max_gap):
    """One noraw event of object ``o`` at frame id ``fc`` into its per-object bookkeeping."""
    if freq[o] == 0:
        first_f[o] = fc
        absent = 0
    else:
        absent = fc - last_f[o] - 1  # frames of its span without an event of it: not matched (lgd)
    freq[o] += 1
    last_f[o] = fc
    if notmiss:
        tracked[o] += 1
        if first_nm[o] < 0:
            first_nm[o] = fc
        elif miss_since_nm[o]:
            frag[o] += 1  # a MISS run between two non-misses: one NOT MISS → MISS switch
        miss_since_nm[o] = False
        gap = cur_gap[o] + absent
        if gap > max_gap[o]:
            max_gap[o] = gap
        cur_gap[o] = 0
    else:
        cur_gap[o] += absent + 1
        if first_nm[o] >= 0:
            miss_since_nm[o] = True


def _threshold_metrics(stats: np.ndarray, sums: np.ndarray) -> Dict[str, object]:
    """mh.compute(acc, metrics=MOT_METRIC_MAP.keys()) of one threshold: the motmetrics and devkit metric
    functions on the pass's counts, in their float operations and types (ints for the counts)."""
    frames, matches, switches, fps, misses, objects, mt, ml, frag, tid_matched, lgd_matched = \
        (np.int64(v) for v in stats)
    d_sum, tid_sum, lgd_sum = (float(v) for v in sums)
    detections = matches + switches
    recall = matches / objects  # metrics.motar
    nominator = (misses + switches + fps) - (1 - recall) * objects
    denominator = recall * objects
    motar = np.nan if denominator == 0 else np.maximum(0, 1 - 1.0 * nominator / denominator)
    return {
        "num_frames": frames, "num_objects": objects, "num_predictions": matches + fps + switches,
        "num_matches": matches, "motar": motar,
        "mota_custom": np.maximum(0, 1. - (misses + switches + fps) / objects),
        "motp_custom": np.nan if detections == 0 else np.float64(d_sum) / detections,
        "faf": fps / frames * 100, "mostly_tracked": mt, "mostly_lost": ml, "num_false_positives": fps,
        "num_misses": misses, "num_switches": switches, "num_fragmentations_custom": frag,
        "recall": np.true_divide(detections, objects),
        "tid": np.nan if tid_matched == 0 else tid_sum / int(tid_matched),
        "lgd": np.nan if lgd_matched == 0 else lgd_sum / int(lgd_matched),
    }


class _ClassFrames:
    """One class's boxes per frame (CSR over the global frames), ground truth and predictions."""

    def __init__(self, gt: _Tracks, pred: _Tracks, label_gt: int, label_pred: int, n_frames: int):
        g = gt.label == label_gt
        p = pred.label == label_pred
        self.gptr = np.searchsorted(gt.frame[g], np.arange(n_frames + 1)).astype(np.int64)
        self.pptr = np.searchsorted(pred.frame[p], np.arange(n_frames + 1)).astype(np.int64)
        self.g_oid, self.g_x, self.g_y = gt.key[g], gt.x[g], gt.y[g]
        self.p_hid, self.p_x, self.p_y, self.p_s = pred.key[p], pred.x[p], pred.y[p], pred.score[p]
        self.g_track_name = gt.track_name[self.g_oid]
        self.n_frames, self.n_obj, self.n_hyp = n_frames, gt.n_keys, pred.n_keys

    def run(self, threshold: Optional[float], dist_th: float, modes: np.ndarray):
        cut = threshold is not None
        return _accumulate(self.n_frames, self.gptr, self.g_oid, self.g_x, self.g_y, self.pptr, self.p_hid,
                           self.p_x, self.p_y, self.p_s, self.n_obj, self.n_hyp,
                           float(threshold) if cut else 0.0, cut, float(dist_th), modes)


_INT_METRICS = ("gt", "tp", "mt", "ml", "fp", "fn", "ids", "frag")


def _class_metric_data(frames: _ClassFrames, cfg, modes: np.ndarray):
    """TrackingEvaluation.accumulate (+ compute_thresholds) of one class → its TrackingMetricData."""
    from nuscenes.eval.tracking.constants import MOT_METRIC_MAP
    from nuscenes.eval.tracking.data_classes import TrackingMetricData

    nelem = TrackingMetricData.nelem
    md = TrackingMetricData()
    gt_box_count = len(frames.g_oid)
    if gt_box_count == 0:
        return md  # a class without ground truth: every value NaN
    gt_track_count = len(np.unique(frames.g_track_name))  # the set of tracking ids (strings), over all scenes

    # compute_thresholds
    _, _, scores = frames.run(None, cfg.dist_th_tp, modes)
    if len(scores) == 0:
        thresholds, recalls = [np.nan] * nelem, [np.nan] * nelem
    else:
        scores = np.sort(scores)[::-1]
        rec = np.arange(1, len(scores) + 1) / gt_box_count
        if not len(scores) / gt_box_count <= 1:
            raise ValueError(f"more matched predictions ({len(scores)}) than ground-truth boxes ({gt_box_count}): "
                             f"a tracking id appears twice in a sample (the devkit's compute_thresholds asserts)")
        rec_interp = np.linspace(cfg.min_recall, 1, nelem).round(12)
        thr = np.interp(rec_interp, rec, scores, right=0)
        thr[rec_interp > np.max(rec)] = np.nan
        thresholds, recalls = thr.tolist()[::-1], rec_interp.tolist()[::-1]
    md.confidence = thresholds
    md.recall_hypo = recalls

    rows = []
    for t, threshold in enumerate(thresholds):
        if np.isnan(threshold) or threshold in thresholds[:t]:
            continue
        rows.append(_threshold_metrics(*frames.run(threshold, cfg.dist_th_tp, modes)[:2]))

    valid = [t for t in thresholds if not np.isnan(t)]
    n_unachieved = len(thresholds) - len(valid)
    rep_counts = [int(np.sum(np.asarray(thresholds) == t)) for t in np.unique(valid)]
    for mot_name, metric_name in MOT_METRIC_MAP.items():
        if metric_name == "":
            continue
        if not rows:
            worst = cfg.metric_worst[metric_name]
            if worst == -1:
                if metric_name == "ml":
                    worst = gt_track_count
                elif metric_name in ("gt", "fn"):
                    worst = gt_box_count
                elif metric_name in ("fp", "ids", "frag"):
                    worst = np.nan
                else:
                    raise NotImplementedError(metric_name)
            all_values = [worst] * nelem
        else:
            dtype = np.int64 if metric_name in _INT_METRICS else np.float64
            values = np.repeat(np.array([row[mot_name] for row in rows], dtype=dtype), rep_counts)
            all_values = [np.nan] * n_unachieved + list(values)
        md.set_metric(metric_name, all_values)
    return md


# ------------------------------------------------------------------------------------------------------------
# the public face
# ------------------------------------------------------------------------------------------------------------
def _check(boxes: EvalBoxArrays, samples: SampleTable, what: str, names: Tuple[str, ...]) -> None:
    n = len(boxes.sample)
    for field, width in (("translation", 3), ("label", None), ("score", None), ("track", None)):
        value = np.asarray(getattr(boxes, field))
        if value.shape[:1] != (n,) or (width and value.shape[1:] != (width,)):
            expected = (n, width) if width else (n,)
            raise ValueError(f"{what}: {field} has shape {value.shape}, expected {expected}")
    if n and (boxes.sample.min() < 0 or boxes.sample.max() >= len(samples.tokens)):
        raise ValueError(f"{what}: sample index out of the sample table's {len(samples.tokens)} samples")
    if n and (boxes.label.min() < 0 or boxes.label.max() >= len(boxes.names)):
        raise ValueError(f"{what}: label out of range of its {len(boxes.names)} names")
    if n and (boxes.track.min() < 0 or boxes.track.max() >= len(boxes.track_ids)):
        raise ValueError(f"{what}: every tracking box needs a tracking id (track index in "
                         f"0..{len(boxes.track_ids) - 1}), got {boxes.track.min()}..{boxes.track.max()}")
    if not np.isfinite(boxes.translation[:, :2]).all():
        raise ValueError(f"{what}: translation may not be NaN or infinite")
    if not np.isfinite(boxes.score).all():
        raise ValueError(f"{what}: tracking_score may not be NaN or infinite (the devkit's TrackingBox asserts)")
    unknown = sorted(set(boxes.names[i] for i in np.unique(boxes.label)) - set(names))
    if unknown:
        raise ValueError(f"{what}: unknown tracking_name {unknown[0]!r} (the config's: {', '.join(names)})")


def evaluate_tracking(gt: EvalBoxArrays, pred: EvalBoxArrays, samples: SampleTable, cfg,
                      meta: Optional[dict] = None) -> Tuple[Dict, Dict]:
    """TrackingEval from its filtered boxes on: create_tracks, evaluate() and the two dicts main() writes →
    (metrics_summary, metrics_details). ``gt`` and ``pred``: the split's filtered ground truth and submission
    (boxes.filter_boxes), ``cfg``: the devkit's TrackingConfig (config_factory("tracking_nips_2019")); ``meta``:
    the submission's meta, copied into the summary as main() does. ``eval_time`` is this function's time."""
    from nuscenes.eval.tracking.constants import AVG_METRIC_MAP, MOT_METRIC_MAP
    from nuscenes.eval.tracking.data_classes import TrackingMetricData, TrackingMetricDataList, TrackingMetrics

    start = time.time()
    if cfg.dist_fcn != "center_distance":  # TrackingConfig.dist_fcn_callable + algo's assertion
        raise ValueError(f"Error: Unknown distance function {cfg.dist_fcn}! (the devkit's tracking evaluation is "
                         f"hard-coded to center_distance)")
    names = tuple(cfg.tracking_names)
    _check(gt, samples, "ground truth", names)
    _check(pred, samples, "predictions", names)
    if set(np.asarray(gt.sample_order).tolist()) != set(np.asarray(pred.sample_order).tolist()):
        raise ValueError("Samples in split don't match samples in predicted tracks.")
    if TrackingMetricData.nelem != cfg.num_thresholds:
        TrackingMetricData.set_nelem(cfg.num_thresholds)
    modes = _calibrate()

    # create_tracks: global frames, scene by scene in the devkit's order
    chains = [np.asarray(samples.scene_samples[s], dtype=np.int64) for s in _scene_order(gt, samples)]
    frame_sample = np.concatenate(chains) if chains else np.zeros(0, np.int64)
    frame_scene = np.repeat(np.arange(len(chains)), [len(c) for c in chains]).astype(np.int64)
    frame_time = np.asarray(samples.timestamp, dtype=np.int64)[frame_sample]
    for chain in chains:
        t = np.asarray(samples.timestamp)[chain]
        if np.any(np.diff(t) <= 0):
            raise ValueError("a scene's sample timestamps do not increase from its first to its last sample (the "
                             "devkit's create_tracks keys frames by timestamp and assumes they do)")
    frame_of_sample = np.full(len(samples.tokens), -1, dtype=np.int64)
    frame_of_sample[frame_sample] = np.arange(len(frame_sample))
    for boxes, what in ((gt, "ground truth"), (pred, "predictions")):
        if len(boxes.sample) and (frame_of_sample[boxes.sample] < 0).any():
            raise ValueError(f"{what}: boxes in samples outside the split's scenes")
    tracks_gt = _build_tracks(gt, frame_of_sample, frame_scene, frame_time, is_gt=True)
    tracks_pred = _build_tracks(pred, frame_of_sample, frame_scene, frame_time, is_gt=False)

    # evaluate(), step 1: accumulate every class
    md_list = TrackingMetricDataList()
    for class_name in cfg.class_names:
        label_gt = gt.names.index(class_name) if class_name in gt.names else -1
        label_pred = pred.names.index(class_name) if class_name in pred.names else -1
        frames = _ClassFrames(tracks_gt, tracks_pred, label_gt, label_pred, len(frame_sample))
        md_list.set(class_name, _class_metric_data(frames, cfg, modes))

    # step 2: the traditional metrics at the best MOTA, AMOTA and AMOTP
    metrics = TrackingMetrics(cfg)
    for class_name in cfg.class_names:
        md = md_list[class_name]
        best = None if np.all(np.isnan(md.mota)) else np.nanargmax(md.mota)
        if best is not None:
            for metric_name in MOT_METRIC_MAP.values():
                if metric_name:
                    metrics.add_label_metric(metric_name, class_name, md.get_metric(metric_name)[best])
        for metric_name, per_threshold in AVG_METRIC_MAP.items():
            values = np.array(md.get_metric(per_threshold))
            if np.all(np.isnan(values)):
                value = np.nan
            else:
                values[np.isnan(values)] = cfg.metric_worst[metric_name]
                value = float(np.nanmean(values))
            metrics.add_label_metric(metric_name, class_name, value)
    metrics.add_runtime(time.time() - start)
    summary = metrics.serialize()
    if meta is not None:
        summary["meta"] = meta.copy()
    return summary, md_list.serialize()


def print_tracking_summary(summary: Dict) -> None:
    """What TrackingEval.main prints (the devkit's print_final_metrics on the summary)."""
    from nuscenes.eval.tracking.data_classes import TrackingMetrics
    from nuscenes.eval.tracking.utils import print_final_metrics

    print_final_metrics(TrackingMetrics.deserialize(summary))
