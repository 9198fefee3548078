"""Our 3D box convention and the one place that converts to and from the devkit.

A box array is float (N, 9): x, y, z (gravity centre, m), dx (length, along the
heading), dy (width), dz (height), yaw (rad, counter-clockwise from +x), vx, vy
(m/s), all in one frame (usually the key frame's LIDAR_TOP frame).
nuScenes' ``Box.wlh`` is (width, length, height): converted here and nowhere else.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from nuscenes.utils.data_classes import Box
from pyquaternion import Quaternion

BOX_DIM = 9
BOX_FIELDS = ("x", "y", "z", "dx", "dy", "dz", "yaw", "vx", "vy")


def limit_yaw(yaw: np.ndarray) -> np.ndarray:
    """Wraps angles (rad) into [-pi, pi)."""
    return (np.asarray(yaw) + np.pi) % (2 * np.pi) - np.pi


def check_boxes(boxes: np.ndarray, name: str = "boxes") -> np.ndarray:
    """Returns ``boxes`` as a float array of shape (N, 9), or raises ValueError naming ``name``."""
    arr = np.asarray(boxes)
    if arr.ndim != 2 or arr.shape[1] != BOX_DIM:
        raise ValueError(f"{name} must have shape (N, {BOX_DIM}) as {BOX_FIELDS}, got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be a float array, got dtype {arr.dtype}")
    return arr


def yaw_to_quaternion(yaw: float) -> Quaternion:
    """Rotation about +z by ``yaw`` radians."""
    return Quaternion(axis=[0.0, 0.0, 1.0], radians=float(yaw))


def quaternion_to_yaw(q: Quaternion) -> float:
    """Heading (rad) of the rotated +x axis projected onto the xy plane."""
    return float(quaternions_to_yaw(np.asarray(q.elements)[None])[0])


def quaternions_to_yaw(wxyz: np.ndarray) -> np.ndarray:
    """(N, 4) w, x, y, z unit quaternions → (N,) heading of the rotated +x axis in the xy plane (rad)."""
    w, x, y, z = np.asarray(wxyz, dtype=np.float64).T
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def boxes_to_devkit(
    boxes: np.ndarray,
    names: Optional[Sequence[str]] = None,
    scores: Optional[Sequence[float]] = None,
) -> list:
    """(N, 9) boxes → list of ``nuscenes.utils.data_classes.Box`` in the same frame."""
    boxes = check_boxes(boxes)
    out = []
    for i, b in enumerate(boxes.astype(np.float64)):
        out.append(
            Box(
                center=b[0:3].tolist(),
                size=[b[4], b[3], b[5]],  # wlh = (dy, dx, dz)
                orientation=yaw_to_quaternion(b[6]),
                velocity=(b[7], b[8], 0.0),
                name=None if names is None else names[i],
                score=np.nan if scores is None else float(scores[i]),
            )
        )
    return out


def boxes_from_devkit(devkit_boxes: Sequence[Box]) -> np.ndarray:
    """List of devkit ``Box`` → float32 (N, 9) boxes; yaw is the projected heading, NaN velocity kept."""
    out = np.zeros((len(devkit_boxes), BOX_DIM), dtype=np.float32)
    for i, box in enumerate(devkit_boxes):
        w, l, h = box.wlh
        out[i, 0:3] = box.center
        out[i, 3:6] = (l, w, h)
        out[i, 6] = quaternion_to_yaw(box.orientation)
        out[i, 7:9] = np.asarray(box.velocity, dtype=np.float64)[:2]
    return out


def bev_corners(boxes: np.ndarray) -> np.ndarray:
    """(N, 9) boxes → (N, 4, 2) xy corners, counter-clockwise: front-left, rear-left, rear-right, front-right."""
    boxes = check_boxes(boxes)
    half = boxes[:, 3:5, None] / 2  # (N, 2, 1)
    signs = np.array([[1, -1, -1, 1], [1, 1, -1, -1]], dtype=boxes.dtype)  # (2, 4)
    local = half * signs  # (N, 2, 4)
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    x = c[:, None] * local[:, 0] - s[:, None] * local[:, 1] + boxes[:, 0:1]
    y = s[:, None] * local[:, 0] + c[:, None] * local[:, 1] + boxes[:, 1:2]
    return np.stack([x, y], axis=-1)


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """(N, 9) boxes → (N, 8, 3) corners: the 4 BEV corners at the bottom, then the same 4 at the top."""
    bev = bev_corners(boxes)
    z0 = (boxes[:, 2] - boxes[:, 5] / 2)[:, None, None]
    z1 = (boxes[:, 2] + boxes[:, 5] / 2)[:, None, None]
    bottom = np.concatenate([bev, np.broadcast_to(z0, bev.shape[:2] + (1,))], axis=-1)
    top = np.concatenate([bev, np.broadcast_to(z1, bev.shape[:2] + (1,))], axis=-1)
    return np.concatenate([bottom, top], axis=1)
