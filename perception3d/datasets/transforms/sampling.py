"""Thinning a cloud for segmentation: one point per voxel, and the points nearest a centre; both keep the
per-point columns (labels, file rows) with their points."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...registry import TRANSFORMS
from ...structures import LidarSample
from .random_state import RandomTransform


@TRANSFORMS.register_module()
class GridSample(RandomTransform):
    """Keeps one point per occupied ``voxel_size`` (m) cube: the first in the points' order, or (``random``) a
    random one. WaffleIron's ``Voxelize`` (valeoai/WaffleIron ``utils/transforms.py``; random in training, first
    at validation): cells of the cloud shifted by its minimum, points in the order of their cells."""

    def __init__(self, voxel_size: float = 0.1, random: bool = False, seed: Optional[int] = None):
        super().__init__(seed)
        if not voxel_size > 0:
            raise ValueError(f"voxel_size must be > 0 (m), got {voxel_size}")
        self.voxel_size, self.random = float(voxel_size), random

    def __call__(self, sample: LidarSample) -> LidarSample:
        if self.random:
            sample.select_points(self.rng.permutation(len(sample.points)))
        xyz = sample.points[:, :3]
        cells = ((xyz - xyz.min(axis=0)) / self.voxel_size).astype(np.int64)
        _, first = np.unique(cells, axis=0, return_index=True)
        sample.select_points(first)
        return sample


@TRANSFORMS.register_module()
class LimitNumPoints(RandomTransform):
    """At most ``max_points`` points: those nearest (in x, y, z) a random point of the cloud (``random``) or the
    sensor. WaffleIron's ``LimitNumPoints`` (``utils/transforms.py``; random, 20k points for nuScenes in
    training)."""

    def __init__(self, max_points: int, random: bool = True, seed: Optional[int] = None):
        super().__init__(seed)
        if max_points < 1:
            raise ValueError(f"max_points must be >= 1, got {max_points}")
        self.max_points, self.random = int(max_points), random

    def __call__(self, sample: LidarSample) -> LidarSample:
        if len(sample.points) > self.max_points:
            xyz = sample.points[:, :3]
            centre = xyz[self.rng.integers(len(xyz))] if self.random else np.zeros(3, dtype=xyz.dtype)
            order = np.argsort(np.square(xyz - centre).sum(axis=1), kind="stable")
            sample.select_points(order[:self.max_points])
        return sample
