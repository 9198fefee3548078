"""The GT database: every training object's points, for ObjectSample to paste into other frames.

``nuscenes_dbinfos_train.pkl`` holds ``{"metainfo": {...}, "objects": {class: [record, ...]}}`` where a record is
``{"box": float32 (9,), "num_points", "offset", "sample_token", "instance_token"}``; the points are rows
``offset : offset + num_points`` of ``nuscenes_gt_database.bin`` (float32 (P, 5): x, y, z relative to the box
centre, intensity, time_lag), key frame and sweeps as the training pipeline loads them.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import pickle
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from ..ops import points_in_boxes_mask
from ..structures import LidarSample
from ..utils.io import atomic_pickle
from .transforms.loading import LoadPoints, LoadSweeps

DB_FORMAT_VERSION = 1
DB_INFO_FILE = "nuscenes_dbinfos_train.pkl"
DB_POINTS_FILE = "nuscenes_gt_database.bin"


def _objects_of_sample(args) -> Tuple[List[dict], List[np.ndarray]]:
    info, root, max_sweeps, min_points = args
    sample = LoadSweeps(max_sweeps)(LoadPoints()(LidarSample(info, root)))
    boxes = info["gt_boxes"]
    mask = points_in_boxes_mask(sample.points, boxes)
    records, points = [], []
    for b in np.flatnonzero(mask.sum(axis=0) >= min_points):
        pts = sample.points[mask[:, b]].copy()
        pts[:, :3] -= boxes[b, :3]
        records.append({"name": str(info["gt_names"][b]), "box": boxes[b].copy(), "num_points": len(pts),
                        "sample_token": info["token"], "instance_token": str(info["instance_tokens"][b])})
        points.append(pts)
    return records, points


def create_gt_database(root: str, train_infos: List[dict], max_sweeps: int = 10, min_points: int = 5,
                       workers: Optional[int] = None, progress: bool = True) -> Dict[str, int]:
    """Writes the GT database of ``train_infos`` under ``root``; returns the object count per class."""
    root = Path(root)
    points_path = root / DB_POINTS_FILE
    tmp = points_path.with_name(f".{points_path.name}.tmp")
    objects: Dict[str, List[dict]] = {}
    offset = 0
    workers = max(1, min(workers or os.cpu_count() or 1, len(train_infos) or 1))
    tasks = [(info, str(root), max_sweeps, min_points) for info in train_infos]
    bar = tqdm(total=len(tasks), desc="GT database", unit="sample", disable=not progress)
    try:
        with open(tmp, "wb") as out:
            pool = mp.get_context("fork").Pool(workers) if workers > 1 else None
            results = pool.imap(_objects_of_sample, tasks, chunksize=4) if pool else map(_objects_of_sample, tasks)
            for records, points in results:
                for record, pts in zip(records, points):
                    record["offset"] = offset
                    offset += len(pts)
                    out.write(pts.tobytes())
                    objects.setdefault(record.pop("name"), []).append(record)
                bar.update(1)
            if pool:
                pool.close()
                pool.join()
        os.replace(tmp, points_path)
    finally:
        bar.close()
        if tmp.exists():
            tmp.unlink()
    metainfo = {"format_version": DB_FORMAT_VERSION, "max_sweeps": max_sweeps, "min_points": min_points,
                "point_dims": 5, "points_file": DB_POINTS_FILE}
    atomic_pickle(root / DB_INFO_FILE, {"metainfo": metainfo, "objects": objects})
    return {name: len(recs) for name, recs in sorted(objects.items())}


def load_gt_database(root: str) -> Tuple[dict, np.ndarray]:
    """The database's object records and its points as a read-only memory map (float32 (P, 5))."""
    path = Path(root) / DB_INFO_FILE
    if not path.is_file():
        raise FileNotFoundError(f"GT database {path} does not exist; create it with: "
                                f"python tools/create_data.py nuscenes --root {root} --version <version>")
    with open(path, "rb") as f:
        db = pickle.load(f)
    if db.get("metainfo", {}).get("format_version") != DB_FORMAT_VERSION:
        raise ValueError(f"GT database {path} has another format version; regenerate it with "
                         f"python tools/create_data.py nuscenes --root {root} --version <version>")
    points_path = Path(root) / db["metainfo"]["points_file"]
    size = points_path.stat().st_size if points_path.is_file() else 0
    points = np.memmap(points_path, dtype=np.float32, mode="r").reshape(-1, 5) if size else np.zeros((0, 5), np.float32)
    return db, points
