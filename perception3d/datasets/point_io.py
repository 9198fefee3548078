"""Reading LiDAR point files, checked at the door."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from mmengine.logging import print_log


def load_bin_points(path: str, load_dim: int = 5) -> np.ndarray:
    """A float32 .bin / .pcd.bin file of ``load_dim`` columns → (N, load_dim); NaN or inf rows are dropped.

    Raises FileNotFoundError for a missing file and ValueError naming the file for a size that is not a
    whole number of points, or for a cloud without a finite point.
    """
    path = str(path)
    try:
        size = os.path.getsize(path)
    except OSError:
        raise FileNotFoundError(f"point file {path} does not exist (is the data root right?)") from None
    row = 4 * load_dim
    if size % row:
        raise ValueError(f"point file {path} has {size} bytes, not a multiple of {load_dim} float32 columns "
                         f"({row} bytes per point); check --load-dims / load_dim")
    points = np.fromfile(path, dtype=np.float32).reshape(-1, load_dim)
    if not np.isfinite(points.sum(dtype=np.float64)):  # one reduction; rows are checked only when needed
        finite = np.isfinite(points).all(axis=1)
        print_log(f"{Path(path).name}: dropped {int((~finite).sum())} points with NaN or inf", logger="current",
                  level=30)
        points = points[finite]
    if len(points) == 0:
        raise ValueError(f"point file {path} holds no (finite) points")
    return points
