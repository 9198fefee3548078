"""Argument checks shared by the op entry points: every bad argument is a ValueError that names it."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import torch

from ..structures.boxes import BOX_DIM, BOX_FIELDS


def float_tensor(x, name: str, ndim: int, min_cols: int = 0, cols: int = 0) -> torch.Tensor:
    """``x`` as a float32/float64 tensor of ``ndim`` dims (numpy arrays are wrapped, not copied)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.dim() != ndim or (ndim == 2 and (x.shape[1] < min_cols or (cols and x.shape[1] != cols))):
        want = {1: "(N,)", 2: f"(N, {cols})" if cols else f"(N, C>={min_cols})"}[ndim]
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name} must be float32 or float64, got {x.dtype}")
    return x


def boxes_tensor(x, name: str = "boxes") -> torch.Tensor:
    """(N, 9) boxes in our convention as a float tensor."""
    if isinstance(x, (np.ndarray, torch.Tensor)) and (x.ndim != 2 or x.shape[1] != BOX_DIM):
        raise ValueError(f"{name} must have shape (N, {BOX_DIM}) as {BOX_FIELDS}, got {tuple(x.shape)}")
    return float_tensor(x, name, 2, cols=BOX_DIM)


def same_device(**tensors: torch.Tensor) -> torch.device:
    """The one device of ``tensors``, or ValueError naming them."""
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        raise ValueError(f"arguments are on different devices: {devices}")
    return next(iter(devices.values()))


def voxel_grid(voxel_size: Sequence[float], pc_range: Sequence[float]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, z) voxel size (m) and [x_min, y_min, z_min, x_max, y_max, z_max] (m) → float32 voxel size, float32
    range minimum and int64 grid size, each in z, y, x order, computed in float32 as spconv's PointToVoxel does."""
    vs = np.asarray(voxel_size, dtype=np.float32)
    pr = np.asarray(pc_range, dtype=np.float32)
    if vs.shape != (3,) or not (vs > 0).all() or not np.isfinite(vs).all():
        raise ValueError(f"voxel_size must be 3 positive numbers (x, y, z in m), got {list(voxel_size)}")
    if pr.shape != (6,) or not np.isfinite(pr).all() or (pr[:3] >= pr[3:]).any():
        raise ValueError(f"pc_range must be [x_min, y_min, z_min, x_max, y_max, z_max] with min < max, "
                         f"got {list(pc_range)}")
    grid = np.round((pr[3:] - pr[:3]) / vs).astype(np.int64)  # float32 arithmetic, as spconv
    if (grid < 1).any() or np.prod(grid.astype(np.float64)) >= 2 ** 62:
        raise ValueError(f"pc_range {list(pc_range)} / voxel_size {list(voxel_size)} gives grid {grid.tolist()}")
    return vs[::-1].copy(), pr[:3][::-1].copy(), grid[::-1].copy()


def positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
