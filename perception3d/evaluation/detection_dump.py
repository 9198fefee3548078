"""Saves every prediction of a test run, in each sample's LiDAR frame with the poses that place it in the world."""
from __future__ import annotations

import pickle
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from ..datasets.classes import CLASSES
from ..registry import METRICS
from ..utils.io import atomic_write
from .submission import ranked_detections


def load_detections(path: str) -> Dict:
    """Reads a file written by :class:`DetectionDump` (plain numpy and Python values only)."""
    with open(path, "rb") as f:
        return pickle.load(f)


@METRICS.register_module()
class DetectionDump(BaseMetric):
    """Writes ``{"classes": [...], "frames": [frame, ...]}`` to ``out_file`` (pickle, atomically); a frame is
    ``{"token", "scene_token", "timestamp" (µs), "lidar2ego" (4, 4), "ego2global" (4, 4), "boxes" float32 (N, 9)
    in the LiDAR frame, "scores" (N,), "labels" int64 (N,), "voxel_xy" (N, 2): the centre of the BEV voxel each box
    was decoded from, LiDAR frame (m)}``, boxes above ``score_thr`` by falling score. Returns no metric."""

    def __init__(self, out_file: str, classes: Sequence[str] = CLASSES, score_thr: float = 0.0,
                 collect_device: str = "cpu", prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.out_file, self.classes, self.score_thr = out_file, list(classes), score_thr

    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        for meta, det in zip(data_batch["data_samples"], data_samples):
            if not np.allclose(meta.aug_matrix, np.eye(4)):
                raise ValueError("DetectionDump expects test-time frames (no augmentation); got an augmented one")
            kept = ranked_detections(det, self.score_thr)
            kept["boxes"] = kept["boxes"].astype(np.float32)
            self.results.append({"token": meta.token, "scene_token": meta.scene_token, "timestamp": meta.timestamp,
                                 "lidar2ego": np.asarray(meta.lidar2ego), "ego2global": np.asarray(meta.ego2global),
                                 **kept})

    def compute_metrics(self, results: List) -> Dict[str, float]:
        atomic_write(self.out_file, pickle.dumps({"classes": self.classes, "frames": results},
                                                 protocol=pickle.HIGHEST_PROTOCOL))
        return {}
