"""Head-less pictures checked pixel by pixel: Open3D's off-screen renderer draws a box's edges where a pinhole
camera, computed here independently, projects them; the real nuScenes frame renders with points and boxes."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from perception3d.datasets.classes import CLASSES
from perception3d.structures import bev_corners, box_corners
from perception3d.visualization import (Camera, camera_preset, class_box_colours, render_bev, render_image,
                                       save_png, track_colour)
from tool_module import load_tool

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
    """Points along the 12 edges of a (9,) box, or of a box's (8, 3) corners in two rings of four (ours: bottom
    then top; the devkit's: front then back), 40 per edge, away from the corners."""
    c = box_corners(box[None])[0] if box.shape == (9,) else box
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


def bev_pixel(xy: np.ndarray, extent: float, size: int) -> np.ndarray:
    """The BEV picture's documented mapping: (N, 2) x, y (m) → (N, 2) pixel (column, row); +x up, +y left."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    return np.column_stack([(extent - xy[:, 1]), (extent - xy[:, 0])]) * size / (2 * extent)


def ring_samples(corners: np.ndarray, count: int) -> np.ndarray:
    """Points along the 4 edges of a footprint's (4, 2) corners, ``count`` per edge, away from the corners."""
    t = np.linspace(0.1, 0.9, count)[:, None]
    return np.concatenate([corners[a] + t * (corners[(a + 1) % 4] - corners[a]) for a in range(4)])


def test_bev_draws_boxes_heading_ticks_and_points_at_their_pixels():
    extent, size = 20.0, 400
    box = np.array([6.0, -4.0, 0.5, 4.5, 1.9, 1.6, 0.6, 0.0, 0.0])
    cos, sin = np.cos(box[6]), np.sin(box[6])
    footprint = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * box[3:5] / 2  # in the box's own frame
    corners = box[:2] + footprint @ np.array([[cos, sin], [-sin, cos]])
    front = box[:2] + np.array([cos, sin]) * box[3] / 2
    outline = ring_samples(corners, 30)
    tick = box[:2] + np.linspace(0.1, 0.9, 30)[:, None] * (front - box[:2])
    rng = np.random.default_rng(0)
    patch = np.column_stack([-10 + 0.4 * rng.random((400, 2)) + [0, 22], np.zeros((400, 3))]).astype(np.float32)
    image = render_bev(patch, box[None], class_box_colours([0]), extent, size)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    coloured = (np.abs(image.astype(int) - np.rint(class_box_colours([0])[0] * 255)) <= 8).all(axis=2)
    for samples in (outline, tick):
        pixels = np.floor(bev_pixel(samples, extent, size)).astype(int)
        assert np.mean([coloured[r - 1:r + 2, c - 1:c + 2].any() for c, r in pixels]) >= 0.95
    near = np.zeros_like(coloured)
    for c, r in np.floor(bev_pixel(np.concatenate([outline, tick, corners]), extent, size)).astype(int):
        near[max(r - 4, 0):r + 5, max(c - 4, 0):c + 5] = True
    assert coloured[near].sum() > 100 and not coloured[~near].any()
    lit = image.max(axis=2) > 80  # the points (the grid lines are dim)
    c, r = np.floor(bev_pixel([[-9.8, 12.2]], extent, size)[0]).astype(int)
    mirror_c, mirror_r = np.floor(bev_pixel([[9.8, -12.2]], extent, size)[0]).astype(int)
    assert lit[r - 3:r + 4, c - 3:c + 4].mean() > 0.3 and not lit[mirror_r - 3:mirror_r + 4, mirror_c - 3:mirror_c + 4].any()


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


def run_tool(*args):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "tools/visualize.py", *map(str, args)], cwd=root, capture_output=True,
                          text=True, timeout=600)


def test_tool_draws_a_point_file_with_its_boxes_head_less(tmp_path):
    """As a user runs it, head-less: --out writes the picture."""
    import imageio.v3 as iio

    frame = json.loads((FRAME_DIR / "frame.json").read_text())
    out = tmp_path / "frame.png"
    run = run_tool(FRAME_DIR / frame["lidar_file"], "--boxes", FRAME_DIR / "frame.json", "--out", out,
                   "--width", W, "--height", H, "--colour-by", "intensity")
    assert run.returncode == 0, run.stderr[-2000:]
    image = iio.imread(out)[..., :3]
    assert image.shape == (H, W, 3) and 0.02 < (image.max(axis=2) > 30).mean() < 0.6
    car = np.rint(class_box_colours([CLASSES.index("car")])[0] * 255)
    assert (np.abs(image[:60, :30].astype(int) - car) <= 8).all(axis=2).any()  # the legend's car swatch


