"""Voxelizer: a batch of point clouds → one voxel per occupied cell with the mean of its points (mean VFE)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch
from torch import nn

from ...ops import scatter_mean, voxelize_dynamic, voxelize_hard
from ...ops._checks import voxel_grid
from ...registry import MODELS


@dataclass
class VoxelBatch:
    """Voxels of a batch: ``features`` float (M, C) mean of each voxel's points, ``coords`` int32 (M, 4) as
    batch, z, y, x, ``spatial_shape`` (z, y, x) cells of the grid, ``batch_size``."""

    features: torch.Tensor
    coords: torch.Tensor
    spatial_shape: Tuple[int, int, int]
    batch_size: int


@MODELS.register_module()
class Voxelizer(nn.Module):
    """Voxelizes each cloud of a batch and averages the points of every voxel.

    Args:
        voxel_size: (x, y, z) m. point_cloud_range: [x_min, y_min, z_min, x_max, y_max, z_max] m.
        mode: "hard" (at most ``max_points_per_voxel`` points and ``max_voxels`` voxels per cloud, spconv's
            PointToVoxel semantics) or "dynamic" (every point counts, no cap; the mean through scatter_mean).
        max_voxels: (training, testing) caps for the hard mode.
    """

    def __init__(self, voxel_size: Sequence[float], point_cloud_range: Sequence[float], mode: str = "hard",
                 max_points_per_voxel: int = 10, max_voxels: Sequence[int] = (120000, 160000)):
        super().__init__()
        if mode not in ("hard", "dynamic"):
            raise ValueError(f"mode must be 'hard' or 'dynamic', got {mode!r}")
        _, _, grid = voxel_grid(voxel_size, point_cloud_range)
        self.voxel_size, self.point_cloud_range = list(voxel_size), list(point_cloud_range)
        self.mode, self.max_points_per_voxel, self.max_voxels = mode, max_points_per_voxel, tuple(max_voxels)
        self.spatial_shape = tuple(int(g) for g in grid)  # z, y, x

    def _one(self, points: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.mode == "hard":
            cap = self.max_voxels[0] if self.training else self.max_voxels[1]
            voxels, coords, counts = voxelize_hard(points, self.voxel_size, self.point_cloud_range,
                                                   self.max_points_per_voxel, cap)
            features = voxels.sum(dim=1) / counts.clamp(min=1).unsqueeze(1).to(voxels.dtype)
            return features, coords
        point_voxel, coords = voxelize_dynamic(points, self.voxel_size, self.point_cloud_range)
        return scatter_mean(points, point_voxel.to(points.device), len(coords)), coords

    @torch.no_grad()
    def forward(self, points: List[torch.Tensor]) -> VoxelBatch:
        """``points``: one float (N_i, C) tensor per sample (x, y, z, ... in m) → VoxelBatch on their device."""
        features, coords = [], []
        for b, cloud in enumerate(points):
            f, c = self._one(cloud)
            features.append(f)
            coords.append(torch.cat([torch.full((len(c), 1), b, dtype=torch.int32, device=c.device), c], dim=1))
        return VoxelBatch(torch.cat(features).to(points[0].device), torch.cat(coords).to(points[0].device),
                          self.spatial_shape, len(points))
