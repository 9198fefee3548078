"""Detections in a sample's LiDAR frame → nuScenes submission records in the global frame (devkit format)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from ..structures import boxes_to_devkit, transform_boxes

SUBMISSION_META = {"use_camera": False, "use_lidar": True, "use_radar": False, "use_map": False,
                   "use_external": False}
VEHICLES = ("car", "truck", "bus", "trailer", "construction_vehicle")
CYCLES = ("motorcycle", "bicycle")
MOVING_SPEED = 0.2  # m/s: above it a vehicle is moving, a cycle has a rider, as the nuScenes baselines decide


def attribute_from_velocity(name: str, speed: float) -> str:
    """The devkit attribute of a detection of class ``name`` moving at ``speed`` m/s ('' for barrier, cone)."""
    moving = speed > MOVING_SPEED
    if name in VEHICLES:
        if moving:
            return "vehicle.moving"
        return "vehicle.stopped" if name == "bus" else "vehicle.parked"
    if name in CYCLES:
        return "cycle.with_rider" if moving else "cycle.without_rider"
    if name == "pedestrian":
        return "pedestrian.moving" if moving else "pedestrian.standing"
    return ""


def ranked_detections(det, score_thr: float = 0.0, limit: Optional[int] = None) -> Dict[str, np.ndarray]:
    """A model's Detections as numpy arrays (``boxes``, ``scores``, ``labels``, ``voxel_xy``), by falling score
    (ties kept in order), those below ``score_thr`` left out, at most ``limit``."""
    scores = det.scores.detach().cpu().numpy()
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] >= score_thr][:limit]
    return {"boxes": det.boxes.detach().cpu().numpy()[order], "scores": scores[order],
            "labels": det.labels.cpu().numpy()[order].astype(np.int64), "voxel_xy": det.voxel_xy.detach().cpu().numpy()[order]}


def lidar_to_global(boxes: np.ndarray, lidar2ego: np.ndarray, ego2global: np.ndarray,
                    aug_matrix: np.ndarray = None) -> np.ndarray:
    """(N, 9) boxes in a sample's (augmented) LiDAR frame → the global frame; ``aug_matrix`` (4, 4) is undone
    first (it maps the original LiDAR frame into the augmented one)."""
    if aug_matrix is not None and not np.allclose(aug_matrix, np.eye(4)):
        boxes = transform_boxes(np.linalg.inv(aug_matrix), boxes)
    return transform_boxes(ego2global @ lidar2ego, boxes)


def box_records(token: str, boxes: np.ndarray) -> List[Dict]:
    """The fields every devkit submission record shares (sample_token, translation, size, rotation, velocity),
    one dict per global-frame (N, 9) box."""
    return [{"sample_token": token, "translation": box.center.tolist(), "size": box.wlh.tolist(),
             "rotation": box.orientation.elements.tolist(), "velocity": [float(v) for v in box.velocity[:2]]}
            for box in boxes_to_devkit(np.asarray(boxes).reshape(-1, 9))]


def detection_records(token: str, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                      classes: Sequence[str]) -> List[Dict]:
    """Devkit detection records of one sample from global-frame (N, 9) boxes, (N,) scores and class indices."""
    records = []
    for record, score, label in zip(box_records(token, boxes), scores, labels):
        name = classes[int(label)]
        velocity = record["velocity"]
        records.append({
            **record,
            "detection_name": name,
            "detection_score": float(score),
            "attribute_name": attribute_from_velocity(name, float(np.hypot(*velocity))),
        })
    return records
