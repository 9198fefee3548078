"""Submanifold max-pool as a mask: which sparse entries hold the maximum score of their occupied neighbourhood.

VoxelNeXt decodes boxes without NMS by keeping the voxels that are local maxima of the heatmap; stock spconv's
SparseMaxPool has no submanifold mode, so this op looks the neighbours up in a hash of the coordinates.
"""
from __future__ import annotations

import itertools

import numba
import numpy as np
import torch

from . import _ext
from ._checks import float_tensor, positive_int, same_device
from ._hash import EMPTY, find_or_slot, table_size


@numba.njit(cache=True, inline="always")
def _key(coords, i, low, extent):
    key = 0
    for d in range(coords.shape[1]):
        key = key * extent[d] + (coords[i, d] - low[d])
    return key


@numba.njit(cache=True)
def _local_max_kernel(coords, scores, offsets, low, extent, n_slots, mask):
    keys = np.full(n_slots, EMPTY, dtype=np.int64)
    rows = np.empty(n_slots, dtype=np.int64)
    n, dims = coords.shape
    for i in range(n):
        key = _key(coords, i, low, extent)
        s = find_or_slot(keys, key)
        keys[s] = key
        rows[s] = i
    neighbour = np.empty(dims, dtype=np.int64)
    for i in range(n):
        for o in range(offsets.shape[0]):
            inside = True
            key = 0
            for d in range(dims):
                neighbour[d] = coords[i, d] + offsets[o, d]
                if neighbour[d] < low[d] or neighbour[d] >= low[d] + extent[d]:
                    inside = False
                key = key * extent[d] + (neighbour[d] - low[d])
            if not inside:
                continue
            s = find_or_slot(keys, key)
            if keys[s] == EMPTY:
                continue
            j = rows[s]
            for k in range(scores.shape[1]):
                if scores[j, k] > scores[i, k]:
                    mask[i, k] = False


def sparse_local_max(coords, scores, kernel_size: int = 3) -> torch.Tensor:
    """Int (M, 1+D) coordinates (batch first, then D spatial indices; unique rows), (M,) or (M, K) scores
    → bool mask of the same shape as ``scores``: True where the entry's score is >= the score of every
    occupied entry of its batch within the ``kernel_size``^D window around it (ties are all kept).
    """
    if isinstance(coords, np.ndarray):
        coords = torch.from_numpy(coords)
    if not isinstance(coords, torch.Tensor) or coords.dim() != 2 or coords.shape[1] < 2 or coords.is_floating_point():
        raise ValueError(f"coords must be an int tensor (M, 1+D) with the batch index first, got "
                         f"{getattr(coords, 'dtype', type(coords).__name__)} {tuple(getattr(coords, 'shape', ()))}")
    squeeze = isinstance(scores, (torch.Tensor, np.ndarray)) and scores.ndim == 1
    scores = float_tensor(scores[:, None] if squeeze else scores, "scores", 2, min_cols=1)
    if len(scores) != len(coords):
        raise ValueError(f"scores must have one row per coordinate ({len(coords)}), got {len(scores)}")
    kernel_size = positive_int(kernel_size, "kernel_size")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")
    same_device(coords=coords, scores=scores)
    if len(coords) == 0:
        mask = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
        return mask[:, 0] if squeeze else mask
    r = kernel_size // 2
    spatial = [range(-r, r + 1)] * (coords.shape[1] - 1)
    offsets = np.array([(0, *o) for o in itertools.product(*spatial) if any(o)], dtype=np.int64)
    offsets = offsets.reshape(-1, coords.shape[1])
    if coords.is_cuda:
        mask = _ext.load().sparse_local_max(coords.long().contiguous(), scores.float().contiguous(),
                                            torch.from_numpy(offsets).to(coords.device))
    else:
        c = coords.long().numpy()
        low = c.min(axis=0)
        extent = c.max(axis=0) - low + 1
        mask_np = np.ones(scores.shape, dtype=np.bool_)
        _local_max_kernel(c, scores.detach().numpy(), offsets, low, extent, table_size(len(c)), mask_np)
        mask = torch.from_numpy(mask_np)
    return mask[:, 0] if squeeze else mask
