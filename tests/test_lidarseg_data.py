"""nuScenes-lidarseg in the synthetic world and the data path: every ray labelled with what it hit (checked with the
devkit's points_in_box and an independent street geometry), the devkit's LidarSegEval scoring ground truth as
prediction at full marks through our metric, labels that travel with their points through augmentation, and bad
input refused with the file named."""
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from nuscenes import NuScenes
from nuscenes.eval.lidarseg.evaluate import LidarSegEval
from nuscenes.eval.lidarseg.utils import LidarsegClassMapper
from nuscenes.utils.data_classes import Box
from nuscenes.utils.data_io import load_bin_file
from nuscenes.utils.geometry_utils import points_in_box
from pyquaternion import Quaternion

from perception3d.datasets import NuScenesSegDataset, SEG_CLASSES
from perception3d.datasets.lidarseg import CATEGORY_INDEX, LIDARSEG_CATEGORIES, load_point_labels
from perception3d.datasets.synthetic.layout import CURB, SIDE_ORIGINS, SIDEWALK_END
from perception3d.datasets.synthetic.lidar import BOX, GROUND, SPHERE, LidarModel
from perception3d.datasets.synthetic.scan import (annotation_boxes, ego2global, lidar2ego, objects_near,
                                                  simulate_sweep)
from perception3d.datasets.synthetic.writer import _SceneSpec
from perception3d.evaluation import LidarSegMetric, evaluate_lidarseg
from perception3d.evaluation.lidarseg_eval import prediction_path

OBJECT_CATEGORIES = {i for name, i in CATEGORY_INDEX.items() if name.split(".")[0] in ("vehicle", "human",
                                                                                       "movable_object")} - {
    CATEGORY_INDEX["vehicle.ego"]}


def _box(center, size_lwh, yaw) -> Box:
    """The devkit's Box of a global box (length along yaw, width, height)."""
    return Box(center, [size_lwh[1], size_lwh[0], size_lwh[2]], Quaternion(axis=[0, 0, 1], angle=yaw))


@pytest.fixture(scope="module")
def noiseless_sweep():
    """A key frame of scene 0 ray-cast without range noise or dropout: labels, global hit points, layout."""
    spec = _SceneSpec(0, 0, "scene-0061")
    layout = spec.layout()
    frame = int(layout.key_frames[7])
    sweep = simulate_sweep(layout, frame, LidarModel(range_noise_std=0.0, dropout=0.0),
                           np.random.default_rng(0), 10.0)
    l2g = ego2global(layout, frame) @ lidar2ego()
    xyz = sweep.points[:, :3].astype(np.float64) @ l2g[:3, :3].T + l2g[:3, 3]
    return layout, frame, sweep, xyz


def test_a_ray_into_an_object_gets_its_category_and_the_devkits_points_in_box_agrees(noiseless_sweep):
    layout, frame, sweep, xyz = noiseless_sweep
    labels = sweep.labels.astype(int)
    objects = objects_near(layout, frame, 200.0)
    boxes = annotation_boxes(layout, frame, objects)
    inside_any = np.zeros(len(xyz), dtype=bool)
    checked = 0
    for o, b in zip(objects, boxes):
        # the box 1 mm larger: an object's primitives reach its box's faces, where float rounding decides
        inside = points_in_box(_box(b[:3], b[3:6], b[6]), xyz.T, wlh_factor=1.0 + 1e-3 / b[3:6].min())
        inside_any |= inside
        if not inside.any():
            continue
        category = CATEGORY_INDEX[layout.objects[o].category]
        # inside a box: the object's category, or the ground it stands on (z = 0, the box's bottom face)
        other = inside & (labels != category)
        assert np.all(np.abs(xyz[other, 2]) < 1e-6), (layout.objects[o].category, labels[other][:5])
        checked += int((inside & (labels == category)).sum())
    assert checked > 2000
    # and every point labelled with an object category lies in a box (objects are built inside their boxes)
    on_objects = np.isin(labels, list(OBJECT_CATEGORIES))
    assert on_objects.sum() == checked
    assert inside_any[on_objects].all()


