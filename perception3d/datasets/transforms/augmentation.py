"""Global augmentations: the whole scene (points, boxes, velocities) moves by one similarity transform."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ...registry import TRANSFORMS
from ...structures import LidarSample
from .random_state import RandomTransform


@TRANSFORMS.register_module()
class GlobalRotScaleTrans(RandomTransform):
    """Rotates about +z by U(rot_range) rad, scales by U(scale_range), translates by N(0, translation_std) m."""

    def __init__(self, rot_range: Sequence[float] = (-np.pi / 4, np.pi / 4),
                 scale_range: Sequence[float] = (0.95, 1.05),
                 translation_std: Sequence[float] = (0.0, 0.0, 0.0), seed: Optional[int] = None):
        super().__init__(seed)
        if not (len(scale_range) == 2 and 0 < scale_range[0] <= scale_range[1]):
            raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got {scale_range}")
        if not (len(rot_range) == 2 and rot_range[0] <= rot_range[1]):
            raise ValueError(f"rot_range must be (low, high) with low <= high, got {rot_range}")
        if len(translation_std) != 3 or min(translation_std) < 0:
            raise ValueError(f"translation_std must be 3 non-negative numbers, got {translation_std}")
        self.rot_range, self.scale_range, self.translation_std = rot_range, scale_range, np.asarray(translation_std)

    def __call__(self, sample: LidarSample) -> LidarSample:
        angle = self.rng.uniform(*self.rot_range)
        scale = self.rng.uniform(*self.scale_range)
        c, s = np.cos(angle), np.sin(angle)
        matrix = np.eye(4)
        matrix[:3, :3] = scale * np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        matrix[:3, 3] = self.rng.normal(0.0, 1.0, 3) * self.translation_std
        sample.apply_affine(matrix)
        return sample


@TRANSFORMS.register_module()
class RandomFlip3D(RandomTransform):
    """Mirrors the scene across the x axis (y → -y) with ``flip_x_prob`` and across the y axis (x → -x)
    with ``flip_y_prob``."""

    def __init__(self, flip_x_prob: float = 0.5, flip_y_prob: float = 0.5, seed: Optional[int] = None):
        super().__init__(seed)
        for name, p in (("flip_x_prob", flip_x_prob), ("flip_y_prob", flip_y_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        self.flip_x_prob, self.flip_y_prob = flip_x_prob, flip_y_prob

    def __call__(self, sample: LidarSample) -> LidarSample:
        diag = np.ones(4)
        if self.rng.random() < self.flip_x_prob:
            diag[1] = -1.0
        if self.rng.random() < self.flip_y_prob:
            diag[0] = -1.0
        if (diag != 1).any():
            sample.apply_affine(np.diag(diag))
        return sample
