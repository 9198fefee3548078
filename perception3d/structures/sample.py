"""The named structure one key frame travels in through the data pipeline."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import numpy as np

from .boxes import BOX_DIM
from .frames import transform_boxes, transform_points


@dataclass
class LidarSample:
    """A key frame: its info record (read-only), its points and its boxes, all in the key frame's LiDAR frame.

    ``points`` float32 (N, 5): x, y, z (m), intensity, time_lag (s); ``gt_boxes`` float32 (M, 9) in our
    convention with ``gt_labels`` int64 (M,) indices into the dataset's classes; ``aug_matrix`` (4, 4) maps the
    original LiDAR frame into the augmented one (identity until a global augmentation runs).
    """

    info: Mapping
    data_root: str
    points: Optional[np.ndarray] = None
    gt_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, BOX_DIM), dtype=np.float32))
    gt_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    aug_matrix: np.ndarray = field(default_factory=lambda: np.eye(4))

    def apply_affine(self, matrix: np.ndarray) -> None:
        """Moves points (in place) and boxes by a (4, 4) similarity (rotation, uniform scale, reflection,
        translation)."""
        if self.points is not None:
            self.points = transform_points(matrix, self.points, inplace=True)
        self.gt_boxes = transform_boxes(matrix, self.gt_boxes)
        self.aug_matrix = matrix @ self.aug_matrix

    def select_boxes(self, keep: np.ndarray) -> None:
        """Keeps the boxes (and labels) where ``keep`` (bool (M,)) is true."""
        self.gt_boxes = self.gt_boxes[keep]
        self.gt_labels = self.gt_labels[keep]
