"""A full-val-size evaluation case for ``tools/benchmark.py eval``: nuScenes tables (no point files) of the first
``n_scenes`` scenes of the val split, objects moving through them, and noisy detection and tracking
submissions of those objects."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Dict, List

import numpy as np

from ...utils.io import atomic_write

# detection class → (nuScenes category, typical w, l, h in m, share of objects, speed when moving in m/s)
CLASSES = {
    "car": ("vehicle.car", (1.9, 4.6, 1.7), 0.40, 8.0),
    "truck": ("vehicle.truck", (2.5, 7.0, 2.9), 0.08, 7.0),
    "bus": ("vehicle.bus.rigid", (2.9, 11.0, 3.5), 0.02, 7.0),
    "trailer": ("vehicle.trailer", (2.3, 12.0, 3.8), 0.02, 6.0),
    "construction_vehicle": ("vehicle.construction", (2.8, 6.4, 3.2), 0.02, 2.0),
    "pedestrian": ("human.pedestrian.adult", (0.7, 0.7, 1.8), 0.20, 1.3),
    "motorcycle": ("vehicle.motorcycle", (0.8, 2.1, 1.5), 0.02, 6.0),
    "bicycle": ("vehicle.bicycle", (0.6, 1.7, 1.3), 0.02, 4.0),
    "traffic_cone": ("movable_object.trafficcone", (0.4, 0.4, 1.0), 0.10, 0.0),
    "barrier": ("movable_object.barrier", (2.5, 0.5, 1.0), 0.12, 0.0),
}
ATTRIBUTES = ["pedestrian.moving", "pedestrian.sitting_lying_down", "pedestrian.standing", "cycle.with_rider",
              "cycle.without_rider", "vehicle.moving", "vehicle.parked", "vehicle.stopped"]


def _tok(*parts) -> str:
    return hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()


def _attribute(name: str, moving: bool) -> str:
    if name in ("pedestrian",):
        return "pedestrian.moving" if moving else "pedestrian.standing"
    if name in ("bicycle", "motorcycle"):
        return "cycle.with_rider" if moving else "cycle.without_rider"
    if name in ("traffic_cone", "barrier"):
        return ""
    return "vehicle.moving" if moving else "vehicle.parked"


def _quaternion(yaw: float) -> List[float]:
    return [float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2))]


def write_eval_tables(root: str, n_scenes: int = 150, n_frames: int = 40, objects_per_frame: int = 30,
                      seed: int = 0) -> str:
    """Writes ``root/v1.0-trainval`` tables: the first ``n_scenes`` val scenes of ``n_frames`` key frames each
    (0.5 s apart, the ego driving at 5 m/s), about ``objects_per_frame`` annotated objects per frame
    (tracks that start late and end early, a tenth of the annotations without points). → the version."""
    from nuscenes.utils.splits import create_splits_scenes
    from PIL import Image

    rng = np.random.default_rng(seed)
    version = "v1.0-trainval"
    names = list(CLASSES)
    share = np.array([CLASSES[n][2] for n in names])
    t: Dict[str, list] = {k: [] for k in ("category", "attribute", "visibility", "instance", "sensor",
                                          "calibrated_sensor", "ego_pose", "log", "scene", "sample",
                                          "sample_data", "sample_annotation", "map")}
    t["category"] = [{"token": _tok("cat", c[0]), "name": c[0], "description": ""} for c in CLASSES.values()]
    t["attribute"] = [{"token": _tok("attr", a), "name": a, "description": ""} for a in ATTRIBUTES]
    t["visibility"] = [{"token": "4", "level": "v80-100", "description": ""}]
    t["sensor"] = [{"token": _tok("sensor"), "channel": "LIDAR_TOP", "modality": "lidar"}]
    t["calibrated_sensor"] = [{"token": _tok("cs"), "sensor_token": _tok("sensor"), "translation": [0.9, 0, 1.8],
                               "rotation": [1.0, 0, 0, 0], "camera_intrinsic": []}]
    t["log"] = [{"token": _tok("log"), "logfile": "bench", "vehicle": "bench", "date_captured": "2026-11-30",
                 "location": "bench"}]
    t["map"] = [{"token": _tok("map"), "log_tokens": [_tok("log")], "category": "semantic_prior",
                 "filename": "maps/bench.png"}]
    for s, scene_name in enumerate(create_splits_scenes()["val"][:n_scenes]):
        start = 1_500_000_000_000_000 + s * 10 ** 9
        stamps = [start + f * 500_000 for f in range(n_frames)]
        samples = [_tok("sample", s, f) for f in range(n_frames)]
        for f, token in enumerate(samples):
            ego = [5.0 * 0.5 * f, 0.0, 0.0]
            t["ego_pose"].append({"token": _tok("ego", s, f), "translation": ego, "rotation": [1.0, 0, 0, 0],
                                  "timestamp": stamps[f]})
            t["sample"].append({"token": token, "timestamp": stamps[f], "scene_token": _tok("scene", s),
                                "prev": samples[f - 1] if f else "",
                                "next": samples[f + 1] if f + 1 < n_frames else ""})
            t["sample_data"].append({"token": _tok("sd", s, f), "sample_token": token,
                                     "ego_pose_token": _tok("ego", s, f), "calibrated_sensor_token": _tok("cs"),
                                     "timestamp": stamps[f], "fileformat": "pcd", "is_key_frame": True,
                                     "height": 0, "width": 0,
                                     "filename": f"samples/LIDAR_TOP/{token}.pcd.bin", "prev": "", "next": ""})
        t["scene"].append({"token": _tok("scene", s), "log_token": _tok("log"), "nbr_samples": n_frames,
                           "first_sample_token": samples[0], "last_sample_token": samples[-1], "name": scene_name,
                           "description": ""})
        n_objects = int(objects_per_frame * 3.0)  # a third of each object's life falls in the scene
        for o in range(n_objects):
            name = names[rng.choice(len(names), p=share / share.sum())]
            category, wlh, _, speed = CLASSES[name]
            first = int(rng.integers(-n_frames // 2, n_frames))
            span = int(rng.integers(3, n_frames))
            frames = [f for f in range(max(first, 0), min(first + span, n_frames))]
            if not frames:
                continue
            moving = speed > 0 and rng.random() < 0.5
            yaw = rng.uniform(-np.pi, np.pi)
            v = np.array([np.cos(yaw), np.sin(yaw), 0.0]) * (speed * rng.uniform(0.5, 1.5) if moving else 0.0)
            p0 = np.array([rng.uniform(-45, 45) + 2.5 * frames[0], rng.uniform(-45, 45), rng.uniform(0, 2)])
            size = (np.asarray(wlh) * rng.uniform(0.85, 1.15, 3)).round(3).tolist()
            inst = _tok("inst", s, o)
            anns = [_tok("ann", s, o, f) for f in frames]
            attr = _attribute(name, moving)
            for k, f in enumerate(frames):
                n_pts = 0 if rng.random() < 0.1 else int(rng.integers(1, 300))
                t["sample_annotation"].append({
                    "token": anns[k], "sample_token": samples[f], "instance_token": inst, "visibility_token": "4",
                    "attribute_tokens": [_tok("attr", attr)] if attr else [],
                    "translation": (p0 + v * 0.5 * (f - frames[0])).round(3).tolist(), "size": size,
                    "rotation": _quaternion(yaw), "prev": anns[k - 1] if k else "",
                    "next": anns[k + 1] if k + 1 < len(anns) else "", "num_lidar_pts": n_pts, "num_radar_pts": 0})
            t["instance"].append({"token": inst, "category_token": _tok("cat", category), "nbr_annotations": len(anns),
                                  "first_annotation_token": anns[0], "last_annotation_token": anns[-1]})
    png = io.BytesIO()
    Image.new("L", (8, 8), 0).save(png, format="PNG")
    atomic_write(Path(root) / "maps" / "bench.png", png.getvalue())
    for name, rows in t.items():
        atomic_write(Path(root) / version / f"{name}.json", json.dumps(rows).encode())
    return version


def _noisy(ann: dict, rng, sigma: float) -> dict:
    yaw = 2 * np.arctan2(ann["rotation"][3], ann["rotation"][0]) + rng.normal(0, 0.3)
    return {"sample_token": ann["sample_token"],
            "translation": (np.asarray(ann["translation"]) + rng.normal(0, sigma, 3)).tolist(),
            "size": (np.asarray(ann["size"]) * rng.uniform(0.8, 1.2, 3)).tolist(), "rotation": _quaternion(yaw),
            "velocity": rng.normal(0, 1.0, 2).tolist()}


def detection_submission(nusc, eval_set: str, boxes_per_sample: int = 300, seed: int = 0) -> dict:
    """A devkit detection submission of every sample of ``eval_set``: each annotated object found with
    probability 0.85 (jittered by 0.5 m), the rest of the ``boxes_per_sample`` false positives within 60 m,
    uniform random scores."""
    from nuscenes.eval.detection.utils import category_to_detection_name

    from ..splits import split_sample_tokens

    rng = np.random.default_rng(seed)
    names = list(CLASSES)
    results = {}
    for token in sorted(split_sample_tokens(nusc, eval_set)):
        sample = nusc.get("sample", token)
        ego = np.asarray(nusc.get("ego_pose", nusc.get("sample_data", sample["data"]["LIDAR_TOP"])["ego_pose_token"])
                         ["translation"])
        boxes = []
        for ann in (nusc.get("sample_annotation", a) for a in sample["anns"]):
            name = category_to_detection_name(ann["category_name"])
            if name and rng.random() < 0.85:
                boxes.append({**_noisy(ann, rng, 0.5), "detection_name": name})
        while len(boxes) < boxes_per_sample:
            name = names[rng.integers(len(names))]
            wlh = CLASSES[name][1]
            boxes.append({"sample_token": token, "translation": (ego + rng.uniform(-60, 60, 3)).tolist(),
                          "size": list(wlh), "rotation": _quaternion(rng.uniform(-np.pi, np.pi)),
                          "velocity": rng.normal(0, 2, 2).tolist(), "detection_name": name})
        for box, score in zip(boxes[:boxes_per_sample], rng.random(boxes_per_sample)):
            box["detection_score"] = float(score)
            box["attribute_name"] = _attribute(box["detection_name"], rng.random() < 0.5)
        results[token] = boxes[:boxes_per_sample]
    return {"meta": {"use_camera": False, "use_lidar": True, "use_radar": False, "use_map": False,
                     "use_external": False}, "results": results}


def tracking_submission(nusc, eval_set: str, false_tracks_per_scene: int = 40, seed: int = 0) -> dict:
    """A devkit tracking submission of ``eval_set``: each annotated object of a tracking class tracked with
    0.5 m noise, missed in a tenth of its frames (fragments), its id switched once in a fifth of the tracks,
    plus short false tracks; a score per track."""
    from nuscenes.eval.tracking.utils import category_to_tracking_name

    from ..splits import split_sample_tokens

    rng = np.random.default_rng(seed)
    tokens = split_sample_tokens(nusc, eval_set)
    results: Dict[str, list] = {t: [] for t in sorted(tokens)}
    scenes = {nusc.get("sample", t)["scene_token"] for t in tokens}
    tracking_names = ["bicycle", "bus", "car", "motorcycle", "pedestrian", "trailer", "truck"]
    for scene_token in sorted(scenes):
        scene = nusc.get("scene", scene_token)
        chain, token = [], scene["first_sample_token"]
        while token:
            chain.append(token)
            token = nusc.get("sample", token)["next"]
        by_instance: Dict[str, list] = {}
        for token in chain:
            for ann in (nusc.get("sample_annotation", a) for a in nusc.get("sample", token)["anns"]):
                if category_to_tracking_name(ann["category_name"]):
                    by_instance.setdefault(ann["instance_token"], []).append(ann)
        for inst, anns in by_instance.items():
            score = float(rng.uniform(0.2, 1.0))
            switch = int(rng.integers(1, len(anns))) if len(anns) > 1 and rng.random() < 0.2 else len(anns)
            name = category_to_tracking_name(anns[0]["category_name"])
            for k, ann in enumerate(anns):
                if rng.random() < 0.1:
                    continue
                results[ann["sample_token"]].append({
                    **_noisy(ann, rng, 0.5), "tracking_name": name, "tracking_score": score,
                    "tracking_id": f"{inst}_{int(k >= switch)}"})
        for f in range(false_tracks_per_scene):
            start = int(rng.integers(len(chain)))
            name = tracking_names[rng.integers(len(tracking_names))]
            xy = np.array([rng.uniform(-50, 150), rng.uniform(-50, 50), 1.0])
            for token in chain[start:start + int(rng.integers(1, 8))]:
                results[token].append({"sample_token": token, "translation": xy.tolist(), "size": [2.0, 4.0, 1.6],
                                       "rotation": [1.0, 0, 0, 0], "velocity": [0.0, 0.0], "tracking_name": name,
                                       "tracking_score": 0.3, "tracking_id": f"{scene_token}_false_{f}"})
    return {"meta": {"use_camera": False, "use_lidar": True, "use_radar": False, "use_map": False,
                     "use_external": False}, "results": results}
