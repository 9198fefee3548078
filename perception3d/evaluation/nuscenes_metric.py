"""nuScenes detection metric for mmengine's evaluators: the devkit's DetectionEval numbers on our predictions,
computed by our array evaluation (default), by the devkit itself, or by both compared."""
from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ..datasets.classes import CLASSES
from ..registry import METRICS
from ..utils.io import atomic_write
from .backends import check_backend, evaluate_detection_file
from .splits import resolve_split, split_sample_tokens
from .submission import SUBMISSION_META, detection_records, lidar_to_global, ranked_detections

MAX_BOXES_PER_SAMPLE = 500  # the devkit refuses submissions with more


@METRICS.register_module()
class NuScenesMetric(BaseMetric):
    """Writes the devkit submission JSON of all predictions and scores it as
    ``nuscenes.eval.detection.evaluate.DetectionEval`` does.

    Args:
        data_root: nuScenes (or synthetic world) root holding ``version``'s tables.
        version: e.g. "v1.0-mini" or "v1.0-trainval"; None: v1.0-trainval if ``data_root`` has its tables, else
            v1.0-mini. eval_set: the devkit split; None: "val" for v1.0-trainval, "mini_val" for v1.0-mini.
        out_dir: where ``results_nusc.json`` and the devkit's ``metrics_summary.json`` / ``metrics_details.json``
            go (the tools set ``<work-dir>/eval``; None: a temporary folder).
        score_thr: predictions below it are left out of the submission.
        backend: "fast" (our array evaluation: the devkit's numbers in seconds), "devkit" (DetectionEval itself) or
            "both" (both, failing on any difference; the devkit's files go to ``out_dir/devkit``).
    Returns metrics named ``NuScenes/mAP``, ``NuScenes/NDS``, ``NuScenes/mATE`` … and ``NuScenes/AP_<class>``.
    """

    default_prefix = "NuScenes"
    TP_NAMES = {"trans_err": "mATE", "scale_err": "mASE", "orient_err": "mAOE", "vel_err": "mAVE",
                "attr_err": "mAAE"}

    def __init__(self, data_root: str, version: Optional[str] = None, eval_set: Optional[str] = None,
                 classes: Sequence[str] = CLASSES, eval_config: str = "detection_cvpr_2019",
                 out_dir: Optional[str] = None, score_thr: float = 0.0, backend: str = "fast",
                 collect_device: str = "cpu", prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.data_root = str(data_root)
        self.version, self.eval_set = resolve_split(self.data_root, version, eval_set)
        self.classes, self.eval_config = tuple(classes), eval_config
        self.out_dir, self.score_thr = out_dir, score_thr
        self.backend = check_backend(backend)
        self._nusc = None

    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        """``data_samples``: the model's Detections, one per sample of ``data_batch["data_samples"]``."""
        for meta, det in zip(data_batch["data_samples"], data_samples):
            kept = ranked_detections(det, self.score_thr, MAX_BOXES_PER_SAMPLE)
            boxes = lidar_to_global(kept["boxes"].astype(np.float64), meta.lidar2ego, meta.ego2global,
                                    meta.aug_matrix)
            self.results.append((meta.token, detection_records(meta.token, boxes, kept["scores"], kept["labels"],
                                                               self.classes)))

    def nusc(self):
        """The devkit's tables, loaded once."""
        if self._nusc is None:
            from nuscenes import NuScenes

            self._nusc = NuScenes(self.version, dataroot=self.data_root, verbose=False)
        return self._nusc

    def compute_metrics(self, results: List) -> Dict[str, float]:
        out_dir = Path(self.out_dir or tempfile.mkdtemp(prefix="p3d-eval-"))
        out_dir.mkdir(parents=True, exist_ok=True)
        predicted = {token: records for token, records in results}
        split = split_sample_tokens(self.nusc(), self.eval_set)
        if set(predicted) - split:
            raise ValueError(f"predictions for {len(set(predicted) - split)} samples outside {self.eval_set} of "
                             f"{self.version} under {self.data_root}: is the evaluator's eval_set the dataset's?")
        if len(predicted) < len(split):  # a subset (e.g. indices=...): the devkit wants every sample of the split
            print_log(f"predictions cover {len(predicted)} of the {len(split)} samples of {self.eval_set}; the "
                      f"devkit counts the boxes of the others as missed", logger="current", level=logging.WARNING)
        submission = {"meta": SUBMISSION_META, "results": {t: predicted.get(t, []) for t in sorted(split)}}
        path = out_dir / "results_nusc.json"
        atomic_write(path, json.dumps(submission).encode())
        summary = evaluate_detection_file(str(path), self.nusc(), self.eval_set, str(out_dir), self.backend,
                                          self.eval_config, submission=submission)
        metrics = {"mAP": summary["mean_ap"], "NDS": summary["nd_score"]}
        metrics.update({short: summary["tp_errors"][name] for name, short in self.TP_NAMES.items()})
        metrics.update({f"AP_{name}": ap for name, ap in summary["mean_dist_aps"].items()})
        return metrics