def test_the_ground_is_labelled_by_the_street_and_clutter_by_what_it_is(noiseless_sweep):
    layout, frame, sweep, xyz = noiseless_sweep
    labels = sweep.labels.astype(int)
    names = np.array(LIDARSEG_CATEGORIES)[labels]
    ground = np.isin(names, ["flat.driveable_surface", "flat.sidewalk", "flat.terrain"])
    assert np.allclose(xyz[ground, 2], 0.0, atol=1e-6)
    assert {"flat.driveable_surface", "flat.sidewalk", "flat.terrain"} <= set(names[ground])
    # independent street geometry: the path resampled every 2 cm, nearest sample by brute force, signed offset
    path = layout.path
    s = np.arange(path.s[0], path.s[-1], 0.02)
    samples, heading = path.pose(s, np.zeros_like(s))
    pts = xyz[ground, :2]
    near = np.linalg.norm(samples - layout.ego_xy[frame], axis=1) < 130.0
    samples, heading = samples[near], heading[near]
    nearest = np.array([np.argmin(((samples - p) ** 2).sum(axis=1)) for p in pts])
    rel = pts - samples[nearest]
    d = -rel[:, 0] * np.sin(heading[nearest]) + rel[:, 1] * np.cos(heading[nearest])
    (rs, re), (ls, le) = SIDE_ORIGINS
    outward = np.maximum((d - re) * rs, (d - le) * ls)
    expected = np.where(outward < CURB, "flat.driveable_surface",
                        np.where(outward < SIDEWALK_END, "flat.sidewalk", "flat.terrain"))
    edge = np.minimum(np.abs(outward - CURB), np.abs(outward - SIDEWALK_END)) < 0.05
    assert (names[ground] == expected)[~edge].all()
    # clutter: points in a wall box are man-made, points on a tree crown or bush (spheres) vegetation
    kinds, params, category = layout.clutter_kinds, layout.clutter_params, layout.clutter_category
    walls = np.flatnonzero((kinds == BOX) & (category == CATEGORY_INDEX["static.manmade"]))
    on_wall = np.zeros(len(xyz), dtype=bool)
    for p in params[walls]:
        if np.linalg.norm(p[:2] - layout.ego_xy[frame]) < 110:
            on_wall |= points_in_box(_box(p[:3], 2 * p[3:6], np.arctan2(p[7], p[6])), xyz.T, wlh_factor=1.001)
    on_wall &= xyz[:, 2] > 1e-6
    assert on_wall.sum() > 500 and (names[on_wall] == "static.manmade").all()
    spheres = params[kinds == SPHERE]
    dist = np.min(np.linalg.norm(xyz[:, None, :] - spheres[None, :, :3], axis=2) - spheres[None, :, 3], axis=1)
    on_sphere = (np.abs(dist) < 1e-3) & (xyz[:, 2] > 1e-6)
    assert on_sphere.sum() > 50 and (names[on_sphere] == "static.vegetation").all()
    # rays without a return are noise, the ego's roof is vehicle.ego
    assert ((sweep.owner == -2) == (names == "vehicle.ego")).all()
    assert (names == "noise").sum() == (np.abs(sweep.points[:, :3] - [0.0, -0.45, -0.01]).max(axis=1) < 1e-6).sum()


def test_devkit_loads_the_lidarseg_and_infos_point_at_it(seg_root):
    nusc = NuScenes("v1.0-mini", seg_root, verbose=False)
    assert len(nusc.lidarseg) == len(nusc.sample) == 240
    assert {c["name"]: c["index"] for c in nusc.category} == CATEGORY_INDEX
    infos = pickle.load(open(Path(seg_root) / "nuscenes_infos_val.pkl", "rb"))["data_list"]
    mapper = LidarsegClassMapper(nusc)
    present = set()
    for info in infos:
        record = nusc.get("lidarseg", info["lidar_token"])
        assert info["lidarseg_path"] == record["filename"]
        sd = nusc.get("sample_data", info["lidar_token"])
        assert sd["sample_token"] == info["token"] and sd["filename"] == info["lidar_path"]
        n = os.path.getsize(os.path.join(seg_root, info["lidar_path"])) // 20
        ours = load_point_labels(os.path.join(seg_root, info["lidarseg_path"]), n)
        theirs = mapper.convert_label(load_bin_file(os.path.join(seg_root, record["filename"])))
        assert np.array_equal(ours, theirs)  # our reading and mapping are the devkit's
        present |= set(np.unique(ours).tolist())
    # every class the world builds, over the two mini_val scenes (other_flat is not built)
    assert present == set(range(17)) - {SEG_CLASSES.index("other_flat") + 1}


