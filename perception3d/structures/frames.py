"""Rigid transforms between the LiDAR, ego and global frames of nuScenes.

Poses are float64 (4, 4) matrices mapping points of a child frame into its
parent (``lidar2ego``, ``ego2global``), built from the devkit's records
(translation in m, rotation as a w, x, y, z quaternion).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from pyquaternion import Quaternion

from .boxes import check_boxes


def pose_matrix(translation: Sequence[float], rotation: Sequence[float]) -> np.ndarray:
    """(3,) translation + (4,) w, x, y, z quaternion → float64 (4, 4) pose."""
    pose = np.eye(4)
    pose[:3, :3] = Quaternion(rotation).rotation_matrix
    pose[:3, 3] = translation
    return pose


def record_pose(record: Mapping) -> np.ndarray:
    """Pose of a devkit ``calibrated_sensor`` or ``ego_pose`` record."""
    return pose_matrix(record["translation"], record["rotation"])


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """Inverse of a rigid (4, 4) pose."""
    inv = np.eye(4)
    rot = pose[:3, :3]
    inv[:3, :3] = rot.T
    inv[:3, 3] = -rot.T @ pose[:3, 3]
    return inv


def transform_points(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Applies ``pose`` to the x, y, z columns of (N, C) points; other columns are kept. Same dtype."""
    out = points.copy()
    rot = pose[:3, :3].astype(points.dtype)
    out[:, :3] = points[:, :3] @ rot.T + pose[:3, 3].astype(points.dtype)
    return out


def transform_boxes(pose: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Moves (N, 9) boxes by ``pose``: centres, headings (projected onto the new xy plane), velocities.

    ``pose`` is rigid or a similarity (uniform scale, reflection): sizes scale by the cube root of |det|.
    """
    boxes = check_boxes(boxes)
    rot = pose[:3, :3]
    out = boxes.copy()
    out[:, 3:6] = boxes[:, 3:6] * np.cbrt(abs(np.linalg.det(rot)))
    out[:, 0:3] = boxes[:, 0:3] @ rot.T + pose[:3, 3]
    heading = np.stack([np.cos(boxes[:, 6]), np.sin(boxes[:, 6]), np.zeros(len(boxes))], axis=1) @ rot.T
    out[:, 6] = np.arctan2(heading[:, 1], heading[:, 0])
    vel = np.concatenate([boxes[:, 7:9], np.zeros((len(boxes), 1))], axis=1) @ rot.T
    out[:, 7:9] = vel[:, :2]
    return out.astype(boxes.dtype)

