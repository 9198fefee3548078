"""Costs between detections and tracks, and the assignments that pair them. A cost matrix is (N detections,
T tracks) with inf on forbidden pairs; an assignment is two int64 arrays (detection rows, track columns), as scipy's
linear_sum_assignment returns them."""
from __future__ import annotations

from typing import Sequence, Tuple

import numba
import numpy as np
from scipy.optimize import linear_sum_assignment


@numba.njit(cache=True)
def _gated_distances_kernel(det_xy, det_class, track_xy, track_class, gate, margin, out):
    out[:] = np.inf
    # tracks bucketed by class (a counting sort), so each detection visits only the tracks of its class
    n_classes = gate.shape[0]
    start = np.zeros(n_classes + 1, np.int64)
    for t in range(track_class.shape[0]):
        start[track_class[t] + 1] += 1
    for c in range(n_classes):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    bucket = np.empty(track_class.shape[0], np.int64)
    for t in range(track_class.shape[0]):
        bucket[fill[track_class[t]]] = t
        fill[track_class[t]] += 1
    for d in range(det_xy.shape[0]):
        c = det_class[d]
        limit = gate[c]
        for i in range(start[c], start[c + 1]):
            t = bucket[i]
            dist = np.sqrt((det_xy[d, 0] - track_xy[t, 0]) ** 2 + (det_xy[d, 1] - track_xy[t, 1]) ** 2)
            if dist <= limit + margin[t]:
                out[d, t] = dist


def gated_distances(det_xy: np.ndarray, det_class: np.ndarray, track_xy: np.ndarray, track_class: np.ndarray,
                    gate: np.ndarray, margin: np.ndarray = None) -> np.ndarray:
    """Centre distances (N, T) (m) between detections ``det_xy`` (N, 2) and tracks ``track_xy`` (T, 2); inf where
    the class indices (0 ≤ class < len(gate)) differ or the distance exceeds ``gate[class]`` (m) plus the track's
    ``margin`` (T,) m (default 0)."""
    out = np.empty((len(det_xy), len(track_xy)))
    if out.size:
        _gated_distances_kernel(np.asarray(det_xy, np.float64), np.asarray(det_class, np.int64),
                                np.asarray(track_xy, np.float64), np.asarray(track_class, np.int64),
                                np.asarray(gate, np.float64),
                                np.zeros(len(track_xy)) if margin is None else np.asarray(margin, np.float64), out)
    return out


@numba.njit(cache=True)
def _greedy_kernel(cost, order, rows, cols):
    taken = np.zeros(cost.shape[1], dtype=np.bool_)
    n = 0
    for d in order:
        best, best_cost = -1, np.inf
        for t in range(cost.shape[1]):
            if cost[d, t] < best_cost and not taken[t]:
                best, best_cost = t, cost[d, t]
        if best >= 0:
            taken[best] = True
            rows[n], cols[n] = d, best
            n += 1
    return n


def greedy_match(cost: np.ndarray, order: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Detections in ``order`` (e.g. by falling score) each take their nearest still free track of finite cost
    → (detections, tracks), paired in that order."""
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    order = np.asarray(order, dtype=np.int64)
    size = min(len(order), cost.shape[1])
    rows, cols = np.empty(size, np.int64), np.empty(size, np.int64)
    n = _greedy_kernel(cost, order, rows, cols) if size else 0
    return rows[:n], cols[:n]


def hungarian_match(cost: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The pairs of finite cost that minimise the total cost of a maximum matching (scipy's
    linear_sum_assignment; forbidden pairs carry a cost larger than any finite total) → (detections, tracks)."""
    cost = np.asarray(cost, dtype=np.float64)
    finite = np.isfinite(cost)
    if not finite.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    big = cost[finite].sum() + 1.0
    rows, cols = linear_sum_assignment(np.where(finite, cost, big * (1 + cost.shape[0] + cost.shape[1])))
    ok = finite[rows, cols]
    return rows[ok].astype(np.int64), cols[ok].astype(np.int64)