def read_xwd(path: Path) -> np.ndarray:
    """An X window dump (Xvfb's -fbdir screen file: 32-bit pixels, least significant byte first) → RGB uint8."""
    import struct

    data = path.read_bytes()
    header = struct.unpack(">25I", data[:100])
    size, width, height, byte_order, bits, line, colours = (header[i] for i in (0, 4, 5, 7, 11, 12, 19))
    assert bits == 32 and byte_order == 0, (bits, byte_order)
    start = size + 12 * colours
    pixels = np.frombuffer(data[start:start + line * height], np.uint8).reshape(height, line // 4, 4)
    return pixels[:, :width, 2::-1]  # B, G, R, pad → R, G, B


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb, a virtual X display (scripts/run_tests.sh "
                    "installs it)")
def test_without_out_the_tool_opens_a_window_on_the_display_showing_the_boxes(tmp_path):
    """As a user on a desktop runs it: no --out, a display → a window (nothing written), which stays until closed,
    shows the box in its class colour where the camera preset projects it (the window starts where the pictures
    look from). The display is Xvfb's, its screen read back
    from the file Xvfb keeps it in."""
    import os
    import subprocess
    import sys
    import time

    read, write = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "800x600x24", "-fbdir", str(tmp_path),
                             "-nolisten", "tcp"], pass_fds=[write], stderr=subprocess.DEVNULL)
    os.close(write)
    tool = None
    try:
        display = os.read(read, 64).decode().strip()
        assert display.isdigit(), display
        box = np.array([3.0, 2.0, 0.5, 4.5, 1.9, 1.6, 0.6, 0.0, 0.0])
        (tmp_path / "box.json").write_text(json.dumps({"boxes": [box.tolist()], "names": ["car"]}))
        np.save(tmp_path / "cloud.npy", np.array([[-5.0, -5.0, 0.0], [6.0, -4.0, 0.2]], np.float32))
        root = Path(__file__).resolve().parents[1]
        tool = subprocess.Popen([sys.executable, str(root / "tools" / "visualize.py"), "cloud.npy", "--boxes", "box.json",
                                 "--camera", "free", "--extent", "20", "--width", str(W), "--height", str(H)],
                                cwd=tmp_path, env={**os.environ, "DISPLAY": f":{display}"}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        car = np.rint(class_box_colours([CLASSES.index("car")])[0] * 255)
        pixels = np.rint(project(camera_preset("free", 20.0), edge_samples(box), W, H)).astype(int)
        deadline, shown = time.monotonic() + 60, 0.0
        while time.monotonic() < deadline and tool.poll() is None and shown < 0.9:
            time.sleep(1.0)
            screen = read_xwd(tmp_path / "Xvfb_screen0")[:H, :W].astype(float)
            # the window smooths its lines: a line's pixels are the class colour, dimmed at the edges
            dim = screen / np.maximum(screen.max(axis=2, keepdims=True), 1.0)
            coloured = (screen.max(axis=2) > 30) & (np.abs(dim - car / car.max()) < 0.06).all(axis=2)
            shown = np.mean([coloured[r - 1:r + 2, c - 1:c + 2].any() for c, r in pixels])
        assert tool.poll() is None, tool.communicate()  # the window waits for the user
        assert shown >= 0.9, shown
        assert not (tmp_path / "visualize.png").exists()
    finally:
        if tool is not None:
            tool.kill()
            tool.wait()
        xvfb.kill()
        xvfb.wait()
        os.close(read)


def test_tool_draws_a_dataset_sample_with_predictions_from_either_file_and_a_bev(synthetic_root, tmp_path):
    """A sample of the config's test set with its ground truth (white) and predictions (class colours): here the
    ground truth moved 0.7 m aside, saved as tools/test.py saves it (the --out pickle, LiDAR frame; the submission JSON,
    global frame). Both files draw the same picture; in the BEV each car above --score-thr is outlined in the car
    colour where the picture's mapping puts it, the one below it is not drawn."""
    import pickle

    import imageio.v3 as iio

    from perception3d.evaluation import detection_records, lidar_to_global

    infos = pickle.loads((Path(synthetic_root) / "nuscenes_infos_val.pkl").read_bytes())["data_list"]
    info = infos[5]
    known = np.isin(info["gt_names"], CLASSES)
    boxes = np.asarray(info["gt_boxes"], dtype=np.float64)[known] + [0.5, 0.5, 0, 0, 0, 0, 0, 0, 0]  # off the GT's
    labels = np.array([CLASSES.index(n) for n in np.asarray(info["gt_names"])[known]])                # lines
    extent = 30.0
    cars = np.flatnonzero((labels == 0) & (np.abs(boxes[:, :2]) < extent - 3).all(axis=1))
    assert len(cars) >= 3
    scores = np.ones(len(boxes))
    scores[cars[0]] = 0.1  # under --score-thr 0.3
    dump = tmp_path / "results.pkl"
    dump.write_bytes(pickle.dumps({"classes": list(CLASSES), "frames": [
        {"token": info["token"], "boxes": boxes.astype(np.float32), "scores": scores, "labels": labels}]}))
    submission = tmp_path / "results_nusc.json"
    records = detection_records(info["token"], lidar_to_global(boxes, np.asarray(info["lidar2ego"]),
                                                               np.asarray(info["ego2global"])), scores, labels, CLASSES)
    submission.write_text(json.dumps({"meta": {}, "results": {info["token"]: records}}))
    config = str(Path(__file__).resolve().parents[1] / "configs" / "voxelnext" / "voxelnext_tiny_synthetic.py")
    tool = load_tool("visualize")
    car = np.rint(class_box_colours([CLASSES.index("car")])[0] * 255)
    pictures = {}
    for mode in ("3d", "bev"):
        for pred in (dump, submission):
            out = tmp_path / f"{mode}_{pred.suffix[1:]}.png"
            assert tool.main([config, "--data-root", synthetic_root, "--token", info["token"], "--pred", str(pred),
                              "--out", str(out), "--mode", mode, "--width", str(W), "--height", str(H),
                              "--extent", str(extent)]) == 0
            pictures[mode, pred.suffix] = iio.imread(out)[..., :3].astype(int)
            assert (np.abs(pictures[mode, pred.suffix] - car) <= 8).all(axis=2).sum() > 30, (mode, pred)
        a, b = pictures[mode, ".pkl"], np.pad(pictures[mode, ".json"], ((1, 1), (1, 1), (0, 0)))
        # every pixel of one picture is in the other within a pixel: the boxes agree to 0.1 mm, yet the pixels on a
        # line's edge may flip, and where lines cross in 3-D which one wins the depth test (~0.15 % of pixels)
        gap = np.min([np.abs(a - b[1 + dr:1 + dr + a.shape[0], 1 + dc:1 + dc + a.shape[1]]).max(axis=2)
                      for dr in (-1, 0, 1) for dc in (-1, 0, 1)], axis=0)
        assert (gap > 8).mean() < 0.003, (mode, (gap > 8).mean())  # boxes misplaced by 0.5 m: 9 %
    bev = pictures["bev", ".json"]
    assert bev.shape == (H, H, 3)
    coloured = (np.abs(bev - car) <= 8).all(axis=2)
    for k in cars:
        pixels = np.floor(bev_pixel(ring_samples(bev_corners(boxes[k:k + 1])[0], 20), extent, H)).astype(int)
        shown = np.mean([coloured[r - 1:r + 2, c - 1:c + 2].any() for c, r in pixels])
        assert shown >= 0.9 if k != cars[0] else shown < 0.2, (k, shown)


def test_tool_renders_a_scene_to_a_playable_video(synthetic_root, tmp_path):
    import pickle

    import imageio.v3 as iio

    infos = pickle.loads((Path(synthetic_root) / "nuscenes_infos_val.pkl").read_bytes())["data_list"]
    scene_frames = sum(info["scene_token"] == infos[0]["scene_token"] for info in infos)
    config = str(Path(__file__).resolve().parents[1] / "configs" / "voxelnext" / "voxelnext_tiny_synthetic.py")
    tool = load_tool("visualize")
    for suffix in (".mp4", ".gif"):
        out = tmp_path / f"scene{suffix}"
        assert tool.main([config, "--data-root", synthetic_root, "--index", "0", "--sequence", "--out", str(out),
                          "--width", "320", "--height", "240"]) == 0
        frames = iio.imread(out, index=None)  # decoded back: every key frame of the scene, in size
        assert frames.shape[0] == scene_frames and frames.shape[1:3] == (240, 320), (suffix, frames.shape)
        assert frames[..., :3].max(axis=3).mean() > 1  # not black
        pairs = zip(frames[:-1, ..., :3].astype(int), frames[1:, ..., :3].astype(int))
        assert all((np.abs(a - b).max(axis=2) > 24).mean() > 0.005 for a, b in pairs), suffix  # none repeated


def test_tool_refuses_bad_input(synthetic_root, tmp_path, capsys):
    tool = load_tool("visualize")
    point_file = FRAME_DIR / json.loads((FRAME_DIR / "frame.json").read_text())["lidar_file"]
    config = "configs/voxelnext/voxelnext_tiny_synthetic.py"
    cases = [([tmp_path / "missing.pcd"], "does not exist"),
             ([point_file, "--out", tmp_path / "x.jpg"], "as .png"),
             ([point_file, "--index", 0], "need a config"),
             ([config, "--index", 0, "--model", config, tmp_path / "none.pth"], "--model detects objects in a point"),
             ([point_file, "--model", config, tmp_path / "none.pth"], "checkpoint not found"),
             ([config, "--data-root", synthetic_root, "--index", 10 ** 6], "--index must be within"),
             ([config, "--data-root", synthetic_root, "--token", "nope"], "no such sample"),
             ([config, "--data-root", synthetic_root, "--index", 0, "--pred", FRAME_DIR / "frame.json"],
              "not a nuScenes detection submission"),
             ([config, "--data-root", synthetic_root, "--index", 0, "--pred", tmp_path / "none.pkl"],
              "file not found"),
             ([config, "--data-root", synthetic_root, "--index", 0, "--sequence", "--out", tmp_path / "a.png"],
              "--sequence writes a video")]
    for args, message in cases:
        code = tool.main([str(a) for a in args])
        err = capsys.readouterr().err
        assert code == 2 and message in err, (args, err[-1500:])


def test_lidar_visualizer_draws_ground_truth_beside_predictions_through_its_backend(tmp_path):
    """The config's visualizer, built by the registry with mmengine's LocalVisBackend: the ground truth (white)
    on the left half where the projection puts it, the predictions from score_thr in class colours on the right,
    a prediction under the threshold left out."""
    import imageio.v3 as iio

    from perception3d.registry import VISUALIZERS

    visualizer = VISUALIZERS.build(dict(type="LidarVisualizer", name="test_lidar_visualizer", save_dir=str(tmp_path),
                                        vis_backends=[dict(type="LocalVisBackend")], extent=20.0, width=W,
                                        height=H, score_thr=0.5))
    points = np.zeros((0, 5), np.float32)
    car = np.array([3.0, 2.0, 0.5, 4.5, 1.9, 1.6, 0.6, 0.0, 0.0])
    faint = np.array([-8.0, -6.0, 0.5, 4.5, 1.9, 1.6, 0.0, 0.0, 0.0])
    visualizer.add_datasample("frame", points, car[None], np.stack([car, faint]), np.array([0, 0]),
                              np.array([0.9, 0.2]))
    image = iio.imread(tmp_path / "vis_data" / "vis_image" / "frame_0.png")[..., :3]
    assert image.shape == (H, 2 * W + 2, 3)
    left, right = image[:, :W], image[:, W + 2:]
    pixels = np.rint(project(visualizer.camera, edge_samples(car), W, H)).astype(int)
    white = left.min(axis=2) > 200
    assert np.mean([white[r - 1:r + 2, c - 1:c + 2].any() for c, r in pixels]) >= 0.95
    colour = np.rint(class_box_colours([0])[0] * 255)
    car_coloured = (np.abs(right.astype(int) - colour) <= 8).all(axis=2)
    assert np.mean([car_coloured[r - 1:r + 2, c - 1:c + 2].any() for c, r in pixels]) >= 0.95
    faint_pixels = np.rint(project(visualizer.camera, edge_samples(faint), W, H)).astype(int)
    assert not any(car_coloured[r - 1:r + 2, c - 1:c + 2].any() for c, r in faint_pixels)


def car_tracks_submission(root, path):
    """The mini_val cars' ground truth as a tracking submission written to ``path``, one track per instance →
    (the val infos in time order, the records per sample token, ``path``)."""
    import pickle

    from perception3d.evaluation import tracking_records
    from perception3d.evaluation.submission import lidar_to_global

    infos = sorted(pickle.loads((Path(root) / "nuscenes_infos_val.pkl").read_bytes())["data_list"],
                   key=lambda info: info["timestamp"])
    ids, results = {}, {}
    for info in infos:
        cars = np.asarray(info["gt_names"]) == "car"
        boxes = lidar_to_global(np.asarray(info["gt_boxes"], dtype=np.float64)[cars], info["lidar2ego"],
                                info["ego2global"])
        track_ids = [ids.setdefault(t, len(ids)) for t in np.asarray(info["instance_tokens"])[cars]]
        results[info["token"]] = tracking_records(info["token"], boxes, np.ones(len(boxes)), ["car"] * len(boxes),
                                                  track_ids, info["scene_token"])
    path.write_text(json.dumps({"meta": {}, "results": results}))
    return infos, results, path


def test_tool_colours_tracks_by_id_with_trails(synthetic_root, tmp_path):
    """A tracking submission (here the ground truth with its instance ids) over a sample: the fastest car's box is
    drawn in its track's colour where it projects, and its trail passes where it was two key frames before."""
    import imageio.v3 as iio

    from nuscenes.utils.data_classes import Box
    from pyquaternion import Quaternion

    from perception3d.structures import transform_points

    infos, results, submission = car_tracks_submission(synthetic_root, tmp_path / "tracks.json")
    index = 8
    info, earlier = infos[index], infos[index - 2]
    records = results[info["token"]]
    before = {r["tracking_id"]: r["translation"] for r in results[earlier["token"]]}
    to_lidar = np.linalg.inv(np.asarray(info["ego2global"]) @ np.asarray(info["lidar2ego"]))
    moved = [(np.linalg.norm(np.subtract(r["translation"], before[r["tracking_id"]])), r) for r in records
             if r["tracking_id"] in before]
    distance, fastest = max(moved, key=lambda m: m[0])
    assert distance > 3.0  # it has moved out of its own box in two key frames
    out = tmp_path / "tracks.png"
    tool = load_tool("visualize")
    config = str(Path(__file__).resolve().parents[1] / "configs" / "voxelnext" / "voxelnext_tiny_synthetic.py")
    assert tool.main([config, "--data-root", synthetic_root, "--token", info["token"], "--tracks", str(submission),
                      "--out", str(out), "--width", str(W), "--height", str(H), "--extent", "30"]) == 0
    image = iio.imread(out)[..., :3].astype(int)
    colour = np.rint(np.asarray(track_colour(fastest["tracking_id"])) * 255)
    ours = (np.abs(image - colour) <= 8).all(axis=2)
    camera = camera_preset("bev", 30.0)
    corners = Box(fastest["translation"], fastest["size"], Quaternion(fastest["rotation"])).corners().T  # global
    pixels = np.rint(project(camera, edge_samples(transform_points(to_lidar, corners)), W, H)).astype(int)
    inside = [(c, r) for c, r in pixels if 1 <= c < W - 1 and 1 <= r < H - 1]
    assert len(inside) > 100
    assert np.mean([ours[r - 1:r + 2, c - 1:c + 2].any() for c, r in inside]) >= 0.9
    then = transform_points(to_lidar, np.asarray([before[fastest["tracking_id"]]], dtype=np.float64))
    c, r = np.rint(project(camera, then, W, H)[0]).astype(int)
    assert ours[r - 2:r + 3, c - 2:c + 3].any()  # the trail reaches back to where it was


def test_tool_draws_the_models_detections_in_a_point_file(tiny_checkpoint, tmp_path, capsys):
    """tools/visualize.py POINTS --model CONFIG CHECKPOINT: the detections inference_detector finds in the file,
    from --score-thr up, outlined in their class colours where the BEV picture's mapping puts them."""
    import imageio.v3 as iio
    import torch

    from perception3d.apis import inference_detector, init_model

    config = str(Path(__file__).resolve().parents[1] / "configs" / "voxelnext" / "voxelnext_tiny_synthetic.py")
    point_file = FRAME_DIR / json.loads((FRAME_DIR / "frame.json").read_text())["lidar_file"]
    dets = inference_detector(init_model(config, str(tiny_checkpoint)), str(point_file))
    extent, size = 40.0, 600
    order = torch.argsort(dets.scores, descending=True).tolist()
    best = [i for i in order if (dets.boxes[i, :2].abs() < extent - 3).all()][:3]
    threshold = float(dets.scores[best[-1]])
    out = tmp_path / "detections.png"
    assert load_tool("visualize").main([str(point_file), "--model", config, str(tiny_checkpoint), "--score-thr",
                                        str(threshold), "--mode", "bev", "--extent", str(extent), "--height",
                                        str(size), "--out", str(out)]) == 0
    shown = int((dets.scores >= threshold).sum())
    assert f"{shown} of {len(dets.scores)} detections" in capsys.readouterr().out
    image = iio.imread(out)[..., :3].astype(int)
    for i in best:
        corners = bev_corners(dets.boxes[i:i + 1].double().numpy())[0]
        pixels = np.floor(bev_pixel(ring_samples(corners, 20), extent, size)).astype(int)
        colour = np.rint(class_box_colours([int(dets.labels[i])])[0] * 255)
        coloured = (np.abs(image - colour) <= 8).all(axis=2)
        assert np.mean([coloured[r - 1:r + 2, c - 1:c + 2].any() for c, r in pixels]) >= 0.8, i


def test_a_head_less_picture_prints_no_runtime_dir_error(tmp_path, monkeypatch):
    """Without XDG_RUNTIME_DIR (a container, a cron job) Open3D's renderer printed "error: XDG_RUNTIME_DIR is
    invalid or not set" on a run that worked: the tool gives it a private folder (ours, mode 0700) instead."""
    import os
    import re
    import stat
    import subprocess
    import sys

    from perception3d.visualization.open3d_scene import ensure_runtime_dir

    np.save(tmp_path / "cloud.npy", np.array([[5.0, 0.0, 0.0], [-5.0, 2.0, 0.5]], np.float32))
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, str(root / "tools" / "visualize.py"), "cloud.npy", "--out", "cloud.png",
                          "--width", "64", "--height", "48"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    said = run.stdout + run.stderr
    assert run.returncode == 0 and (tmp_path / "cloud.png").stat().st_size > 0, said[-2000:]
    assert "XDG_RUNTIME_DIR" not in said and not re.search(r"^error", said, re.IGNORECASE | re.MULTILINE), said
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    folder = os.stat(ensure_runtime_dir())
    assert stat.S_ISDIR(folder.st_mode) and folder.st_uid == os.getuid() and stat.S_IMODE(folder.st_mode) == 0o700
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # a usable one of the user's own is kept
    assert ensure_runtime_dir() == str(tmp_path)


def real_points() -> np.ndarray:
    """The real nuScenes frame's float32 columns x, y, z, intensity (0-255), ring."""
    return np.fromfile(FRAME_DIR / json.loads((FRAME_DIR / "frame.json").read_text())["lidar_file"],
                       dtype=np.float32).reshape(-1, 5)


def lit_share(image: np.ndarray):
    """(rows, columns) share of the picture spanned by its lit pixels' 2nd to 98th percentiles."""
    rows, columns = np.nonzero(image[..., :3].max(axis=2) > 30)
    (r0, r1), (c0, c1) = np.percentile(rows, [2, 98]), np.percentile(columns, [2, 98])
    return (r1 - r0) / image.shape[0], (c1 - c0) / image.shape[1]


def test_a_point_file_is_framed_on_its_cloud_unless_extent_says_otherwise(tmp_path):
    """A user's KITTI-style scan (4 columns, the points ahead within 25 m): without --extent the view fits the
    cloud, which spans most of the picture (with the fixed 54 m view it filled a quarter of it, in a corner);
    --extent 54 draws exactly the sensor-centred view it names."""
    import imageio.v3 as iio

    points = real_points()
    ahead = points[(points[:, 0] > 0) & (points[:, 0] < 25) & (np.abs(points[:, 1]) < 20)][:, :4]
    ahead.tofile(tmp_path / "scan.bin")
    tool = load_tool("visualize")
    for camera in ("free", "bev"):
        out = tmp_path / f"{camera}.png"
        common = [str(tmp_path / "scan.bin"), "--load-dims", "4", "--camera", camera, "--width", str(W), "--height",
                  str(H), "--out", str(out)]
        assert tool.main(common) == 0
        tall, wide = lit_share(iio.imread(out))
        assert tall > 0.5 and wide > 0.6, (camera, tall, wide)
        assert tool.main(common + ["--extent", "54"]) == 0
        expected = render_image(np.column_stack([ahead, np.zeros(len(ahead))]), camera=camera_preset(camera, 54.0),
                                width=W, height=H)
        assert (np.abs(iio.imread(out)[..., :3].astype(int) - expected).max(axis=2) > 8).mean() < 0.001, camera


def test_tool_model_on_a_cloud_with_no_point_in_range_draws_it_without_boxes(tiny_checkpoint, tmp_path, capsys):
    """A cloud in the wrong units (every coordinate × 1e7) through --model: no voxel, so no detection, and the
    picture is still drawn (spconv crashed on the empty tensor before)."""
    points = real_points()
    points[:, :3] *= 1e7
    points.tofile(tmp_path / "far.bin")
    config = str(Path(__file__).resolve().parents[1] / "configs" / "voxelnext" / "voxelnext_tiny_synthetic.py")
    out = tmp_path / "far.png"
    assert load_tool("visualize").main([str(tmp_path / "far.bin"), "--model", config, str(tiny_checkpoint),
                                        "--width", "64", "--height", "48", "--out", str(out)]) == 0
    assert "0 of 0 detections" in capsys.readouterr().out and out.stat().st_size > 0


def test_chase_camera_shows_what_is_ahead_and_not_what_is_behind(tmp_path):
    """--camera chase looks ahead from behind and above the sensor: a car 6 m ahead is drawn where that camera
    projects its edges (lit within a pixel), a pedestrian 15 m behind (behind the camera too) is not drawn at all."""
    import imageio.v3 as iio

    car = np.array([6.0, 2.0, 0.5, 4.5, 1.9, 1.6, 0.3, 0.0, 0.0])
    walker = np.array([-15.0, 0.0, 0.9, 0.7, 0.7, 1.8, 0.0, 0.0, 0.0])
    (tmp_path / "boxes.json").write_text(json.dumps({"boxes": [car.tolist(), walker.tolist()],
                                                     "names": ["car", "pedestrian"]}))
    np.save(tmp_path / "cloud.npy", np.array([[30.0, -6.0, 0.0]], np.float32))
    out = tmp_path / "chase.png"
    assert load_tool("visualize").main([str(tmp_path / "cloud.npy"), "--boxes", str(tmp_path / "boxes.json"),
                                        "--camera", "chase", "--width", str(W), "--height", str(H),
                                        "--out", str(out)]) == 0
    image = iio.imread(out)[..., :3].astype(int)
    image[:60, :160] = 0  # the legend names both classes in their colours
    colours = np.rint(class_box_colours([CLASSES.index("car"), CLASSES.index("pedestrian")]) * 255)  # car, walker
    lit = image.max(axis=2) > 60
    pixels = np.rint(project(camera_preset("chase"), edge_samples(car), W, H)).astype(int)
    assert ((pixels >= 0) & (pixels < [W, H])).all()
    assert np.mean([lit[r - 1:r + 2, c - 1:c + 2].any() for c, r in pixels]) >= 0.95
    near = np.zeros_like(lit)  # within 4 pixels of the car's edges, its heading mark or the point: nothing else lit
    top = box_corners(car[None])[0][4:8]
    mark = top.mean(axis=0) + np.linspace(0, 1, 20)[:, None] * (top[[0, 3]].mean(axis=0) - top.mean(axis=0))
    others = np.rint(project(camera_preset("chase"), np.vstack([mark, [[30.0, -6.0, 0.0]]]), W, H)).astype(int)
    for c, r in np.concatenate([pixels, others]):
        near[max(r - 4, 0):r + 5, max(c - 4, 0):c + 5] = True
    assert not lit[~near].any() and not (np.abs(image - colours[1]) <= 8).all(axis=2).any()


def test_colour_by_time_colours_each_sweep_by_its_time_lag(synthetic_root, tmp_path):
    """--colour-by time on a dataset sample draws its key frame and the config's earlier sweeps, each in the
    viridis colour of its time lag (0 to 0.5 s): the key frame's and every sweep's colour are in the picture."""
    import pickle

    import imageio.v3 as iio
    from matplotlib import colormaps

    info = pickle.loads((Path(synthetic_root) / "nuscenes_infos_val.pkl").read_bytes())["data_list"][4]
    lags = [0.0] + [s["time_lag"] for s in info["sweeps"][:3]]  # the tiny config's 3 sweeps
    assert len(set(np.round(lags, 2))) == 4
    config = str(Path(__file__).resolve().parents[1] / "configs" / "voxelnext" / "voxelnext_tiny_synthetic.py")
    out = tmp_path / "time.png"
    assert load_tool("visualize").main([config, "--data-root", synthetic_root, "--token", info["token"],
                                        "--colour-by", "time", "--extent", "30", "--width", str(W), "--height",
                                        str(H), "--out", str(out)]) == 0
    image = iio.imread(out)[..., :3].astype(int)
    for lag in lags:
        colour = np.rint(np.asarray(colormaps["viridis"](lag / 0.5)[:3]) * 255)
        assert (np.abs(image - colour) <= 3).all(axis=2).sum() > 200, lag


def test_intensities_of_0_to_1_span_the_colour_map_and_4_column_bins_read_as_the_points(tmp_path):
    """A KITTI-style .bin (--load-dims 4: x, y, z, reflectance in 0-1) coloured by intensity: the reflectances
    spread over the colour map (read as 0-255 they would all be its darkest colour), and the picture is the one
    the same points give from a .npy (the file read as 4 columns, not 5)."""
    import imageio.v3 as iio
    from matplotlib import colormaps

    points = real_points()[:, :4].copy()
    points[:, 3] = np.random.default_rng(0).permutation(len(points)) / (len(points) - 1)  # spread over 0-1
    points.tofile(tmp_path / "scan.bin")
    np.save(tmp_path / "scan.npy", points)
    tool = load_tool("visualize")
    pictures = []
    for name, dims in (("scan.bin", "4"), ("scan.npy", "5")):
        out = tmp_path / f"{name}.png"
        assert tool.main([str(tmp_path / name), "--load-dims", dims, "--colour-by", "intensity", "--extent", "40",
                          "--width", str(W), "--height", str(H), "--out", str(out)]) == 0
        pictures.append(iio.imread(out)[..., :3].astype(int))
    assert (np.abs(pictures[0] - pictures[1]).max(axis=2) > 8).mean() < 0.001
    lit = pictures[0][pictures[0].max(axis=2) > 30]
    darkest = np.rint(np.asarray(colormaps["viridis"](0.0)[:3]) * 255)
    assert (np.abs(lit - darkest) <= 12).all(axis=1).mean() < 0.2
    brightest = [np.rint(np.asarray(colormaps["viridis"](v)[:3]) * 255) for v in (0.6, 0.8, 1.0)]
    assert sum((np.abs(lit - c) <= 24).all(axis=1).sum() for c in brightest) > 50


def test_fps_sets_the_video_rate_and_every_frame_shows_its_own_key_frame(synthetic_root, tmp_path):
    """--fps 4: the MP4 plays at 4 frames per second and lasts frames / 4 s, the GIF shows each frame 250 ms;
    consecutive frames differ (the scene moves), so no key frame is repeated."""
    import pickle

    import imageio.v3 as iio

    infos = pickle.loads((Path(synthetic_root) / "nuscenes_infos_val.pkl").read_bytes())["data_list"]
    scene_frames = sum(info["scene_token"] == infos[0]["scene_token"] for info in infos)
    config = str(Path(__file__).resolve().parents[1] / "configs" / "voxelnext" / "voxelnext_tiny_synthetic.py")
    tool = load_tool("visualize")
    for suffix in (".mp4", ".gif"):
        out = tmp_path / f"scene{suffix}"
        assert tool.main([config, "--data-root", synthetic_root, "--index", "0", "--sequence", "--fps", "4",
                          "--out", str(out), "--width", "160", "--height", "120"]) == 0
        frames = iio.imread(out, index=None)[..., :3].astype(int)
        assert len(frames) == scene_frames, (suffix, len(frames))
        changed = [(np.abs(a - b).max(axis=2) > 24).mean() for a, b in zip(frames[:-1], frames[1:])]
        assert min(changed) > 0.005, (suffix, min(changed))
        if suffix == ".mp4":
            meta = iio.immeta(out)
            assert meta["fps"] == 4.0 and abs(meta["duration"] - scene_frames / 4.0) < 0.01, meta
        else:
            assert [iio.immeta(out, index=i)["duration"] for i in range(scene_frames)] == [250] * scene_frames


def test_trail_reaches_back_as_many_key_frames_as_asked(synthetic_root, tmp_path):
    """--trail N draws each track's centres of its last N key frames: the fastest car's centre 2 key frames back
    is on its trail with --trail 2 and not with --trail 1 (its centre 1 key frame back is on both)."""
    import imageio.v3 as iio

    from perception3d.structures import transform_points

    infos, results, submission = car_tracks_submission(synthetic_root, tmp_path / "tracks.json")
    index = 8
    info = infos[index]
    assert all(i["scene_token"] == info["scene_token"] for i in infos[index - 2:index + 1])
    past = [{r["tracking_id"]: np.asarray(r["translation"]) for r in results[infos[index - k]["token"]]}
            for k in (0, 1, 2)]
    shared = [t for t in past[0] if t in past[1] and t in past[2]]
    fastest = max(shared, key=lambda t: np.linalg.norm(past[0][t] - past[2][t]))
    assert np.linalg.norm(past[0][fastest] - past[2][fastest]) > 5.0  # well out of its own box
    to_lidar = np.linalg.inv(np.asarray(info["ego2global"]) @ np.asarray(info["lidar2ego"]))
    camera = camera_preset("bev", 30.0)
    one_back, two_back = np.rint(project(camera, transform_points(to_lidar, np.stack(
        [past[1][fastest], past[2][fastest]])), W, H)).astype(int)
    colour = np.rint(np.asarray(track_colour(fastest)) * 255)
    config = str(Path(__file__).resolve().parents[1] / "configs" / "voxelnext" / "voxelnext_tiny_synthetic.py")
    tool = load_tool("visualize")
    for trail in (1, 2):
        out = tmp_path / f"trail{trail}.png"
        assert tool.main([config, "--data-root", synthetic_root, "--token", info["token"], "--tracks",
                          str(submission), "--trail", str(trail), "--out", str(out), "--width", str(W), "--height",
                          str(H), "--extent", "30"]) == 0
        ours = (np.abs(iio.imread(out)[..., :3].astype(int) - colour) <= 8).all(axis=2)
        (c1, r1), (c2, r2) = one_back, two_back
        assert ours[r1 - 2:r1 + 3, c1 - 2:c1 + 3].any(), trail
        assert ours[r2 - 2:r2 + 3, c2 - 2:c2 + 3].any() == (trail == 2), trail