def _gt_through_metric(seg_root, out_dir, pipeline, eval_set="mini_val"):
    """Ground truth as the model's prediction (ignored points → class 11), through LidarSegMetric."""
    dataset = NuScenesSegDataset(seg_root, "nuscenes_infos_val.pkl", pipeline=pipeline, test_mode=True)
    metric = LidarSegMetric(seg_root, out_dir=str(out_dir))
    for i in range(len(dataset)):
        item = dataset[i]
        labels = item["data_samples"].pts_labels.clone()
        labels[labels == 0] = 11
        metric.process({"data_samples": [item["data_samples"]]}, [labels])
    return metric.compute_metrics(metric.results)


def test_ground_truth_as_prediction_scores_full_marks_through_the_devkit(seg_root, tmp_path):
    shuffled = [dict(type="LoadPoints", ego_radius=0.0, with_point_index=True), dict(type="LoadPointLabels"),
                dict(type="PointShuffle"), dict(type="Pack")]
    metrics = _gt_through_metric(seg_root, tmp_path / "all", shuffled)
    assert metrics["mIoU"] == 1.0 and metrics["fwIoU"] == 1.0
    assert all(metrics[f"IoU_{c}"] == 1.0 for c in SEG_CLASSES if c != "other_flat")
    assert np.isnan(metrics["IoU_other_flat"])
    assert (tmp_path / "all" / "lidarseg_metrics.json").is_file()
    # the same folder through the devkit's own class
    nusc = NuScenes("v1.0-mini", seg_root, verbose=False)
    assert LidarSegEval(nusc, str(tmp_path / "all"), "mini_val").evaluate()["miou"] == 1.0
    # points the pipeline drops (ego square, range filter) take their nearest kept neighbour's class
    cropped = [dict(type="LoadPoints", ego_radius=1.0, with_point_index=True), dict(type="LoadPointLabels"),
               dict(type="PointsRangeFilter", point_cloud_range=[-30, -30, -3, 30, 30, 3]),
               dict(type="PointShuffle"), dict(type="Pack")]
    partial = _gt_through_metric(seg_root, tmp_path / "cropped", cropped)
    assert 0.6 < partial["mIoU"] < 1.0


def test_labels_travel_with_their_points_through_loading_augmentation_and_filtering(seg_root):
    pipeline = [dict(type="LoadPoints", ego_radius=1.0, with_point_index=True), dict(type="LoadPointLabels"),
                dict(type="LoadSweeps", sweeps_num=2), dict(type="RandomFlip3D", flip_x_prob=0.5, flip_y_prob=0.5),
                dict(type="GlobalRotScaleTrans", rot_range=[-3.14, 3.14], scale_range=[0.9, 1.1],
                     translation_std=[0.5, 0.5, 0.5]),
                dict(type="PointsRangeFilter", point_cloud_range=[-40.0, -30.0, -4.0, 40.0, 30.0, 2.0]),
                dict(type="PointShuffle"), dict(type="Pack")]
    dataset = NuScenesSegDataset(seg_root, "nuscenes_infos_train.pkl", pipeline=pipeline)
    nusc = NuScenes("v1.0-mini", seg_root, verbose=False)
    mapper = LidarsegClassMapper(nusc)
    for idx in (0, 41, 159):
        item = dataset[idx]
        targets, points = item["data_samples"], item["inputs"]["points"].numpy()
        info = dataset.get_data_info(idx)
        rows, labels = targets.point_index.numpy(), targets.pts_labels.numpy()
        assert len(rows) == len(labels) == len(points)
        key = rows >= 0
        raw = np.fromfile(os.path.join(seg_root, info["lidar_path"]), dtype=np.float32).reshape(-1, 5)
        truth = mapper.convert_label(load_bin_file(os.path.join(seg_root, info["lidarseg_path"])))
        assert np.array_equal(labels[key], truth[rows[key]])
        assert (labels[~key] == 0).all() and (~key).sum() > 1000  # sweep points: ignored
        moved = raw[rows[key], :3].astype(np.float64) @ targets.aug_matrix[:3, :3].T + targets.aug_matrix[:3, 3]
        assert np.allclose(points[key, :3], moved, atol=1e-4)
        assert len(np.unique(rows[key])) == key.sum()
        assert not np.array_equal(rows[key], np.sort(rows[key]))  # shuffled, together
        # what the range filter dropped is gone with its labels: kept rows are exactly the in-range ones
        all_moved = raw[:, :3].astype(np.float64) @ targets.aug_matrix[:3, :3].T + targets.aug_matrix[:3, 3]
        in_range = ((all_moved >= [-40.0, -30.0, -4.0]) & (all_moved < [40.0, 30.0, 2.0])).all(axis=1)
        in_range &= ~((np.abs(raw[:, 0]) < 1.0) & (np.abs(raw[:, 1]) < 1.0))
        assert set(rows[key].tolist()) == set(np.flatnonzero(in_range).tolist())


