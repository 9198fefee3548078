"""Which points lie inside which rotated 3D boxes (CPU twin in numba).

Boxes follow our convention (x, y, z gravity centre, dx, dy, dz, yaw, ...); a
point on a face counts as inside, as in the devkit's ``points_in_box``.
"""
from __future__ import annotations

import numba
import numpy as np
import torch

from . import _ext
from ._checks import boxes_tensor, float_tensor, same_device
from ..structures.boxes import check_boxes


def _check_points(points: np.ndarray) -> np.ndarray:
    arr = np.asarray(points)
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise ValueError(f"points must have shape (N, C>=3), got {arr.shape}")
    return arr


@numba.njit(cache=True)
def _box_frames(boxes):
    n = boxes.shape[0]
    frames = np.empty((n, 9), dtype=np.float64)  # cx, cy, cz, cos, sin, hx, hy, hz, r^2
    for b in range(n):
        frames[b, 0] = boxes[b, 0]
        frames[b, 1] = boxes[b, 1]
        frames[b, 2] = boxes[b, 2]
        frames[b, 3] = np.cos(boxes[b, 6])
        frames[b, 4] = np.sin(boxes[b, 6])
        frames[b, 5] = boxes[b, 3] / 2
        frames[b, 6] = boxes[b, 4] / 2
        frames[b, 7] = boxes[b, 5] / 2
        frames[b, 8] = frames[b, 5] ** 2 + frames[b, 6] ** 2
    return frames


@numba.njit(cache=True)
def _inside(points, i, f, b):
    dx = points[i, 0] - f[b, 0]
    dy = points[i, 1] - f[b, 1]
    if dx * dx + dy * dy > f[b, 8]:
        return False
    if abs(points[i, 2] - f[b, 2]) > f[b, 7]:
        return False
    lx = f[b, 3] * dx + f[b, 4] * dy
    ly = -f[b, 4] * dx + f[b, 3] * dy
    return abs(lx) <= f[b, 5] and abs(ly) <= f[b, 6]


@numba.njit(cache=True)
def _candidates(xs, f, b):
    """Range [lo, hi) of the x-sorted points within the box's bounding circle along x."""
    r = np.sqrt(f[b, 8])
    return np.searchsorted(xs, f[b, 0] - r, side="left"), np.searchsorted(xs, f[b, 0] + r, side="right")


@numba.njit(cache=True)
def _mask_kernel(points, boxes, mask_t):
    f = _box_frames(boxes)
    order = np.argsort(points[:, 0])
    xs = points[order, 0]
    for b in range(boxes.shape[0]):
        lo, hi = _candidates(xs, f, b)
        for k in range(lo, hi):
            i = order[k]
            mask_t[b, i] = _inside(points, i, f, b)


@numba.njit(cache=True)
def _index_kernel(points, boxes, index):
    f = _box_frames(boxes)
    order = np.argsort(points[:, 0])
    xs = points[order, 0]
    for b in range(boxes.shape[0]):
        lo, hi = _candidates(xs, f, b)
        for k in range(lo, hi):
            i = order[k]
            if (index[i] < 0 or index[i] > b) and _inside(points, i, f, b):
                index[i] = b


def _cuda(points, boxes, op):
    """Runs the CUDA twin when the tensors are on a GPU; None for numpy arrays and CPU tensors."""
    if not (isinstance(points, torch.Tensor) or isinstance(boxes, torch.Tensor)):
        return None
    points, boxes = float_tensor(points, "points", 2, min_cols=3), boxes_tensor(boxes)
    if same_device(points=points, boxes=boxes).type != "cuda":
        return None
    return getattr(_ext.load(), op)(points[:, :3].float().contiguous(), boxes.contiguous())


def _cpu_tensor(fn, points, boxes):
    """The numpy path for CPU tensors, its result as a tensor."""
    if isinstance(points, torch.Tensor) or isinstance(boxes, torch.Tensor):
        as_np = [x.detach().numpy() if isinstance(x, torch.Tensor) else x for x in (points, boxes)]
        return torch.from_numpy(fn(*as_np))
    return None


def points_in_boxes_mask(points, boxes):
    """(N, C>=3) points, (B, 9) boxes in the same frame → bool (N, B): point n inside box b.

    numpy in, numpy out (column-major, so ``mask[:, b]`` is contiguous); a tensor runs on its device.
    """
    out = _cuda(points, boxes, "points_in_boxes_mask")
    if out is None:
        out = _cpu_tensor(points_in_boxes_mask, points, boxes)
    if out is not None:
        return out
    points = _check_points(points)
    boxes = check_boxes(boxes)
    mask_t = np.zeros((len(boxes), len(points)), dtype=np.bool_)
    if len(points) and len(boxes):
        _mask_kernel(np.ascontiguousarray(points[:, :3]), np.ascontiguousarray(boxes, dtype=np.float64), mask_t)
    return mask_t.T


def points_in_boxes(points, boxes):
    """(N, C>=3) points, (B, 9) boxes → int64 (N,) index of the first box holding each point, -1 if none.

    numpy in, numpy out; a tensor runs on its device.
    """
    out = _cuda(points, boxes, "points_in_boxes")
    if out is None:
        out = _cpu_tensor(points_in_boxes, points, boxes)
    if out is not None:
        return out
    points = _check_points(points)
    boxes = check_boxes(boxes)
    index = np.full(len(points), -1, dtype=np.int64)
    if len(points) and len(boxes):
        _index_kernel(np.ascontiguousarray(points[:, :3]), np.ascontiguousarray(boxes, dtype=np.float64), index)
    return index
