"""Inference on any point cloud: every supported file type read to the same model input (files written here by
hand, byte by byte, from the real nuScenes frame, so the reader is checked against the format and not against
itself), clear errors for bad files, and the tiny model detecting on each type alike."""
import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from perception3d.apis import inference_detector, init_model
from perception3d.datasets.point_io import load_points
from perception3d.engine import UserError

FRAME = next((Path(__file__).parent / "data" / "nuscenes_frame").glob("*.pcd.bin"))
CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "voxelnext" / "voxelnext_tiny_synthetic.py")


@pytest.fixture(scope="module")
def raw():
    """The real frame's float32 columns x, y, z, intensity, ring (34,688 points)."""
    return np.fromfile(FRAME, dtype=np.float32).reshape(-1, 5)


def write_pcd(path, xyzi, binary):
    header = ("# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 4\n"
              "TYPE F F F F\nCOUNT 1 1 1 1\nWIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {kind}\n")
    header = header.format(n=len(xyzi), kind="binary" if binary else "ascii")
    body = np.ascontiguousarray(xyzi, dtype="<f4").tobytes() if binary else \
        "".join(" ".join(repr(float(v)) for v in row) + "\n" for row in xyzi).encode()
    Path(path).write_bytes(header.encode() + body)


def write_ply(path, xyzi):
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(xyzi)}\nproperty float x\n"
              f"property float y\nproperty float z\nproperty float intensity\nend_header\n")
    Path(path).write_bytes(header.encode() + np.ascontiguousarray(xyzi, dtype="<f4").tobytes())


@pytest.fixture(scope="module")
def point_files(raw, tmp_path_factory):
    """The frame in every supported format → {name: (path, load_dims)}."""
    folder = tmp_path_factory.mktemp("points")
    xyzi = raw[:, :4]
    files = {"nuscenes .pcd.bin": (FRAME, 5)}
    xyzi.tofile(folder / "kitti.bin")
    files["KITTI-style .bin"] = (folder / "kitti.bin", 4)
    np.save(folder / "cloud.npy", xyzi)
    files[".npy"] = (folder / "cloud.npy", 5)
    write_pcd(folder / "ascii.pcd", xyzi, binary=False)
    files["ASCII .pcd"] = (folder / "ascii.pcd", 5)
    write_pcd(folder / "binary.pcd", xyzi, binary=True)
    files["binary .pcd"] = (folder / "binary.pcd", 5)
    write_ply(folder / "cloud.ply", xyzi)
    files[".ply"] = (folder / "cloud.ply", 5)
    return files


def test_every_file_type_reads_to_the_same_model_input(raw, point_files):
    expected = np.column_stack([raw[:, :4], np.zeros(len(raw), np.float32)])  # time_lag 0: one sweep
    for name, (path, dims) in point_files.items():
        np.testing.assert_array_equal(load_points(path, dims), expected, err_msg=name)


def test_missing_columns_are_filled_with_zeros(raw, tmp_path):
    np.save(tmp_path / "xyz.npy", raw[:, :3].astype(np.float64))
    points = load_points(tmp_path / "xyz.npy")
    assert points.dtype == np.float32 and points.shape == (len(raw), 5)
    np.testing.assert_array_equal(points[:, :3], raw[:, :3])
    assert not points[:, 3:].any()


def test_bad_point_files_get_a_clear_error(raw, tmp_path):
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(raw.tobytes()[:-6])
    flat = tmp_path / "flat.npy"
    np.save(flat, raw[:, 0])
    not_a_cloud = tmp_path / "words.pcd"
    not_a_cloud.write_text("this is not a point cloud\n")
    (tmp_path / "cloud.txt").write_text("1 2 3\n")
    cases = [(tmp_path / "missing.pcd", FileNotFoundError, "does not exist"),
             (truncated, ValueError, "not a multiple of 5 float32 columns"),
             (flat, ValueError, "expected (N, >= 3)"),
             (not_a_cloud, ValueError, "Open3D read no points"),
             (tmp_path / "cloud.txt", ValueError, "unknown extension '.txt'")]
    for path, error, message in cases:
        with pytest.raises(error, match=None) as caught:
            load_points(path)
        assert message in str(caught.value) and str(path) in str(caught.value), caught.value


def test_tiny_model_detects_alike_on_every_file_type(point_files, tiny_checkpoint):
    model = init_model(CONFIG, str(tiny_checkpoint))
    assert not model.training
    results = {name: inference_detector(model, str(path), load_dims=dims) for name, (path, dims) in point_files.items()}
    reference = results.pop("nuscenes .pcd.bin")
    assert reference.boxes.shape[1] == 9 and len(reference.boxes) > 0
    for name, dets in results.items():
        torch.testing.assert_close(dets.boxes, reference.boxes, msg=name)
        torch.testing.assert_close(dets.scores, reference.scores, msg=name)
        assert torch.equal(dets.labels, reference.labels), name


def test_init_model_refuses_another_models_checkpoint(tmp_path):
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"backbone.weight": torch.zeros(3)}}, other)
    with pytest.raises(UserError, match="weights of another model"):
        init_model(CONFIG, str(other))


