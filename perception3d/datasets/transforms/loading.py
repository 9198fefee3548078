"""LoadPoints and LoadSweeps: a key frame's points, then its earlier sweeps moved into its LiDAR frame."""
from __future__ import annotations

import os

import numpy as np

from ...registry import TRANSFORMS
from ...structures import LidarSample
from ..point_io import load_bin_points


def remove_ego_points(points: np.ndarray, radius: float) -> np.ndarray:
    """Drops points with |x| < radius and |y| < radius (the ego car and rays without return)."""
    if radius <= 0:
        return points
    near = (np.abs(points[:, 0]) < radius) & (np.abs(points[:, 1]) < radius)
    return points[~near]


@TRANSFORMS.register_module()
class LoadPoints:
    """Loads the key frame's point file → ``sample.points`` float32 (N, 5): x, y, z, intensity, time_lag = 0.

    Args:
        load_dim: float32 columns in the file (5 for nuScenes: x, y, z, intensity, ring).
        ego_radius: points with |x| and |y| below it (m) are removed, as the ego car and rays without return.
    """

    def __init__(self, load_dim: int = 5, ego_radius: float = 1.0):
        if load_dim < 4:
            raise ValueError(f"load_dim must be at least 4 (x, y, z, intensity), got {load_dim}")
        self.load_dim = load_dim
        self.ego_radius = ego_radius

    def load(self, path: str) -> np.ndarray:
        """(N, 5) points of one file, ego points removed, time_lag zero."""
        raw = remove_ego_points(load_bin_points(path, self.load_dim), self.ego_radius)
        points = np.empty((len(raw), 5), dtype=np.float32)
        points[:, :4] = raw[:, :4]
        points[:, 4] = 0.0
        return points

    def __call__(self, sample: LidarSample) -> LidarSample:
        sample.points = self.load(os.path.join(sample.data_root, sample.info["lidar_path"]))
        return sample


@TRANSFORMS.register_module()
class LoadSweeps(LoadPoints):
    """Appends up to ``sweeps_num`` earlier sweeps (newest first), moved into the key frame's LiDAR frame,
    their time_lag column set to the age of the sweep (s)."""

    def __init__(self, sweeps_num: int = 10, load_dim: int = 5, ego_radius: float = 1.0):
        super().__init__(load_dim, ego_radius)
        if sweeps_num < 0:
            raise ValueError(f"sweeps_num must be >= 0, got {sweeps_num}")
        self.sweeps_num = sweeps_num

    def __call__(self, sample: LidarSample) -> LidarSample:
        if sample.points is None:
            raise ValueError("LoadSweeps needs LoadPoints before it in the pipeline")
        parts = [sample.points]
        for sweep in sample.info["sweeps"][: self.sweeps_num]:
            points = self.load(os.path.join(sample.data_root, sweep["lidar_path"]))
            pose = sweep["sweep2lidar"]
            points[:, :3] = points[:, :3] @ pose[:3, :3].T.astype(np.float32) + pose[:3, 3].astype(np.float32)
            points[:, 4] = sweep["time_lag"]
            parts.append(points)
        sample.points = np.concatenate(parts)
        return sample
