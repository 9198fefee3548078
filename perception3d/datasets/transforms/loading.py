"""LoadPoints and LoadSweeps: a key frame's points, then its earlier sweeps moved into its LiDAR frame."""
from __future__ import annotations

import os

import numba
import numpy as np

from ...registry import TRANSFORMS
from ...structures import LidarSample
from ...structures.frames import apply_pose_xyz
from ..point_io import load_bin_points


@numba.njit(cache=True, nogil=True)
def _append_points(out, start, raw, pose, time_lag, radius):
    """Writes the rows of ``raw`` (N, >= 4) outside the |x|, |y| < radius square into ``out[start:]`` as
    x, y, z (moved by the (4, 4) ``pose``), intensity, ``time_lag``; returns the end row."""
    k = start
    for i in range(raw.shape[0]):
        x, y, z = float(raw[i, 0]), float(raw[i, 1]), float(raw[i, 2])
        if abs(x) < radius and abs(y) < radius:
            continue
        out[k, 0], out[k, 1], out[k, 2] = apply_pose_xyz(pose, x, y, z)
        out[k, 3] = raw[i, 3]
        out[k, 4] = time_lag
        k += 1
    return k


def gather_points(clouds, poses, time_lags, ego_radius: float) -> np.ndarray:
    """Stacks raw clouds (each float32 (N_i, >= 4)) into one float32 (N, 5) array x, y, z, intensity, time_lag.

    Each cloud is moved by its float64 (4, 4) pose and gets its time lag (s); points with |x| and |y| below
    ``ego_radius`` (m, in the cloud's own frame) are left out. One pass, no intermediate copies.
    """
    out = np.empty((sum(len(c) for c in clouds), 5), dtype=np.float32)
    end = 0
    for cloud, pose, lag in zip(clouds, poses, time_lags):
        end = _append_points(out, end, cloud, np.ascontiguousarray(pose, dtype=np.float64), float(lag),
                             float(max(ego_radius, 0.0)))
    return out[:end]


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

    def __call__(self, sample: LidarSample) -> LidarSample:
        raw = load_bin_points(os.path.join(sample.data_root, sample.info["lidar_path"]), self.load_dim)
        sample.points = gather_points([raw], [np.eye(4)], [0.0], self.ego_radius)
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
        sweeps = sample.info["sweeps"][: self.sweeps_num]
        clouds = [load_bin_points(os.path.join(sample.data_root, s["lidar_path"]), self.load_dim) for s in sweeps]
        moved = gather_points(clouds, [s["sweep2lidar"] for s in sweeps], [s["time_lag"] for s in sweeps],
                              self.ego_radius)
        sample.points = np.concatenate([sample.points, moved])
        return sample
