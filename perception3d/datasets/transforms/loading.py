"""LoadPoints and LoadSweeps: a key frame's points, then its earlier sweeps moved into its LiDAR frame;
LoadPointLabels: the key frame's lidarseg labels."""
from __future__ import annotations

import os

import numba
import numpy as np

from ...registry import TRANSFORMS
from ...structures import LidarSample
from ...structures.frames import apply_pose_xyz
from ..lidarseg import load_point_labels
from ..point_io import count_file_points, load_bin_points


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


def outside_ego_square(points: np.ndarray, radius: float) -> np.ndarray:
    """bool (N,): the rows of ``points`` (N, >= 2) that are not within the |x|, |y| < ``radius`` (m) square, by
    the test :func:`gather_points` makes (in float64)."""
    xy = np.abs(np.asarray(points)[:, :2].astype(np.float64))
    radius = max(float(radius), 0.0)
    return ~((xy[:, 0] < radius) & (xy[:, 1] < radius))


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
        with_point_index: also keep each point's row in the file (``sample.point_index``), for segmentation:
            labels are read by it, and predictions go back to every row of the file through it.
    """

    def __init__(self, load_dim: int = 5, ego_radius: float = 1.0, with_point_index: bool = False):
        if load_dim < 4:
            raise ValueError(f"load_dim must be at least 4 (x, y, z, intensity), got {load_dim}")
        self.load_dim = load_dim
        self.ego_radius = ego_radius
        self.with_point_index = with_point_index

    def __call__(self, sample: LidarSample) -> LidarSample:
        path = os.path.join(sample.data_root, sample.info["lidar_path"])
        raw = load_bin_points(path, self.load_dim)
        sample.points = gather_points([raw], [np.eye(4)], [0.0], self.ego_radius)
        sample.num_file_points = len(raw)
        if self.with_point_index:  # the rows gather_points kept
            if len(raw) != count_file_points(path, self.load_dim):
                raise ValueError(f"point file {path} has rows with NaN or inf: per-point labels and predictions "
                                 f"index every row of the file")
            sample.point_index = np.flatnonzero(outside_ego_square(raw, self.ego_radius))
        return sample


@TRANSFORMS.register_module()
class LoadPointLabels:
    """Reads the key frame's nuScenes-lidarseg labels (``info["lidarseg_path"]``) → ``sample.pts_labels``, int64
    (N,) classes 0–16 of the devkit's mapping (0: ignored), one per point, by the points' file rows (after
    ``LoadPoints(with_point_index=True)``; sweep points appended later get 0)."""

    def __call__(self, sample: LidarSample) -> LidarSample:
        if sample.point_index is None:
            raise ValueError("LoadPointLabels needs LoadPoints(with_point_index=True) before it in the pipeline")
        relative = sample.info.get("lidarseg_path")
        if not relative:
            raise ValueError(f"sample {sample.info['token']} has no lidarseg labels (info 'lidarseg_path' is empty): "
                             f"the data root has no lidarseg.json for it, or the info file predates lidarseg")
        labels = load_point_labels(os.path.join(sample.data_root, relative), sample.num_file_points)
        sample.pts_labels = labels[sample.point_index]
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
        if sample.point_index is not None:
            sample.point_index = np.concatenate([sample.point_index, np.full(len(moved), -1, dtype=np.int64)])
        if sample.pts_labels is not None:
            sample.pts_labels = np.concatenate([sample.pts_labels, np.zeros(len(moved), dtype=np.int64)])
        return sample
