"""Range filters, shuffling and packing a sample for the model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numba
import numpy as np
import torch

from ...registry import TRANSFORMS
from ...structures import LidarSample
from .random_state import RandomTransform


def _check_range(point_cloud_range: Sequence[float]) -> np.ndarray:
    r = np.asarray(point_cloud_range, dtype=np.float32)
    if r.shape != (6,) or (r[:3] >= r[3:]).any():
        raise ValueError(f"point_cloud_range must be [x_min, y_min, z_min, x_max, y_max, z_max] with min < max, "
                         f"got {list(point_cloud_range)}")
    return r


@numba.njit(cache=True, nogil=True)
def points_in_range(points, r):
    """Rows of (N, C) ``points`` with r[0:3] <= x, y, z < r[3:6] (``r`` float32 (6,), m), in order, as a new
    array."""
    keep = np.empty(points.shape[0], dtype=np.bool_)
    n = 0
    for i in range(points.shape[0]):
        x, y, z = points[i, 0], points[i, 1], points[i, 2]
        keep[i] = r[0] <= x < r[3] and r[1] <= y < r[4] and r[2] <= z < r[5]
        n += keep[i]
    out = np.empty((n, points.shape[1]), dtype=points.dtype)
    k = 0
    for i in range(points.shape[0]):
        if keep[i]:
            out[k] = points[i]
            k += 1
    return out


@TRANSFORMS.register_module()
class PointsRangeFilter:
    """Keeps points with min <= x, y, z < max of ``point_cloud_range`` (m)."""

    def __init__(self, point_cloud_range: Sequence[float]):
        self.range = _check_range(point_cloud_range)

    def __call__(self, sample: LidarSample) -> LidarSample:
        if sample.has_point_columns:  # the points that leave take their labels and file rows with them
            xyz, r = sample.points[:, :3], self.range
            sample.select_points(((xyz >= r[:3]) & (xyz < r[3:])).all(axis=1))
        else:
            sample.points = points_in_range(sample.points, self.range)
        return sample


@TRANSFORMS.register_module()
class ObjectRangeFilter:
    """Keeps boxes whose centre lies inside the x, y extent of ``point_cloud_range``."""

    def __init__(self, point_cloud_range: Sequence[float]):
        self.range = _check_range(point_cloud_range)

    def __call__(self, sample: LidarSample) -> LidarSample:
        xy = sample.gt_boxes[:, :2]
        sample.select_boxes(((xy >= self.range[:2]) & (xy < self.range[3:5])).all(axis=1))
        return sample


@TRANSFORMS.register_module()
class PointShuffle(RandomTransform):
    """Shuffles the order of the points."""

    def __call__(self, sample: LidarSample) -> LidarSample:
        order = self.rng.permutation(len(sample.points))
        if sample.has_point_columns:
            sample.select_points(order)
        else:
            sample.points = np.take(sample.points, order, axis=0)
        return sample


@dataclass
class SampleTargets:
    """What the model receives beside the points: ground truth and the frame's metadata."""

    token: str
    scene_token: str
    timestamp: int  # µs
    gt_boxes: torch.Tensor  # float32 (M, 9), augmented LiDAR frame
    gt_labels: torch.Tensor  # int64 (M,)
    lidar2ego: np.ndarray  # (4, 4)
    ego2global: np.ndarray  # (4, 4)
    aug_matrix: np.ndarray  # (4, 4) original LiDAR frame → augmented frame
    # segmentation: the key frame's sample_data token and point file, each point's file row and class 0-16
    lidar_token: str = ""
    lidar_path: str = ""
    num_file_points: int = 0
    point_index: Optional[torch.Tensor] = None  # int64 (N,), -1 for a sweep's point
    pts_labels: Optional[torch.Tensor] = None  # int64 (N,)


@TRANSFORMS.register_module()
class Pack:
    """LidarSample → ``{"inputs": {"points": float32 tensor (N, 5)}, "data_samples": SampleTargets}``."""

    def __call__(self, sample: LidarSample) -> dict:
        info = sample.info

        def column(values):
            return None if values is None else torch.from_numpy(np.ascontiguousarray(values, dtype=np.int64))

        targets = SampleTargets(
            token=info["token"], scene_token=info["scene_token"], timestamp=info["timestamp"],
            gt_boxes=torch.from_numpy(np.ascontiguousarray(sample.gt_boxes, dtype=np.float32)),
            gt_labels=torch.from_numpy(np.ascontiguousarray(sample.gt_labels, dtype=np.int64)),
            lidar2ego=info["lidar2ego"], ego2global=info["ego2global"], aug_matrix=sample.aug_matrix,
            lidar_token=info.get("lidar_token", ""), lidar_path=info.get("lidar_path", ""),
            num_file_points=sample.num_file_points, point_index=column(sample.point_index),
            pts_labels=column(sample.pts_labels))
        return {"inputs": {"points": torch.from_numpy(np.ascontiguousarray(sample.points))}, "data_samples": targets}
