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

    Segmentation adds two per-point columns that follow every selection of ``points`` (:meth:`select_points`):
    ``point_index`` int64 (N,), the row of each point in the key frame's point file (-1 for a sweep's point), and
    ``pts_labels`` int64 (N,), its class 0–16 (0: ignored; sweep points get 0). ``num_file_points``: rows of the
    key frame's point file.
    """

    info: Mapping
    data_root: str
    points: Optional[np.ndarray] = None
    gt_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, BOX_DIM), dtype=np.float32))
    gt_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    aug_matrix: np.ndarray = field(default_factory=lambda: np.eye(4))
    point_index: Optional[np.ndarray] = None
    pts_labels: Optional[np.ndarray] = None
    num_file_points: int = 0

    @property
    def has_point_columns(self) -> bool:
        """Whether per-point columns (point_index, pts_labels) ride along with the points."""
        return self.point_index is not None or self.pts_labels is not None

    def select_points(self, rows: np.ndarray) -> None:
        """Keeps (bool (N,)) or gathers (int (K,)) rows of the points and of their per-point columns alike."""
        self.points = self.points[rows]
        if self.point_index is not None:
            self.point_index = self.point_index[rows]
        if self.pts_labels is not None:
            self.pts_labels = self.pts_labels[rows]

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
