"""Our (N, 9) box convention against the devkit's Box, and frame transforms against the devkit's own steps."""
import json
from pathlib import Path

import numpy as np
import pytest
from nuscenes.eval.common.utils import quaternion_yaw  # the devkit's yaw: heading projected onto xy
from nuscenes.utils.data_classes import Box
from pyquaternion import Quaternion

from perception3d.structures import (box_corners, boxes_from_devkit, boxes_to_devkit, invert_pose, limit_yaw,
                                     quaternions_to_yaw, transform_boxes)

# the real poses of the nuScenes frame in tests/data (both slightly tilted, as real poses are)
_FRAME = json.loads((Path(__file__).parent / "data" / "nuscenes_frame" / "frame.json").read_text())
L2E = np.array(_FRAME["lidar2ego"])
E2G = np.array(_FRAME["ego2global"])


def random_boxes(rng, n=200):
    boxes = np.zeros((n, 9))
    boxes[:, 0:3] = rng.uniform(-50, 50, (n, 3))
    boxes[:, 3:6] = rng.uniform(0.2, 12, (n, 3))
    boxes[:, 6] = rng.uniform(-np.pi, np.pi, n)
    boxes[: n // 4, 6] = (
        rng.choice([-1, 1], n // 4) * (np.pi - rng.uniform(0, 1e-6, n // 4)))  # yaw within 1e-6 of ±pi
    boxes[:, 7:9] = rng.normal(0, 5, (n, 2))
    return boxes


def yaw_close(a, b, atol):
    return np.abs(limit_yaw(np.asarray(a) - np.asarray(b))) < atol


def test_devkit_box_round_trip_keeps_centre_size_yaw_velocity():
    rng = np.random.default_rng()
    boxes = random_boxes(rng)
    devkit = boxes_to_devkit(boxes, names=["car"] * len(boxes))
    for b, d in zip(boxes, devkit):
        assert np.allclose(d.wlh, [b[4], b[3], b[5]])  # wlh is (width, length, height)
        assert np.allclose(d.center, b[:3])
        assert yaw_close(quaternion_yaw(d.orientation), b[6], 1e-9)
    back = boxes_from_devkit(devkit).astype(np.float64)
    assert np.allclose(back[:, [0, 1, 2, 3, 4, 5, 7, 8]], boxes[:, [0, 1, 2, 3, 4, 5, 7, 8]], atol=1e-4)
    assert yaw_close(back[:, 6], boxes[:, 6], 1e-6).all()


# the devkit's Box.corners() order (nuscenes/utils/data_classes.py: x = l/2 [1 1 1 1 -1 -1 -1 -1],
# y = w/2 [1 -1 -1 1 1 -1 -1 1], z = h/2 [1 1 -1 -1 1 1 -1 -1]): front-left-top, front-right-top,
# front-right-bottom, front-left-bottom, then the same four at the rear. Ours (box_corners): bottom front-left,
# rear-left, rear-right, front-right, then the same four at the top. DEVKIT_ORDER[k] is our index of its corner k.
DEVKIT_ORDER = [4, 7, 3, 0, 5, 6, 2, 1]


def test_corners_match_devkit_corners():
    """Each corner as a 3-D point, in the devkit's order: a mirrored heading or a swapped corner fails."""
    rng = np.random.default_rng()
    boxes = random_boxes(rng, 50)
    ours = box_corners(boxes)
    for c, d in zip(ours, boxes_to_devkit(boxes)):
        theirs = d.corners().T  # (8, 3), the devkit's order
        np.testing.assert_allclose(c[DEVKIT_ORDER], theirs, rtol=0, atol=1e-9)
    # the order named above, on a box whose corners are read off by hand: length 4 along +y (yaw 90 degrees)
    box = np.array([[10.0, 20.0, 1.0, 4.0, 2.0, 2.0, np.pi / 2, 0.0, 0.0]])
    front_left_bottom, rear_right_top = [9.0, 22.0, 0.0], [11.0, 18.0, 2.0]
    np.testing.assert_allclose(box_corners(box)[0, [0, 6]], [front_left_bottom, rear_right_top], atol=1e-12)


def devkit_lidar_to_global(box: Box) -> Box:
    """The devkit's steps (as in a nuScenes submission): LiDAR → ego → global."""
    box.rotate(Quaternion(matrix=L2E[:3, :3], atol=1e-6))
    box.translate(L2E[:3, 3])
    box.rotate(Quaternion(matrix=E2G[:3, :3], atol=1e-6))
    box.translate(E2G[:3, 3])
    return box


def devkit_global_to_lidar(box: Box) -> Box:
    """The devkit's steps in ``NuScenes.get_sample_data``: global → ego → LiDAR."""
    box.translate(-E2G[:3, 3])
    box.rotate(Quaternion(matrix=E2G[:3, :3], atol=1e-6).inverse)
    box.translate(-L2E[:3, 3])
    box.rotate(Quaternion(matrix=L2E[:3, :3], atol=1e-6).inverse)
    return box


def test_frame_transforms_match_the_devkit_both_ways():
    rng = np.random.default_rng()
    boxes = random_boxes(rng)
    lidar2global = E2G @ L2E
    ours_global = transform_boxes(lidar2global, boxes)
    theirs_global = [devkit_lidar_to_global(b) for b in boxes_to_devkit(boxes)]
    for ours, theirs in zip(ours_global, theirs_global):
        assert np.allclose(ours[:3], theirs.center, atol=1e-6)
        assert yaw_close(ours[6], quaternion_yaw(theirs.orientation), 1e-6)
        assert np.allclose(ours[7:9], theirs.velocity[:2], atol=1e-6)
    # and back, starting from yaw-only global boxes as annotations are
    back = transform_boxes(invert_pose(lidar2global), ours_global)
    theirs_lidar = boxes_from_devkit([devkit_global_to_lidar(b) for b in boxes_to_devkit(ours_global)])
    assert np.allclose(back[:, :6], theirs_lidar[:, :6], atol=1e-4)
    assert yaw_close(back[:, 6], theirs_lidar[:, 6], 1e-6).all()
    assert np.allclose(back[:, 7:9], theirs_lidar[:, 7:9], atol=1e-4)
    # the round trip loses only what the frames' tilt (about 1.5 degrees here) does to headings: second order
    assert np.allclose(back[:, :3], boxes[:, :3], atol=1e-6)
    assert yaw_close(back[:, 6], boxes[:, 6], 1e-3).all()


def test_quaternions_to_yaw_matches_pyquaternion():
    rng = np.random.default_rng()
    yaws = rng.uniform(-np.pi, np.pi, 100)
    q = np.array([Quaternion(axis=[0, 0, 1], radians=y).elements for y in yaws])
    assert yaw_close(quaternions_to_yaw(q), yaws, 1e-9).all()


def test_similarity_transform_scales_sizes_and_mirrors_headings():
    boxes = np.array([[1.0, 2.0, 0.5, 4.0, 2.0, 1.5, 0.3, 1.0, -2.0]])
    mirror = np.diag([1.0, -1.0, 1.0, 1.0]) * 1.1
    mirror[3, 3] = 1.0
    out = transform_boxes(mirror, boxes)
    assert np.allclose(out[0, :3], [1.1, -2.2, 0.55])
    assert np.allclose(out[0, 3:6], [4.4, 2.2, 1.65])
    assert np.isclose(out[0, 6], -0.3)
    assert np.allclose(out[0, 7:9], [1.1, 2.2])


def test_bad_box_shape_is_refused_with_its_name():
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 9\)"):
        boxes_to_devkit(np.zeros((3, 7)))