def test_inference_on_a_key_frame_file_equals_the_test_pipeline(synthetic_root, tiny_checkpoint):
    """A synthetic key frame's file through inference_detector gives the detections the dataset's test pipeline
    (without earlier sweeps, and unshuffled) gives through the model: the same points, ego filter (the config's
    LoadPoints: none, the key frame whole), range filter and decoding."""
    from mmengine.dataset import pseudo_collate

    from perception3d.datasets import NuScenesDataset
    from perception3d.datasets.transforms import LoadPoints, Pack, PointsRangeFilter

    model = init_model(CONFIG, str(tiny_checkpoint))
    point_cloud_range = model.data_preprocessor.voxelizer.point_cloud_range
    load = next(dict(t) for t in model.cfg.test_pipeline if t["type"] == "LoadPoints")
    load.pop("type")
    assert load["ego_radius"] == 0.0
    dataset = NuScenesDataset(synthetic_root, "nuscenes_infos_val.pkl", test_mode=True,
                              pipeline=[LoadPoints(**load), PointsRangeFilter(point_cloud_range), Pack()])
    info = dataset.get_data_info(0)
    with torch.no_grad():
        expected = model(**model.data_preprocessor(pseudo_collate([dataset[0]]), False), mode="predict")[0]
    ours = inference_detector(model, str(Path(synthetic_root) / info["lidar_path"]))
    assert len(expected.boxes) > 0
    torch.testing.assert_close(ours.boxes, expected.boxes)
    torch.testing.assert_close(ours.scores, expected.scores)
    assert torch.equal(ours.labels, expected.labels)



@contextmanager
def logged_warnings():
    """The messages of the warnings mmengine's current logger writes meanwhile (its stream handler writes to the
    stdout it found when it was made, out of capsys' reach) → a list filled as they come."""
    from mmengine.logging import MMLogger

    messages, handler = [], logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def test_a_cloud_with_no_point_in_range_gives_no_detections(raw, tiny_checkpoint, tmp_path):
    """Every coordinate × 1e7 (a file in the wrong units): no voxel, so no detections and a warning, not spconv's
    crash on an empty tensor; the same through a file."""
    model = init_model(CONFIG, str(tiny_checkpoint))
    far = raw.copy()
    far[:, :3] *= 1e7
    far.tofile(tmp_path / "far.bin")
    for points in (far, str(tmp_path / "far.bin")):
        with logged_warnings() as warned:
            dets = inference_detector(model, points)
        assert dets.boxes.shape == (0, 9) and dets.scores.shape == (0,) and dets.labels.shape == (0,)
        assert any("no point inside point_cloud_range" in m for m in warned), warned


def test_training_skips_a_batch_with_no_point_in_range_and_warns(synthetic_root):
    """Samples whose points all leave the range under augmentation (a translation of ~1e6 m): a batch of only
    such samples trains no step (weights unchanged, a warning); in a batch with a real sample it is left out of
    the loss, with a warning, and the step is taken. Under DDP the same empty batch gives zero losses whose
    gradients reach every parameter (every process must join the backward pass)."""
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import OptimWrapper

    from perception3d.datasets import NuScenesDataset
    from perception3d.datasets.transforms import GlobalRotScaleTrans, LoadPoints, Pack, PointsRangeFilter

    torch.manual_seed(0)
    model = init_model(CONFIG).train()
    point_cloud_range = model.data_preprocessor.voxelizer.point_cloud_range

    def dataset(*augment):
        return NuScenesDataset(synthetic_root, "nuscenes_infos_train.pkl",
                               pipeline=[LoadPoints(ego_radius=0.0), *augment, PointsRangeFilter(point_cloud_range),
                                         Pack()])

    far = dataset(GlobalRotScaleTrans(translation_std=[1e6, 1e6, 1e6], seed=0))
    near = dataset()
    assert len(far[0]["inputs"]["points"]) == 0 and len(far[0]["data_samples"].gt_boxes) > 0
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with logged_warnings() as warned:
        assert model.train_step(pseudo_collate([far[0], far[1]]), optim) == {}
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert any("step skipped" in m for m in warned), warned

    losses = model(**model.data_preprocessor(pseudo_collate([far[0]]), True), mode="loss")
    sum(losses.values()).backward()
    assert all(float(v.detach()) == 0.0 for v in losses.values())
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    optim.zero_grad()

    with logged_warnings() as warned:
        log = model.train_step(pseudo_collate([near[0], far[1]]), optim)
    assert set(log) >= {"loss_heatmap", "loss_bbox"} and all(torch.isfinite(v) for v in log.values())
    assert float(log["loss_bbox"]) > 0  # the real sample's boxes are trained
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert any("1 training sample(s) without a point inside point_cloud_range" in m for m in warned), warned


def test_an_object_array_npy_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([[1.0, 2.0, 3.0], "not a point"], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError) as caught:
        load_points(path)
    assert str(path) in str(caught.value) and "Python objects" in str(caught.value), caught.value


def test_non_finite_points_are_dropped_with_one_warning_naming_the_file(raw, tmp_path):
    """NaN or inf in any column a file gives (x, y, z, intensity): those rows are dropped, the rest kept in order,
    and one warning names the file and the count, for each reader."""
    cloud = raw[:, :4].copy()
    bad = [3, 10, 11, 500]
    cloud[3, 0], cloud[10, 2], cloud[11, 1], cloud[500, 3] = np.nan, np.inf, -np.inf, np.nan
    np.save(tmp_path / "cloud.npy", cloud)
    cloud.tofile(tmp_path / "cloud.bin")
    write_ply(tmp_path / "cloud.ply", cloud)
    expected = np.column_stack([np.delete(cloud, bad, axis=0), np.zeros(len(cloud) - len(bad), np.float32)])
    for name, dims in (("cloud.npy", 5), ("cloud.bin", 4), ("cloud.ply", 5)):
        with logged_warnings() as warned:
            points = load_points(tmp_path / name, dims)
        np.testing.assert_array_equal(points, expected, err_msg=name)
        said = [m for m in warned if "dropped" in m]
        assert len(said) == 1 and str(tmp_path / name) in said[0] and "dropped 4 of its" in said[0], (name, warned)
