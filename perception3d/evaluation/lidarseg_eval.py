"""nuScenes-lidarseg results as the devkit reads them, and their scoring by the devkit's own ``LidarSegEval``.

A results folder holds ``lidarseg/<eval_set>/<lidar sample_data token>_lidarseg.bin``: one ``uint8`` class 1–16
per row of the key frame's point file. The devkit asserts (or fails inside numpy) on a missing file, a file of the
wrong length or a class outside 1–16, and looks up every scene of its split by name; each is refused here first
with the file or scene named.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List

import numpy as np
from scipy.spatial import cKDTree

from ..datasets.lidarseg import check_predicted_labels
from ..datasets.point_io import count_file_points
from ..utils.io import atomic_write

METRICS_FILE = "lidarseg_metrics.json"


def prediction_path(results_folder: str, eval_set: str, lidar_token: str) -> Path:
    """Where the devkit's LidarSegEval looks for the predictions of a key frame."""
    return Path(results_folder) / "lidarseg" / eval_set / f"{lidar_token}_lidarseg.bin"


def labels_for_every_row(file_xyz: np.ndarray, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Classes for all M rows of a point file (``file_xyz`` (M, 3), m) from the K rows the model saw (``rows``
    int (K,), their ``labels`` (K,)): a seen row keeps its label, every other row takes the label of the nearest
    seen row in the file's own coordinates (as WaffleIron carries predictions back to all points)."""
    if len(rows) == 0:
        raise ValueError("no point of the frame reached the model: there is no label to carry to its points")
    out = np.empty(len(file_xyz), dtype=labels.dtype)
    seen = np.zeros(len(file_xyz), dtype=bool)
    seen[rows] = True
    out[rows] = labels
    if not seen.all():
        nearest = cKDTree(file_xyz[rows]).query(file_xyz[~seen])[1]
        out[~seen] = labels[nearest]
    return out


def split_lidar_tokens(nusc, eval_set: str) -> Dict[str, str]:
    """{LIDAR_TOP sample_data token: point file} of every key frame of ``eval_set``, refusing a root that lacks
    some of the split's scenes (the devkit's ``get_samples_in_eval_set`` looks up each one by name)."""
    from nuscenes.eval.lidarseg.utils import get_samples_in_eval_set
    from nuscenes.utils.splits import create_splits_scenes

    splits = create_splits_scenes(verbose=False)
    if eval_set not in splits:
        raise ValueError(f"eval_set must be one of the devkit's splits {sorted(splits)}, got {eval_set!r}")
    present = {scene["name"] for scene in nusc.scene}
    missing = [name for name in splits[eval_set] if name not in present]
    if missing:
        raise ValueError(f"the devkit's LidarSegEval scores every scene of {eval_set}, but {nusc.dataroot} "
                         f"({nusc.version}) lacks {len(missing)} of its {len(splits[eval_set])}: "
                         f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if not getattr(nusc, "lidarseg", None):
        raise ValueError(f"{nusc.dataroot} ({nusc.version}) has no lidarseg.json: no ground truth to score against")
    tokens = {}
    for sample_token in get_samples_in_eval_set(nusc, eval_set):
        sd = nusc.get("sample_data", nusc.get("sample", sample_token)["data"]["LIDAR_TOP"])
        tokens[sd["token"]] = sd["filename"]
    return tokens


def check_results_folder(nusc, results_folder: str, eval_set: str) -> List[Path]:
    """The prediction files of every key frame of ``eval_set``, each checked: present, one label per row of the
    frame's point file, classes 1–16. Raises ValueError naming the first bad file."""
    files = []
    for lidar_token, point_file in split_lidar_tokens(nusc, eval_set).items():
        path = prediction_path(results_folder, eval_set, lidar_token)
        if not path.is_file():
            raise ValueError(f"no predictions for key frame {lidar_token} of {eval_set}: {path} does not exist")
        num_points = count_file_points(os.path.join(nusc.dataroot, point_file))
        check_predicted_labels(np.fromfile(path, dtype=np.uint8), num_points, str(path))
        files.append(path)
    return files


def evaluate_lidarseg(nusc, results_folder: str, eval_set: str, out_dir: str) -> dict:
    """Checks ``results_folder`` (:func:`check_results_folder`), scores it with the devkit's ``LidarSegEval``
    and writes its result (``miou``, ``freq_weighted_iou``, ``iou_per_class``, as the devkit returns them) to
    ``out_dir/lidarseg_metrics.json``; returns that result."""
    from nuscenes.eval.lidarseg.evaluate import LidarSegEval

    check_results_folder(nusc, results_folder, eval_set)
    result = LidarSegEval(nusc, str(results_folder), eval_set=eval_set, verbose=False).evaluate()
    result = json.loads(json.dumps(result, default=float))  # numpy floats → JSON numbers
    atomic_write(Path(out_dir) / METRICS_FILE, json.dumps(result, indent=2).encode())
    return result
