"""Tracks → the devkit's tracking submission, scored as ``nuscenes.eval.tracking.evaluate.TrackingEval`` does."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np
from mmengine.logging import print_log

from ..utils.io import atomic_write
from .backends import evaluate_tracking_file, load_tables
from .nuscenes_metric import MAX_BOXES_PER_SAMPLE
from .splits import resolve_split, split_sample_tokens
from .submission import SUBMISSION_META, box_records


def tracking_records(token: str, boxes: np.ndarray, scores: np.ndarray, names: Iterable[str],
                     ids: Iterable[int], scene_token: str = "") -> List[Dict]:
    """Devkit tracking records of one sample from global-frame (T, 9) boxes, scores, tracking class names and
    track ids (made unique over scenes by prefixing ``scene_token``)."""
    return [{**record, "tracking_id": f"{scene_token}_{int(track_id)}", "tracking_name": name,
             "tracking_score": float(score)}
            for record, score, name, track_id in zip(box_records(token, boxes), scores, names, ids)]


def evaluate_tracking(results: Dict[str, List[Dict]], data_root: str, out_dir: str, version: Optional[str] = None,
                      eval_set: Optional[str] = None, verbose: bool = True, backend: str = "fast") -> Dict:
    """Writes ``out_dir/results_nusc_tracking.json`` (every sample of the split; samples without tracks get
    none, with a warning) and scores it as the devkit's TrackingEval (tracking_nips_2019) does, by ``backend``
    (fast, devkit or both: see backends.py), leaving ``metrics_summary.json`` and ``metrics_details.json`` in
    ``out_dir`` → the summary dict (amota, amotp, mota, ids, … and ``label_metrics`` per class). Raises
    ValueError when no sample has a track."""
    version, eval_set = resolve_split(data_root, version, eval_set)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nusc = load_tables(data_root, version)
    split = split_sample_tokens(nusc, eval_set)
    if set(results) - split:
        raise ValueError(f"tracks for {len(set(results) - split)} samples outside {eval_set} of {version} under "
                         f"{data_root}")
    if not any(results.values()):
        raise ValueError(f"no track in any of the {len(split)} samples of {eval_set}: the devkit's TrackingEval "
                         f"cannot score an empty submission (untrained weights, or a birth score above every "
                         f"detection's?)")
    if len(results) < len(split):
        print_log(f"tracks cover {len(results)} of the {len(split)} samples of {eval_set}; the devkit counts the "
                  f"objects of the others as missed", logger="current", level=logging.WARNING)
    submission = {"meta": SUBMISSION_META,
                  "results": {t: sorted(results.get(t, []), key=lambda r: -r["tracking_score"])[:MAX_BOXES_PER_SAMPLE]
                              for t in sorted(split)}}
    path = out / "results_nusc_tracking.json"
    atomic_write(path, json.dumps(submission).encode())
    return evaluate_tracking_file(str(path), nusc, eval_set, str(out), backend, verbose=verbose,
                                  submission=submission)
