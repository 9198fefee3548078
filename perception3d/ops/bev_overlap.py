"""Whether rotated boxes overlap in bird's eye view (separating-axis test, numba)."""
from __future__ import annotations

import numba
import numpy as np

from ..structures.boxes import bev_corners, check_boxes


@numba.njit(cache=True)
def _separated(ca, cb):
    """True when an edge normal of rectangle ``ca`` separates it from ``cb`` ((4, 2) corners each)."""
    for k in range(4):
        ex = ca[(k + 1) % 4, 0] - ca[k, 0]
        ey = ca[(k + 1) % 4, 1] - ca[k, 1]
        nx, ny = -ey, ex
        amin, amax, bmin, bmax = np.inf, -np.inf, np.inf, -np.inf
        for j in range(4):
            pa = ca[j, 0] * nx + ca[j, 1] * ny
            pb = cb[j, 0] * nx + cb[j, 1] * ny
            amin, amax = min(amin, pa), max(amax, pa)
            bmin, bmax = min(bmin, pb), max(bmax, pb)
        if amax <= bmin or bmax <= amin:
            return True
    return False


@numba.njit(cache=True)
def _overlap_kernel(ca, cb, out):
    for i in range(ca.shape[0]):
        for j in range(cb.shape[0]):
            out[i, j] = not (_separated(ca[i], cb[j]) or _separated(cb[j], ca[i]))


def boxes_overlap_bev(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """(A, 9), (B, 9) boxes → bool (A, B): their BEV rectangles share a positive area (touching is not overlap)."""
    ca = bev_corners(check_boxes(boxes_a, "boxes_a").astype(np.float64))
    cb = bev_corners(check_boxes(boxes_b, "boxes_b").astype(np.float64))
    out = np.zeros((len(ca), len(cb)), dtype=np.bool_)
    if len(ca) and len(cb):
        _overlap_kernel(ca, cb, out)
    return out