def test_bad_lidarseg_input_is_refused_with_the_file_named(seg_root, tmp_path):
    info = pickle.load(open(Path(seg_root) / "nuscenes_infos_val.pkl", "rb"))["data_list"][0]
    label_file = os.path.join(seg_root, info["lidarseg_path"])
    with pytest.raises(ValueError, match=r"lidarseg file .* holds 34688 labels for a point file of 100 points"):
        load_point_labels(label_file, 100)
    # a results folder: ground truth first (valid), then one file broken at a time
    nusc = NuScenes("v1.0-mini", seg_root, verbose=False)
    mapper = LidarsegClassMapper(nusc)
    folder = tmp_path / "results"
    tokens = []
    for record in nusc.lidarseg:
        labels = mapper.convert_label(load_bin_file(os.path.join(seg_root, record["filename"])))
        path = prediction_path(str(folder), "mini_val", record["sample_data_token"])
        path.parent.mkdir(parents=True, exist_ok=True)
        np.where(labels == 0, 11, labels).astype(np.uint8).tofile(path)
        tokens.append(record["sample_data_token"])
    assert evaluate_lidarseg(nusc, str(folder), "mini_val", str(tmp_path))["miou"] == 1.0
    target = prediction_path(str(folder), "mini_val", info["lidar_token"])
    good = target.read_bytes()
    target.write_bytes(good[:-3])
    with pytest.raises(ValueError, match=rf"{target.name}: 34685 predicted labels for a frame of 34688 points"):
        evaluate_lidarseg(nusc, str(folder), "mini_val", str(tmp_path))
    for bad in (0, 17):
        target.write_bytes(bytes([bad]) + good[1:])
        with pytest.raises(ValueError, match=rf"{target.name}: predicted labels must lie in 1-16, got"):
            evaluate_lidarseg(nusc, str(folder), "mini_val", str(tmp_path))
    target.unlink()
    with pytest.raises(ValueError, match=rf"no predictions for key frame {info['lidar_token']}"):
        evaluate_lidarseg(nusc, str(folder), "mini_val", str(tmp_path))
    # a split the root does not hold whole
    with pytest.raises(ValueError, match="LidarSegEval scores every scene of mini_train, but .* lacks 4 of its 8"):
        evaluate_lidarseg(nusc, str(folder), "mini_train", str(tmp_path))


