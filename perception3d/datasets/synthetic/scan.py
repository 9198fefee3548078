"""One LiDAR sweep of a synthetic scene: the sensor on the ego, the primitives in view, the points."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...ops import points_in_boxes_mask
from ..lidarseg import CATEGORY_INDEX
from ...structures import pose_matrix, transform_points, yaw_to_quaternion
from .layout import EGO_SIZE, SceneLayout, shape_to_global
from .lidar import BOX, GROUND, MISS, NO_RETURN_XYZ, LidarModel, cast_rays, count_unoccluded_rays

# nuScenes' LIDAR_TOP calibration (scene-0061): x points to the ego's right, y forward, slightly tilted
LIDAR_TRANSLATION = (0.943713, 0.0, 1.84023)
LIDAR_ROTATION = (0.7077955119163518, -0.006492242056004365, 0.010646214713995808, -0.7063073142877817)
EGO_OWNER, CLUTTER_OWNER = -2, -1


def lidar2ego() -> np.ndarray:
    """(4, 4) pose of LIDAR_TOP in the ego frame."""
    return pose_matrix(LIDAR_TRANSLATION, LIDAR_ROTATION)


def yaw_quaternion(yaw: float) -> list:
    """w, x, y, z (a JSON-ready list) of a rotation about +z."""
    return yaw_to_quaternion(yaw).elements.tolist()


def ego2global(layout: SceneLayout, frame: int) -> np.ndarray:
    """(4, 4) ego pose at a LiDAR frame: on the ground (z = 0), yaw only."""
    x, y = layout.ego_xy[frame]
    return pose_matrix((x, y, 0.0), yaw_quaternion(layout.ego_yaw[frame]))


def annotation_boxes(layout: SceneLayout, frame: int, objects: np.ndarray) -> np.ndarray:
    """float64 (B, 9) global boxes of the given objects at a frame (centre z = half height, no velocity)."""
    boxes = np.zeros((len(objects), 9))
    for row, o in enumerate(objects):
        obj = layout.objects[o]
        boxes[row, 0:2] = obj.xy[frame]
        boxes[row, 2] = obj.size[2] / 2
        boxes[row, 3:6] = obj.size
        boxes[row, 6] = obj.yaw[frame]
    return boxes


def objects_near(layout: SceneLayout, frame: int, radius: float) -> np.ndarray:
    """Indices of the objects whose centre is within ``radius`` m of the ego at a frame."""
    if not layout.objects:
        return np.zeros(0, dtype=np.int64)
    centres = np.stack([o.xy[frame] for o in layout.objects])
    return np.flatnonzero(np.linalg.norm(centres - layout.ego_xy[frame], axis=1) <= radius)


@dataclass
class Sweep:
    """A simulated sweep: points as nuScenes writes them, which object each ray hit and what it hit."""

    points: np.ndarray  # float32 (R, 5): x, y, z (sensor frame), intensity 0-255, ring
    owner: np.ndarray  # int64 (R,): object index, -1 clutter/ground/none, -2 ego
    labels: np.ndarray  # uint8 (R,): lidarseg category index of what the ray hit, "noise" for no return
    unoccluded: Optional[np.ndarray] = None  # int64 (n_objects,) rays each object would get unoccluded


def _frame_primitives(layout: SceneLayout, frame: int, sensor_xy: np.ndarray, reach: float):
    """Primitives in reach of the sensor at a frame, with their owners, reflectivities and lidarseg categories."""
    kinds, params, owners, refl, category = [], [], [], [], []
    ego = ego2global(layout, frame)
    centre = ego[:3, :3] @ np.array([LIDAR_TRANSLATION[0], 0.0, 0.3 + EGO_SIZE[2] / 2]) + ego[:3, 3]
    yaw = layout.ego_yaw[frame]
    kinds.append(np.array([BOX]))
    params.append(np.array([[centre[0], centre[1], centre[2], EGO_SIZE[0] / 2, EGO_SIZE[1] / 2, EGO_SIZE[2] / 2,
                             np.cos(yaw), np.sin(yaw)]]))
    owners.append(np.array([EGO_OWNER]))
    refl.append(np.array([20.0]))
    category.append(np.array([CATEGORY_INDEX["vehicle.ego"]]))
    for o in objects_near(layout, frame, reach):
        obj = layout.objects[o]
        k, p = shape_to_global(obj.shape, obj.xy[frame], obj.size[2] / 2, obj.yaw[frame])
        kinds.append(k)
        params.append(p)
        owners.append(np.full(len(k), o))
        refl.append(np.full(len(k), obj.shape.reflectivity))
        category.append(np.full(len(k), CATEGORY_INDEX[obj.category]))
    near = np.linalg.norm(layout.clutter_params[:, :2] - sensor_xy, axis=1) <= reach + 20.0
    kinds.append(layout.clutter_kinds[near])
    params.append(layout.clutter_params[near])
    owners.append(np.full(int(near.sum()), CLUTTER_OWNER))
    refl.append(layout.clutter_reflectivity[near])
    category.append(layout.clutter_category[near])
    return (np.concatenate(kinds).astype(np.int64), np.ascontiguousarray(np.concatenate(params)),
            np.concatenate(owners).astype(np.int64), np.concatenate(refl), np.concatenate(category))


def simulate_sweep(layout: SceneLayout, frame: int, model: LidarModel, rng: np.random.Generator,
                   ground_reflectivity: float, count_unoccluded: bool = False) -> Sweep:
    """Ray-casts one sweep at LiDAR frame ``frame``."""
    l2g = ego2global(layout, frame) @ lidar2ego()
    origin = l2g[:3, 3].copy()
    directions_sensor = model.ray_directions()
    directions = np.ascontiguousarray(directions_sensor @ l2g[:3, :3].T)
    kinds, params, owners, refl, category = _frame_primitives(layout, frame, origin[:2], model.max_range)
    rng_m, hit, cosang = cast_rays(origin, directions, kinds, params, model.max_range)

    n = len(directions)
    returned = (hit != MISS) & (rng.random(n) >= model.dropout)
    ranges = np.where(returned, rng_m + rng.normal(0.0, model.range_noise_std, n), 0.0)
    points = np.empty((n, 5), dtype=np.float32)
    points[:, 0:3] = np.where(returned[:, None], directions_sensor * ranges[:, None], NO_RETURN_XYZ)
    base = np.where(hit == GROUND, ground_reflectivity, refl[np.maximum(hit, 0)])
    intensity = base * (0.3 + 0.7 * cosang) * rng.gamma(8.0, 1 / 8.0, n)
    points[:, 3] = np.where(returned, np.clip(np.round(intensity), 0, 255), 0)
    points[:, 4] = model.rings()
    owner = np.where(returned & (hit >= 0), owners[np.maximum(hit, 0)], CLUTTER_OWNER)
    labels = np.full(n, CATEGORY_INDEX["noise"], dtype=np.uint8)
    on_primitive = returned & (hit >= 0)
    labels[on_primitive] = category[hit[on_primitive]]
    on_ground = returned & (hit == GROUND)
    ground_xy = origin[:2] + directions[on_ground, :2] * rng_m[on_ground, None]  # the true hit, before range noise
    labels[on_ground] = layout.path.ground_category(ground_xy)

    unoccluded = None
    if count_unoccluded:
        unoccluded = count_unoccluded_rays(origin, directions, kinds, params, owners, len(layout.objects),
                                           model.max_range)
    return Sweep(points, owner, labels, unoccluded)


def count_points_in_annotations(points: np.ndarray, lidar2global: np.ndarray, boxes_global: np.ndarray) -> np.ndarray:
    """int64 (B,) number of the sweep's points inside each global box, as the devkit's points_in_box counts."""
    pts = transform_points(lidar2global, points[:, :3].astype(np.float64))
    return points_in_boxes_mask(pts, boxes_global).sum(axis=0)
