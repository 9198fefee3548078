"""nuScenes-lidarseg metric for mmengine's evaluators: the model's point classes written as the devkit's result
files, scored by the devkit's ``LidarSegEval``."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from ..datasets.lidarseg import SEG_CLASSES, check_predicted_labels
from ..datasets.point_io import load_bin_points
from ..registry import METRICS
from ..utils.io import atomic_write
from .lidarseg_eval import evaluate_lidarseg, labels_for_every_row, prediction_path, split_lidar_tokens
from .splits import resolve_split


@METRICS.register_module()
class LidarSegMetric(BaseMetric):
    """Writes each key frame's predicted classes (1–16) to ``out_dir/lidarseg/<eval_set>/<token>_lidarseg.bin``,
    one per row of its point file, and scores the folder with the devkit's ``LidarSegEval``.

    Points the pipeline left out (the ego square, the range filter, thinning) take the class of the nearest point
    the model saw (:func:`labels_for_every_row`); sweep points are not written.

    Args:
        data_root: nuScenes (or synthetic world) root with lidarseg. version / eval_set: as NuScenesMetric's
            (None: found under ``data_root``; "mini_val" for v1.0-mini, "val" for v1.0-trainval).
        out_dir: where the result files and the devkit's numbers (``lidarseg_metrics.json``) go (the tools set
            ``<work-dir>/eval``; None: a temporary folder).
    Returns ``LidarSeg/mIoU``, ``LidarSeg/fwIoU`` and ``LidarSeg/IoU_<class>`` for the 16 classes.
    """

    default_prefix = "LidarSeg"

    def __init__(self, data_root: str, version: Optional[str] = None, eval_set: Optional[str] = None,
                 out_dir: Optional[str] = None, load_dim: int = 5, collect_device: str = "cpu",
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.data_root = str(data_root)
        self.version, self.eval_set = resolve_split(self.data_root, version, eval_set)
        self.out_dir, self.load_dim = out_dir, load_dim
        self._folder: Optional[Path] = None
        self._nusc = None

    def results_folder(self) -> Path:
        """The folder the devkit reads: ``out_dir`` or a temporary one. A file left there by an earlier run is
        overwritten; :meth:`compute_metrics` checks that this run predicted every key frame of the split."""
        if self._folder is None:
            self._folder = Path(self.out_dir or tempfile.mkdtemp(prefix="p3d-lidarseg-"))
        return self._folder

    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        """``data_samples``: the model's predictions, one int tensor (N_i,) of classes 1–16 per sample of
        ``data_batch["data_samples"]`` (whose ``point_index`` says which file row each point is)."""
        for meta, labels in zip(data_batch["data_samples"], data_samples):
            if meta.point_index is None or not meta.lidar_token:
                raise ValueError("LidarSegMetric needs each point's file row: LoadPoints(with_point_index=True) in "
                                 "the test pipeline, and infos with lidar_token")
            labels = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels)
            rows = meta.point_index.cpu().numpy()
            key = rows >= 0
            path = os.path.join(self.data_root, meta.lidar_path)
            xyz = load_bin_points(path, self.load_dim)[:, :3]
            full = labels_for_every_row(xyz, rows[key], labels[key])
            out = prediction_path(str(self.results_folder()), self.eval_set, meta.lidar_token)
            atomic_write(out, check_predicted_labels(full, len(xyz), f"predictions for {path}").tobytes())
            self.results.append(meta.lidar_token)

    def nusc(self):
        """The devkit's tables, loaded once."""
        if self._nusc is None:
            from nuscenes import NuScenes

            self._nusc = NuScenes(self.version, dataroot=self.data_root, verbose=False)
        return self._nusc

    def compute_metrics(self, results: List) -> Dict[str, float]:
        folder = self.results_folder()
        self._folder = None  # the next evaluation starts a clean folder
        expected = split_lidar_tokens(self.nusc(), self.eval_set)
        missing = set(expected) - set(results)
        if missing:
            raise ValueError(f"predictions cover {len(expected) - len(missing)} of the {len(expected)} key frames of "
                             f"{self.eval_set}; the devkit's LidarSegEval scores every one (evaluate the whole split)")
        result = evaluate_lidarseg(self.nusc(), str(folder), self.eval_set, str(folder))
        metrics = {"mIoU": result["miou"], "fwIoU": result["freq_weighted_iou"]}
        metrics.update({f"IoU_{name}": result["iou_per_class"][name] for name in SEG_CLASSES})
        return metrics
