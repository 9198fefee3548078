"""Writes a synthetic world in the nuScenes format: tables as JSON, LiDAR sweeps as .pcd.bin, and nuScenes-lidarseg
labels of every key frame (``lidarseg/<version>/<token>_lidarseg.bin``, listed by ``lidarseg.json``).

``nuscenes.NuScenes(version, dataroot)`` reads the result unchanged, and the
devkit's detection, tracking and lidarseg evaluations run on it (scene names come
from the devkit's own split lists).
"""
from __future__ import annotations

import hashlib
import io
import json
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from nuscenes.utils import splits
from PIL import Image
from tqdm import tqdm

from ...utils.io import atomic_write
from ...version import __version__
from ..lidarseg import LIDARSEG_CATEGORIES
from .layout import ANNOTATION_RANGE, CLASS_SPECS, CYCLES, VEHICLES, SceneLayout, build_scene
from .lidar import LidarModel
from .scan import (LIDAR_ROTATION, LIDAR_TRANSLATION, annotation_boxes, count_points_in_annotations, ego2global,
                   lidar2ego, objects_near, simulate_sweep, yaw_quaternion)

VERSIONS = ("v1.0-mini", "v1.0-trainval")
FIRST_TIMESTAMP = 1532402927647951  # µs; scenes start an hour apart
LOCATIONS = ("singapore-onenorth", "boston-seaport", "singapore-queenstown", "singapore-hollandvillage")
ATTRIBUTES = {
    "vehicle.moving": "Vehicle is moving.",
    "vehicle.stopped": "Vehicle, with a driver/rider in/on it, is currently stationary but has an intent to move.",
    "vehicle.parked": "Vehicle is stationary (usually for longer duration) with no immediate intent to move.",
    "cycle.with_rider": "There is a rider on the bicycle or motorcycle.",
    "cycle.without_rider": "There is NO rider on the bicycle or motorcycle.",
    "pedestrian.sitting_lying_down": "The human is sitting or lying down.",
    "pedestrian.standing": "The human is standing.",
    "pedestrian.moving": "The human is moving.",
}
VISIBILITY = (("1", "v0-40", 0.4), ("2", "v40-60", 0.6), ("3", "v60-80", 0.8), ("4", "v80-100", 1.01))
STAMP = "synthetic_world.json"  # written last: marks a complete world and the arguments that made it
WORLD_FORMAT = 2  # 2: with lidarseg; a world stamped with an older format is written again


def scene_names(version: str, n_scenes: Optional[int], n_val: Optional[int] = None) -> List[Tuple[str, str]]:
    """(name, split) of the scenes to write, from the devkit's official split lists: about 4 train to 1 val, or
    ``n_val`` val scenes (the devkit's lidarseg evaluation needs every scene of its split)."""
    if version not in VERSIONS:
        raise ValueError(f"--version must be one of {VERSIONS}, got {version!r}")
    train, val = (splits.mini_train, splits.mini_val) if version == "v1.0-mini" else (splits.train, splits.val)
    total = len(train) + len(val)
    n = total if n_scenes is None else n_scenes
    if not 1 <= n <= total:
        raise ValueError(f"--scenes must be between 1 and {total} for {version}, got {n}")
    if n_val is None:
        n_val = min(len(val), max(1 if n >= 2 else 0, round(n * len(val) / total)))
    elif not 0 <= n_val <= min(n, len(val)) or n - n_val > len(train):
        raise ValueError(f"--val-scenes must be between {max(0, n - len(train))} and {min(n, len(val))} for "
                         f"{n} scenes of {version}, got {n_val}")
    return [(s, "train") for s in train[: n - n_val]] + [(s, "val") for s in val[:n_val]]


def _token(seed: int, *parts) -> str:
    return hashlib.md5("/".join(map(str, (seed,) + parts)).encode()).hexdigest()


