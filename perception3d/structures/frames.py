"""Rigid transforms between the LiDAR, ego and global frames of nuScenes.

Poses are float64 (4, 4) matrices mapping points of a child frame into its
parent (``lidar2ego``, ``ego2global``), built from the devkit's records
(translation in m, rotation as a w, x, y, z quaternion).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numba
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


@numba.njit(cache=True, nogil=True, inline="always")
def apply_pose_xyz(pose, x, y, z):
    """R · (x, y, z) + t of a float64 (4, 4) pose, in float64; for numba kernels moving points row by row."""
    return (pose[0, 0] * x + pose[0, 1] * y + pose[0, 2] * z + pose[0, 3],
            pose[1, 0] * x + pose[1, 1] * y + pose[1, 2] * z + pose[1, 3],
            pose[2, 0] * x + pose[2, 1] * y + pose[2, 2] * z + pose[2, 3])


@numba.njit(cache=True, nogil=True)
def _affine_xyz_inplace(points, pose):
    """points[:, :3] ← R · xyz + t, row by row in float64 (no (N, 3) temporaries)."""
    for i in range(points.shape[0]):
        points[i, 0], points[i, 1], points[i, 2] = apply_pose_xyz(
            pose, float(points[i, 0]), float(points[i, 1]), float(points[i, 2]))


def transform_points(pose: np.ndarray, points: np.ndarray, inplace: bool = False) -> np.ndarray:
    """Applies the (4, 4) ``pose`` to the x, y, z columns of float (N, C) points; other columns are kept.

    Returns a new array of the same dtype, or ``points`` itself, overwritten, with ``inplace=True``.
    """
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"points must be (N, C >= 3), got shape {points.shape}")
    out = points if inplace else points.copy()
    _affine_xyz_inplace(out, np.ascontiguousarray(pose, dtype=np.float64))
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

