"""Voxelization of a point cloud: hard (a fixed number of points per voxel, as spconv's PointToVoxel) and
dynamic (every point keeps its voxel index, for scatter-based voxel encoders).

Voxel coordinates are (z, y, x) int32, voxel c holds the points with floor((p - range_min) / voxel_size) == c,
computed in the points' float precision exactly as spconv does; points outside the grid are dropped. Voxels
are numbered in the order their first point arrives, points keep their arrival order: both paths (numba on
the CPU, CUDA on the GPU) give the same result. A hash of the occupied voxels replaces spconv's dense grid
table (1440 × 1440 × 40 int32 ≈ 332 MB at nuScenes resolution).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numba
import numpy as np
import torch

from . import _ext
from ._checks import float_tensor, positive_int, voxel_grid
from ._hash import EMPTY, find_or_slot, table_size


@numba.njit(cache=True, inline="always")
def _voxel_of(points, i, vs, lo, grid):
    """(z, y, x, key) of point i, key -1 when it lies outside the grid."""
    cz = int(np.floor((points[i, 2] - lo[0]) / vs[0]))
    cy = int(np.floor((points[i, 1] - lo[1]) / vs[1]))
    cx = int(np.floor((points[i, 0] - lo[2]) / vs[2]))
    if cz < 0 or cz >= grid[0] or cy < 0 or cy >= grid[1] or cx < 0 or cx >= grid[2]:
        return cz, cy, cx, -1
    return cz, cy, cx, (cz * grid[1] + cy) * grid[2] + cx


@numba.njit(cache=True)
def _assign_kernel(points, vs, lo, grid, max_voxels, coords, point_voxel, n_slots):
    """Voxel of every point in first-seen order (-1 outside the grid or beyond ``max_voxels``) and the (z, y, x)
    of each voxel; returns the number of voxels."""
    keys = np.full(n_slots, EMPTY, dtype=np.int64)
    values = np.empty(n_slots, dtype=np.int32)
    n_voxels = 0
    for i in range(points.shape[0]):
        cz, cy, cx, key = _voxel_of(points, i, vs, lo, grid)
        point_voxel[i] = -1
        if key < 0:
            continue
        s = find_or_slot(keys, key)
        if keys[s] == EMPTY:
            if n_voxels >= max_voxels:
                continue
            keys[s] = key
            values[s] = n_voxels
            coords[n_voxels, 0], coords[n_voxels, 1], coords[n_voxels, 2] = cz, cy, cx
            n_voxels += 1
        point_voxel[i] = values[s]
    return n_voxels


@numba.njit(cache=True)
def _fill_kernel(points, point_voxel, voxels, counts):
    """Copies each voxel's first P points, in arrival order, into voxels (M, P, C); counts (M,) how many."""
    max_points = voxels.shape[1]
    for i in range(points.shape[0]):
        v = point_voxel[i]
        if v < 0 or counts[v] >= max_points:
            continue
        for c in range(points.shape[1]):
            voxels[v, counts[v], c] = points[i, c]
        counts[v] += 1


def _assign(pts: np.ndarray, vs, lo, grid, max_voxels: int):
    capacity = min(len(pts), max_voxels)
    coords = np.empty((capacity, 3), dtype=np.int32)
    point_voxel = np.empty(len(pts), dtype=np.int64)
    n = _assign_kernel(pts, vs.astype(pts.dtype), lo.astype(pts.dtype), grid, max_voxels, coords, point_voxel,
                       table_size(capacity))
    return point_voxel, coords[:n]


def voxelize_hard(points, voxel_size: Sequence[float], pc_range: Sequence[float], max_points_per_voxel: int,
                  max_voxels: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Groups (N, C>=3) points (x, y, z first; m) into voxels, as spconv's ``PointToVoxel``.

    Returns ``voxels`` (M, P, C) of the points' dtype (a voxel's first P points in arrival order, zero padded),
    ``coords`` int32 (M, 3) as z, y, x, ``num_points`` int32 (M,); voxels beyond ``max_voxels`` and points
    beyond ``max_points_per_voxel`` are dropped. On the device of ``points`` (a numpy array runs on the CPU).
    """
    points = float_tensor(points, "points", 2, min_cols=3)
    max_points_per_voxel = positive_int(max_points_per_voxel, "max_points_per_voxel")
    max_voxels = positive_int(max_voxels, "max_voxels")
    vs, lo, grid = voxel_grid(voxel_size, pc_range)
    if points.is_cuda:
        return tuple(_ext.load().voxelize_hard(points.contiguous(), torch.from_numpy(vs), torch.from_numpy(lo),
                                               torch.from_numpy(grid), max_points_per_voxel, max_voxels)[:3])
    pts = points.detach().contiguous().numpy()
    point_voxel, coords = _assign(pts, vs, lo, grid, max_voxels)
    voxels = np.zeros((len(coords), max_points_per_voxel, pts.shape[1]), dtype=pts.dtype)
    counts = np.zeros(len(coords), dtype=np.int32)
    _fill_kernel(pts, point_voxel, voxels, counts)
    return torch.from_numpy(voxels), torch.from_numpy(coords), torch.from_numpy(counts)


def voxelize_dynamic(points, voxel_size: Sequence[float], pc_range: Sequence[float]
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Voxel of every point of (N, C>=3) points (x, y, z first; m), no point dropped but those outside the range.

    Returns ``point_voxel`` int64 (N,) (index into ``coords``, -1 outside the range) and ``coords`` int32 (M, 3)
    as z, y, x of the occupied voxels in first-seen order. Feed them to :func:`scatter_mean` /
    :func:`scatter_max` to pool point features per voxel.
    """
    points = float_tensor(points, "points", 2, min_cols=3)
    vs, lo, grid = voxel_grid(voxel_size, pc_range)
    if points.is_cuda:
        point_voxel, coords = _ext.load().voxelize_dynamic(points.contiguous(), torch.from_numpy(vs),
                                                           torch.from_numpy(lo), torch.from_numpy(grid))
        return point_voxel, coords
    point_voxel, coords = _assign(points.detach().contiguous().numpy(), vs, lo, grid, len(points))
    return torch.from_numpy(point_voxel), torch.from_numpy(coords.copy())