@dataclass(frozen=True)
class _SceneSpec:
    seed: int
    index: int
    name: str

    @property
    def logfile(self) -> str:
        return f"synthetic-{self.seed}-{self.index:04d}"

    def layout(self) -> SceneLayout:
        rng = np.random.default_rng([self.seed, self.index, 0])
        origin = np.array([300.0 + 1500.0 * (self.index % 7), 800.0 + 1500.0 * (self.index // 7)])
        return build_scene(rng, origin)

    def timestamps(self, layout: SceneLayout) -> np.ndarray:
        start = FIRST_TIMESTAMP + self.index * 3_600_000_000
        return start + np.round(layout.times * 1e6).astype(np.int64)

    def ground_reflectivity(self) -> float:
        return float(np.random.default_rng([self.seed, self.index, 1]).uniform(8.0, 14.0))

    def sample_data_token(self, frame: int) -> str:
        return _token(self.seed, "sample_data", self.index, frame)

    def filename(self, timestamp: int, key: bool) -> str:
        folder = "samples" if key else "sweeps"
        return f"{folder}/LIDAR_TOP/{self.logfile}__LIDAR_TOP__{timestamp}.pcd.bin"


_LAYOUTS: Dict[_SceneSpec, SceneLayout] = {}


def _layout(spec: _SceneSpec) -> SceneLayout:
    if spec not in _LAYOUTS:
        _LAYOUTS.clear()  # one scene at a time per process
        _LAYOUTS[spec] = spec.layout()
    return _LAYOUTS[spec]


def _simulate_frames(task) -> Tuple[str, int, list]:
    """Worker: ray-casts and writes frames of one scene; for key frames returns per-object points and visibility."""
    spec, root, version, frames = task
    layout = _layout(spec)
    stamps = spec.timestamps(layout)
    key = set(layout.key_frames.tolist())
    model = LidarModel()
    l2e = lidar2ego()
    out = []
    for f in frames:
        is_key = f in key
        sweep = simulate_sweep(layout, f, model, np.random.default_rng([spec.seed, spec.index, 2, f]),
                               spec.ground_reflectivity(), count_unoccluded=is_key)
        path = Path(root) / spec.filename(int(stamps[f]), is_key)
        atomic_write(path, sweep.points.tobytes())
        if is_key:
            atomic_write(Path(root) / lidarseg_filename(version, spec.sample_data_token(f)), sweep.labels.tobytes())
            objs = objects_near(layout, f, ANNOTATION_RANGE)
            boxes = annotation_boxes(layout, f, objs)
            counts = count_points_in_annotations(sweep.points, ego2global(layout, f) @ l2e, boxes)
            hits = np.bincount(sweep.owner[sweep.owner >= 0], minlength=len(layout.objects))
            seen = [(int(o), int(n), _visibility(hits[o], sweep.unoccluded[o])) for o, n in zip(objs, counts)]
            out.append((f, seen))
    return spec.name, len(frames), out


def lidarseg_filename(version: str, sample_data_token: str) -> str:
    """Where nuScenes-lidarseg keeps the labels of a key frame, relative to the data root."""
    return f"lidarseg/{version}/{sample_data_token}_lidarseg.bin"


def _visibility(hits: int, unoccluded: int) -> str:
    frac = hits / unoccluded if unoccluded > 0 else 0.0
    return next(token for token, _, upper in VISIBILITY if frac < upper)


def _attribute(obj, speed: float) -> Optional[str]:
    if obj.cls in VEHICLES:
        return "vehicle.moving" if speed > 0.5 else ("vehicle.parked" if obj.parked else "vehicle.stopped")
    if obj.cls in CYCLES:
        return "cycle.with_rider" if obj.rider else "cycle.without_rider"
    if obj.cls == "pedestrian":
        return "pedestrian.moving" if speed > 0.3 else "pedestrian.standing"
    return None


class _Tables:
    """Accumulates the nuScenes tables of a world."""

    def __init__(self, seed: int, version: str):
        self.seed, self.version = seed, version
        self.t = {name: [] for name in ("category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor",
                                        "ego_pose", "log", "scene", "sample", "sample_data", "sample_annotation", "map",
                                        "lidarseg")}
        # nuScenes-lidarseg's category table: all 32 categories with their ``index``
        detection_class = {name: cls for cls, (_, cats) in CLASS_SPECS.items() for name, _ in cats}
        self.category = {}
        for index, name in enumerate(LIDARSEG_CATEGORIES):
            self.category[name] = self.tok("category", name)
            what = f" ({detection_class[name]})" if name in detection_class else ""
            self.t["category"].append({"token": self.category[name], "name": name, "index": index,
                                       "description": f"synthetic {name}{what}"})
        self.attribute = {name: self.tok("attribute", name) for name in ATTRIBUTES}
        self.t["attribute"] = [{"token": self.attribute[n], "name": n, "description": d} for n, d in ATTRIBUTES.items()]
        self.t["visibility"] = [{"token": tok, "level": level, "description": f"visibility of whole object is {level}"}
                                for tok, level, _ in VISIBILITY]
        self.sensor = self.tok("sensor", "LIDAR_TOP")
        self.t["sensor"].append({"token": self.sensor, "channel": "LIDAR_TOP", "modality": "lidar"})
        self.maps: Dict[str, list] = {}

    def tok(self, *parts) -> str:
        return _token(self.seed, *parts)

    def add_scene(self, spec: _SceneSpec, layout: SceneLayout, seen: Dict[int, list]) -> int:
        """Adds one scene with its log, samples, sweeps, poses and annotations; returns its annotation count."""
        t, tok = self.t, self.tok
        stamps = spec.timestamps(layout)
        location = LOCATIONS[spec.index % len(LOCATIONS)]
        log = tok("log", spec.index)
        t["log"].append({"token": log, "logfile": spec.logfile, "vehicle": "synthetic", "location": location,
                         "date_captured": "2018-07-24"})
        self.maps.setdefault(location, []).append(log)
        calib = tok("calibrated_sensor", spec.index)
        t["calibrated_sensor"].append({"token": calib, "sensor_token": self.sensor, "camera_intrinsic": [],
                                       "translation": list(LIDAR_TRANSLATION), "rotation": list(LIDAR_ROTATION)})
        keys = layout.key_frames
        samples = [tok("sample", spec.index, f) for f in keys]
        scene = tok("scene", spec.index)
        for j, f in enumerate(keys):
            t["sample"].append({"token": samples[j], "timestamp": int(stamps[f]), "scene_token": scene,
                                "prev": samples[j - 1] if j else "", "next": samples[j + 1] if j + 1 < len(keys) else ""})
        t["scene"].append({"token": scene, "log_token": log, "nbr_samples": len(keys), "name": spec.name,
                           "first_sample_token": samples[0], "last_sample_token": samples[-1],
                           "description": "synthetic street, perception3d"})
        frames = np.arange(len(layout.times))
        data = [tok("sample_data", spec.index, f) for f in frames]
        nearest_key = np.clip(np.round((frames - keys[0]) / (keys[1] - keys[0])).astype(int), 0, len(keys) - 1)
        key_set = set(keys.tolist())
        for f in frames:
            ego = ego2global(layout, f)
            t["ego_pose"].append({"token": data[f], "timestamp": int(stamps[f]), "translation": ego[:3, 3].tolist(),
                                  "rotation": yaw_quaternion(layout.ego_yaw[f])})
            t["sample_data"].append({
                "token": data[f], "sample_token": samples[nearest_key[f]], "ego_pose_token": data[f],
                "calibrated_sensor_token": calib, "timestamp": int(stamps[f]), "fileformat": "pcd",
                "is_key_frame": bool(f in key_set), "height": 0, "width": 0,
                "filename": spec.filename(int(stamps[f]), f in key_set),
                "prev": data[f - 1] if f else "", "next": data[f + 1] if f + 1 < len(frames) else ""})
            if f in key_set:  # nuScenes-lidarseg keys a label file by its sample_data token
                t["lidarseg"].append({"token": data[f], "sample_data_token": data[f],
                                      "filename": lidarseg_filename(self.version, data[f])})
        # annotations, linked per instance over key frames
        per_object: Dict[int, list] = {}
        for j, f in enumerate(keys):
            for o, n_pts, vis in seen[int(f)]:
                per_object.setdefault(o, []).append((j, f, n_pts, vis))
        n_ann = 0
        for o, anns in sorted(per_object.items()):
            obj = layout.objects[o]
            inst = tok("instance", spec.index, o)
            ann_tokens = [tok("sample_annotation", spec.index, o, j) for j, *_ in anns]
            for k, (j, f, n_pts, vis) in enumerate(anns):
                attr = _attribute(obj, float(obj.speed[f]))
                w_l_h = [float(obj.size[1]), float(obj.size[0]), float(obj.size[2])]
                t["sample_annotation"].append({
                    "token": ann_tokens[k], "sample_token": samples[j], "instance_token": inst,
                    "visibility_token": vis, "attribute_tokens": [self.attribute[attr]] if attr else [],
                    "translation": [float(obj.xy[f, 0]), float(obj.xy[f, 1]), float(obj.size[2] / 2)],
                    "size": w_l_h, "rotation": yaw_quaternion(float(obj.yaw[f])),
                    "prev": ann_tokens[k - 1] if k else "", "next": ann_tokens[k + 1] if k + 1 < len(anns) else "",
                    "num_lidar_pts": n_pts, "num_radar_pts": 0})
            t["instance"].append({"token": inst, "category_token": self.category[obj.category],
                                  "nbr_annotations": len(anns), "first_annotation_token": ann_tokens[0],
                                  "last_annotation_token": ann_tokens[-1]})
            n_ann += len(anns)
        return n_ann

    def write(self, root: Path, version: str) -> None:
        """Writes the tables to ``root/version`` and one map mask per location (a blank placeholder: the
        devkit opens it at load time; the synthetic streets have no semantic map)."""
        self.t["map"] = [{"token": self.tok("map", loc), "log_tokens": logs, "category": "semantic_prior",
                          "filename": f"maps/{self.tok('map', loc)}.png"} for loc, logs in self.maps.items()]
        for record in self.t["map"]:
            png = io.BytesIO()
            Image.new("L", (64, 64), 0).save(png, format="PNG")
            atomic_write(root / record["filename"], png.getvalue())
        for name, rows in self.t.items():
            atomic_write(root / version / f"{name}.json", json.dumps(rows).encode())


def create_synthetic_world(out: str, version: str = "v1.0-mini", n_scenes: Optional[int] = None, seed: int = 0,
                           workers: Optional[int] = None, progress: bool = True, n_val: Optional[int] = None) -> dict:
    """Writes the world under ``out`` and returns a summary; a complete world made with the same arguments is kept.
    ``n_val``: how many of the ``n_scenes`` are val scenes (default about 1 in 5)."""
    names = scene_names(version, n_scenes, n_val)
    root = Path(out)
    table_dir = root / version
    request = {"generator": __version__, "format": WORLD_FORMAT, "version": version, "scenes": [n for n, _ in names], "seed": seed}
    stamp = table_dir / STAMP
    if stamp.exists():
        summary = json.loads(stamp.read_text())
        if summary.get("request") == request:
            summary["reused"] = True
            return summary

    started = time.time()
    specs = [_SceneSpec(seed, i, name) for i, (name, _) in enumerate(names)]
    n_frames = len(_layout(specs[0]).times)
    chunk = 41
    tasks = [(spec, str(root), version, list(range(a, min(a + chunk, n_frames)))) for spec in specs
             for a in range(0, n_frames, chunk)]
    for folder in ("samples/LIDAR_TOP", "sweeps/LIDAR_TOP", f"lidarseg/{version}"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for stale in (root / "lidarseg" / version).glob("*_lidarseg.bin"):  # the devkit counts every label file
        stale.unlink()
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    seen: Dict[str, Dict[int, list]] = {spec.name: {} for spec in specs}
    bar = tqdm(total=len(specs) * n_frames, desc=f"ray-casting {len(specs)} scenes", unit="sweep", disable=not progress)
    if workers == 1:
        results = map(_simulate_frames, tasks)
        pool = None
    else:
        pool = mp.get_context("fork").Pool(workers)
        results = pool.imap_unordered(_simulate_frames, tasks)
    try:
        for name, n_done, key_frames in results:
            seen[name].update(dict(key_frames))
            bar.update(n_done)
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()

    tables = _Tables(seed, version)
    n_ann = sum(tables.add_scene(spec, _layout(spec), seen[spec.name]) for spec in specs)
    tables.write(root, version)
    summary = {
        "request": request, "dataroot": str(root), "splits": {s: sum(1 for _, x in names if x == s) for s in ("train", "val")},
        "samples": len(tables.t["sample"]), "sweeps": len(tables.t["sample_data"]), "annotations": n_ann,
        "instances": len(tables.t["instance"]), "lidarseg": len(tables.t["lidarseg"]), "seconds": round(time.time() - started, 1), "reused": False,
    }
    atomic_write(stamp, json.dumps(summary, indent=1).encode())
    return summary
