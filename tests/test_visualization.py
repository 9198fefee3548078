"""Head-less pictures checked pixel by pixel: Open3D's off-screen renderer draws a box's edges where a pinhole
camera, computed here independently, projects them; the real nuScenes frame renders with points and boxes."""
import json
from pathlib import Path

import numpy as np
import pytest

from perception3d.datasets.classes import CLASSES
from perception3d.structures import box_corners
from perception3d.visualization.open3d_scene import (Camera, camera_preset, class_box_colours, render_image,
                                                     save_png)

FRAME_DIR = Path(__file__).parent / "data" / "nuscenes_frame"
W, H = 640, 480


def project(camera: Camera, xyz: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pinhole look-at projection (vertical field of view) of (N, 3) points → (N, 2) pixel (column, row)."""
    eye, center, up = (np.asarray(v, dtype=np.float64) for v in (camera.eye, camera.center, camera.up))
    forward = (center - eye) / np.linalg.norm(center - eye)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    d = xyz - eye
    x, y, z = d @ right, d @ true_up, d @ forward
    focal = (height / 2) / np.tan(np.radians(camera.fov) / 2)
    return np.column_stack([width / 2 + focal * x / z, height / 2 - focal * y / z])


def edge_samples(box: np.ndarray) -> np.ndarray:
    """Points along the 12 edges of a (9,) box, 40 per edge, away from the corners."""
    c = box_corners(box[None])[0]
    edges = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]
    t = np.linspace(0.1, 0.9, 40)[:, None]
    return np.concatenate([c[a] + t * (c[b] - c[a]) for a, b in edges])


@pytest.mark.parametrize("camera", [camera_preset("bev", 20.0), Camera(50.0, (2.0, 1.0, 0.5), (-9.0, -7.0, 6.0),
                                                                       (0.0, 0.0, 1.0))])
def test_box_edges_light_the_pixels_where_they_project(camera, tmp_path):
    box = np.array([3.0, 2.0, 0.5, 4.5, 1.9, 1.6, 0.6, 0.0, 0.0])
    image = render_image(np.zeros((0, 5), np.float32), box[None], np.array([[1.0, 1.0, 1.0]]), camera,
                         width=W, height=H, line_width=2.0)
    save_png(str(tmp_path / "box.png"), image)
    assert image.shape == (H, W, 3) and (tmp_path / "box.png").stat().st_size > 0
    lit = image.max(axis=2) > 60
    pixels = np.rint(project(camera, edge_samples(box), W, H)).astype(int)
    assert ((pixels >= 0) & (pixels < [W, H])).all()
    near = np.zeros_like(lit)  # lit within 1 pixel of each projected edge point
    hits = [lit[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2].any() for c, r in pixels]
    assert np.mean(hits) >= 0.95, np.mean(hits)
    for c, r in pixels:  # everything farther than 4 pixels from the projected edges stays dark
        near[max(r - 4, 0):r + 5, max(c - 4, 0):c + 5] = True
    assert lit[~near].mean() < 0.002, lit[~near].mean()
    assert lit.sum() > 200


def test_the_real_frame_renders_with_points_and_class_coloured_boxes(tmp_path):
    frame = json.loads((FRAME_DIR / "frame.json").read_text())
    points = np.fromfile(FRAME_DIR / frame["lidar_file"], dtype=np.float32).reshape(-1, 5)
    keep = [i for i, name in enumerate(frame["names"]) if name in CLASSES]
    boxes = np.asarray(frame["boxes"])[keep]
    colours = class_box_colours([CLASSES.index(frame["names"][i]) for i in keep])
    pictures = {}
    for mode in ("height", "intensity"):
        pictures[mode] = render_image(points, boxes, colours, camera_preset("bev", 40.0), width=W, height=H,
                                      colour_by=mode)
        lit = pictures[mode].max(axis=2) > 30
        assert 0.02 < lit.mean() < 0.6, (mode, lit.mean())  # a cloud, not a blank or a filled picture
        assert len(np.unique(pictures[mode][lit].reshape(-1, 3) // 32, axis=0)) > 10  # coloured, not one tone
    assert (pictures["height"] != pictures["intensity"]).any(axis=2).mean() > 0.01
    car = colours[[frame["names"][i] for i in keep].index("car")]
    car_pixels = np.all(np.abs(pictures["height"].astype(int) - np.rint(car * 255)) <= 8, axis=2)
    assert car_pixels.sum() > 50  # the cars' outlines in the car colour


def test_bad_camera_and_colour_mode_are_named():
    with pytest.raises(ValueError, match="camera must be one of bev, chase, free"):
        camera_preset("orbit")
    with pytest.raises(ValueError, match="colour mode must be one of height, intensity, time"):
        render_image(np.zeros((3, 5), np.float32), colour_by="ring")