def test_bad_segmentation_configs_are_refused(seg_root, synthetic_root, tmp_path):
    from perception3d.models.segmentors.point_segmentor import PointSegmentor

    with pytest.raises(ValueError, match="num_classes=10 does not match the 16 classes of the devkit's lidarseg"):
        PointSegmentor(network=dict(type="Linear"), num_classes=10)
    with pytest.raises(ValueError, match="classes must be the devkit's 16 lidarseg classes"):
        NuScenesSegDataset(seg_root, "nuscenes_infos_train.pkl", classes=SEG_CLASSES[:10])
    # infos of a root without lidarseg
    plain = tmp_path / "plain"
    shutil.copytree(Path(seg_root) / "v1.0-mini", plain / "v1.0-mini")
    data = pickle.load(open(Path(seg_root) / "nuscenes_infos_train.pkl", "rb"))
    for info in data["data_list"]:
        info["lidarseg_path"] = None
    pickle.dump(data, open(plain / "nuscenes_infos_train.pkl", "wb"))
    with pytest.raises(ValueError, match="160 of the 160 key frames of .* have no lidarseg labels"):
        NuScenesSegDataset(str(plain), "nuscenes_infos_train.pkl")
    # GT sampling pastes objects without point labels
    dataset = NuScenesSegDataset(synthetic_root, "nuscenes_infos_train.pkl", pipeline=[
        dict(type="LoadPoints", with_point_index=True), dict(type="LoadPointLabels"),
        dict(type="ObjectSample", sample_groups={"car": 2})])
    with pytest.raises(ValueError, match="ObjectSample pastes database objects without per-point labels"):
        dataset[0]
    with pytest.raises(ValueError, match="LoadPointLabels needs LoadPoints\\(with_point_index=True\\)"):
        NuScenesSegDataset(seg_root, "nuscenes_infos_train.pkl",
                           pipeline=[dict(type="LoadPoints"), dict(type="LoadPointLabels")])[0]


def _sample_with_columns(rng, n=3000):
    from perception3d.structures import LidarSample

    points = np.zeros((n, 5), dtype=np.float32)
    points[:, :3] = rng.uniform(-3, 3, (n, 3)).astype(np.float32)
    return LidarSample(info={}, data_root="", points=points, point_index=np.arange(n) * 7,
                       pts_labels=rng.integers(0, 17, n))


@pytest.mark.parametrize("random", [False, True])
def test_grid_sample_keeps_one_point_per_voxel_with_its_label(random, rng):
    from perception3d.datasets.transforms import GridSample
    from perception3d.datasets.transforms.random_state import seeded_sample

    sample = _sample_with_columns(rng)
    original = sample.points.copy()
    by_row = dict(zip(sample.point_index.tolist(), sample.pts_labels.tolist()))
    with seeded_sample((int(rng.integers(1 << 30)),)):
        out = GridSample(voxel_size=0.5, random=random)(sample)
    # a loop: the voxels of the cloud shifted by its minimum, the first point of each in the original order
    cells = {}
    for i, p in enumerate(original[:, :3]):
        cells.setdefault(tuple(((p - original[:, :3].min(axis=0)) / 0.5).astype(np.int64)), []).append(i)
    kept = out.point_index // 7
    assert len(kept) == len(cells)
    low = original[:, :3].min(axis=0)
    assert {tuple(((original[i, :3] - low) / 0.5).astype(np.int64)) for i in kept} == set(cells)
    if not random:
        assert set(kept.tolist()) == {rows[0] for rows in cells.values()}
    assert np.array_equal(out.points, original[kept])
    assert [by_row[r] for r in out.point_index.tolist()] == out.pts_labels.tolist()


def test_limit_num_points_keeps_the_nearest_to_a_centre_with_their_labels(rng):
    from perception3d.datasets.transforms import LimitNumPoints
    from perception3d.datasets.transforms.random_state import seeded_sample

    sample = _sample_with_columns(rng)
    original, labels = sample.points.copy(), sample.pts_labels.copy()
    with seeded_sample((3,)):
        out = LimitNumPoints(max_points=500, random=True)(sample)
    kept = out.point_index // 7
    assert len(kept) == 500 and np.array_equal(out.points, original[kept]) and np.array_equal(out.pts_labels,
                                                                                            labels[kept])
    # the kept points are a ball: every kept point is nearer some centre point of the cloud than every other one
    d = np.square(original[:, None, :3] - original[None, :, :3]).sum(axis=2)
    centres = [c for c in range(len(original)) if np.array_equal(np.sort(np.argsort(d[c], kind="stable")[:500]),
                                                                 np.sort(kept))]
    assert centres
    small = LimitNumPoints(max_points=5000)(_sample_with_columns(rng))
    assert len(small.points) == 3000  # fewer points than the limit: all kept
