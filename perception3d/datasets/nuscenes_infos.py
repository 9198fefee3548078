"""Info files of a nuScenes-format root: one record per key frame, made in one pass over the devkit tables.

``nuscenes_infos_{split}.pkl`` holds ``{"metainfo": {...}, "data_list": [info, ...]}``; an info is a dict with

- ``token``, ``scene_token``, ``scene_name``, ``timestamp`` (µs);
- ``lidar_path`` (relative to the data root), ``lidar_token`` (its sample_data token), ``lidar2ego`` and
  ``ego2global`` (float64 (4, 4));
- ``lidarseg_path``: the key frame's nuScenes-lidarseg label file (relative to the data root), None where the
  root has no lidarseg;
- ``sweeps``: up to ``max_sweeps`` earlier LiDAR sweeps, newest first, each
  ``{"lidar_path", "timestamp", "sweep2lidar" (4, 4) into the key frame's LiDAR frame, "time_lag" (s)}``;
- ``gt_boxes`` float32 (M, 9) in the key frame's LiDAR frame (velocity NaN → 0), ``gt_names`` (M,) str,
  ``num_lidar_pts`` int32 (M,), ``instance_tokens`` (M,) str; only the ten detection classes.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import pickle
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
from nuscenes.eval.detection.utils import category_to_detection_name
from nuscenes.utils import splits
from tqdm import tqdm

from ..structures import invert_pose, quaternions_to_yaw, record_pose, transform_boxes
from ..utils.io import atomic_pickle
from ..version import __version__

INFO_FORMAT_VERSION = 2  # 2: lidar_token and lidarseg_path
SPLITS = {"v1.0-mini": ("mini_train", "mini_val"), "v1.0-trainval": ("train", "val"), "v1.0-test": ("test",)}


def info_path(root: str, split: str) -> Path:
    """Where the infos of ``split`` (train, val or test) of a data root live."""
    return Path(root) / f"nuscenes_infos_{split}.pkl"


def load_infos(path: str) -> dict:
    """Loads an info file, refusing a missing one or one of another format version with how to regenerate it."""
    path = Path(path)
    regenerate = f"python tools/create_data.py nuscenes --root {path.parent} --version <version>"
    if not path.is_file():
        raise FileNotFoundError(f"info file {path} does not exist; create it with: {regenerate}")
    with open(path, "rb") as f:
        infos = pickle.load(f)
    version = infos.get("metainfo", {}).get("format_version") if isinstance(infos, dict) else None
    if version != INFO_FORMAT_VERSION:
        raise ValueError(f"info file {path} has format version {version!r}, this perception3d reads version "
                         f"{INFO_FORMAT_VERSION}; regenerate it with: {regenerate}")
    return infos


_NUSC = None  # the devkit's NuScenes of the current pass, shared with forked workers


def _lidarseg_path(nusc, sample_data_token: str) -> Optional[str]:
    if not hasattr(nusc, "lidarseg"):
        return None
    try:
        return nusc.get("lidarseg", sample_data_token)["filename"]
    except KeyError:
        return None


def check_lidarseg_categories(nusc) -> None:
    """Refuses a root whose lidarseg ``category.json`` numbers the categories otherwise than nuScenes-lidarseg
    (``LoadPointLabels`` maps the indices of the label files through that numbering)."""
    from .lidarseg import CATEGORY_INDEX

    if not hasattr(nusc, "lidarseg"):
        return
    wrong = {name: index for name, index in nusc.lidarseg_name2idx_mapping.items() if CATEGORY_INDEX.get(name) != index}
    if wrong:
        raise ValueError(f"{nusc.dataroot}/{nusc.version}/category.json numbers lidarseg categories otherwise than "
                         f"nuScenes-lidarseg: {wrong} (expected {({n: CATEGORY_INDEX.get(n) for n in wrong})})")


def _sample_info(sample_token: str, max_sweeps: int, with_gt: bool) -> dict:
    nusc = _NUSC
    sample = nusc.get("sample", sample_token)
    sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
    lidar2ego = record_pose(nusc.get("calibrated_sensor", sd["calibrated_sensor_token"]))
    ego2global = record_pose(nusc.get("ego_pose", sd["ego_pose_token"]))
    global2lidar = invert_pose(ego2global @ lidar2ego)
    scene = nusc.get("scene", sample["scene_token"])
    info = {
        "token": sample_token, "scene_token": sample["scene_token"], "scene_name": scene["name"],
        "timestamp": sample["timestamp"], "lidar_path": sd["filename"], "lidar_token": sd["token"],
        "lidarseg_path": _lidarseg_path(nusc, sd["token"]),
        "lidar2ego": lidar2ego, "ego2global": ego2global, "sweeps": [],
    }
    prev = sd["prev"]
    while prev and len(info["sweeps"]) < max_sweeps:
        sweep = nusc.get("sample_data", prev)
        sweep2global = (record_pose(nusc.get("ego_pose", sweep["ego_pose_token"]))
                        @ record_pose(nusc.get("calibrated_sensor", sweep["calibrated_sensor_token"])))
        info["sweeps"].append({"lidar_path": sweep["filename"], "timestamp": sweep["timestamp"],
                               "sweep2lidar": global2lidar @ sweep2global,
                               "time_lag": (sd["timestamp"] - sweep["timestamp"]) * 1e-6})
        prev = sweep["prev"]
    if not with_gt:
        return info
    anns = [nusc.get("sample_annotation", t) for t in sample["anns"]]
    names = [category_to_detection_name(a["category_name"]) for a in anns]
    keep = [i for i, n in enumerate(names) if n is not None]
    boxes = np.zeros((len(keep), 9))
    if keep:
        boxes[:, 0:3] = [anns[i]["translation"] for i in keep]
        wlh = np.array([anns[i]["size"] for i in keep])
        boxes[:, 3:6] = wlh[:, [1, 0, 2]]
        boxes[:, 6] = quaternions_to_yaw(np.array([anns[i]["rotation"] for i in keep]))
        boxes[:, 7:9] = np.nan_to_num(np.array([nusc.box_velocity(anns[i]["token"])[:2] for i in keep]), nan=0.0)
        boxes = transform_boxes(global2lidar, boxes)
    info.update({
        "gt_boxes": boxes.astype(np.float32),
        "gt_names": np.array([names[i] for i in keep], dtype="<U20"),
        "num_lidar_pts": np.array([anns[i]["num_lidar_pts"] for i in keep], dtype=np.int32),
        "instance_tokens": np.array([anns[i]["instance_token"] for i in keep], dtype="<U32"),
    })
    return info


def _chunk_infos(args) -> List[dict]:
    tokens, max_sweeps, with_gt = args
    return [_sample_info(t, max_sweeps, with_gt) for t in tokens]


def collect_infos(nusc, max_sweeps: int = 10, workers: Optional[int] = None,
                  progress: bool = True) -> Dict[str, List[dict]]:
    """Infos of every key frame of ``nusc``, grouped by split name (train/val or test), in table order."""
    global _NUSC
    split_names = SPLITS.get(nusc.version)
    if split_names is None:
        raise ValueError(f"unknown nuScenes version {nusc.version!r}; expected one of {sorted(SPLITS)}")
    scene_split = {}
    official = splits.create_splits_scenes()
    for split in split_names:
        for name in official[split]:
            scene_split[name] = split.replace("mini_", "")
    with_gt = nusc.version != "v1.0-test"
    check_lidarseg_categories(nusc)
    tokens = [s["token"] for s in nusc.sample]
    chunks = [tokens[i:i + 64] for i in range(0, len(tokens), 64)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(chunks)))
    _NUSC = nusc
    results: List[dict] = []
    bar = tqdm(total=len(tokens), desc="infos", unit="sample", disable=not progress)
    try:
        if workers == 1:
            for chunk in chunks:
                results += _chunk_infos((chunk, max_sweeps, with_gt))
                bar.update(len(chunk))
        else:
            with mp.get_context("fork").Pool(workers) as pool:
                for infos in pool.imap(_chunk_infos, [(c, max_sweeps, with_gt) for c in chunks]):
                    results += infos
                    bar.update(len(infos))
    finally:
        bar.close()
        _NUSC = None
    grouped: Dict[str, List[dict]] = {s.replace("mini_", ""): [] for s in split_names}
    for info in results:
        split = scene_split.get(info["scene_name"])
        if split is not None:
            grouped[split].append(info)
    return grouped


def write_infos(root: str, version: str, grouped: Dict[str, List[dict]], max_sweeps: int) -> Dict[str, Path]:
    """Writes one info file per split atomically; returns their paths."""
    from .classes import CLASSES

    paths = {}
    for split, data_list in grouped.items():
        metainfo = {"format_version": INFO_FORMAT_VERSION, "version": version, "split": split,
                    "classes": CLASSES, "max_sweeps": max_sweeps, "created_by": f"perception3d {__version__}"}
        paths[split] = info_path(root, split)
        atomic_pickle(paths[split], {"metainfo": metainfo, "data_list": data_list})
    return paths
