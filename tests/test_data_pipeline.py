"""Infos, GT database, dataset and transforms on the session's synthetic world and on a real nuScenes frame."""
import collections
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import shapely.geometry

from perception3d.datasets import CLASSES, CBGSDataset, NuScenesDataset, load_infos
from perception3d.datasets.point_io import load_bin_points
from perception3d.datasets.transforms import (GlobalRotScaleTrans, LoadPoints, LoadSweeps, ObjectRangeFilter,
                                              ObjectSample, Pack, PointShuffle, PointsRangeFilter, RandomFlip3D)
from perception3d.ops import boxes_overlap_bev, points_in_boxes, points_in_boxes_mask
from perception3d.structures import LidarSample, bev_corners, invert_pose, limit_yaw
from perception3d.structures.frames import record_pose

REAL = Path(__file__).parent / "data" / "nuscenes_frame"
RANGE = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]


@pytest.fixture(scope="module")
def train_infos(synthetic_root):
    return load_infos(Path(synthetic_root) / "nuscenes_infos_train.pkl")["data_list"]


def test_infos_match_the_devkit_boxes_velocities_and_sweeps(nusc, train_infos):
    from nuscenes.eval.detection.utils import category_to_detection_name
    from perception3d.structures import boxes_from_devkit

    for info in train_infos[::17]:
        _, devkit_boxes, _ = nusc.get_sample_data(nusc.get("sample", info["token"])["data"]["LIDAR_TOP"])
        kept = [b for b in devkit_boxes if category_to_detection_name(b.name) is not None]
        theirs = boxes_from_devkit(kept)
        assert np.allclose(info["gt_boxes"][:, :6], theirs[:, :6], atol=1e-4)
        assert np.all(np.abs(limit_yaw(info["gt_boxes"][:, 6] - theirs[:, 6])) < 1e-5)
        # velocity: the devkit's box_velocity (global) rotated into the LiDAR frame, NaN → 0
        sd = nusc.get("sample_data", nusc.get("sample", info["token"])["data"]["LIDAR_TOP"])
        g2l = invert_pose(record_pose(nusc.get("ego_pose", sd["ego_pose_token"]))
                          @ record_pose(nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])))
        for box, row in zip(kept, info["gt_boxes"]):
            v = np.nan_to_num(nusc.box_velocity(box.token))
            v[2] = 0.0
            assert np.allclose((g2l[:3, :3] @ v)[:2], row[7:9], atol=1e-4)
        assert [s["time_lag"] for s in info["sweeps"]] == pytest.approx([0.05 * (k + 1) for k in
                                                                         range(len(info["sweeps"]))], abs=1e-6)
    assert all(len(i["sweeps"]) == 10 for i in train_infos)


def test_load_sweeps_equals_the_devkits_multisweep_cloud(nusc, synthetic_root, train_infos):
    """Key frame + 10 sweeps in the key frame's LiDAR frame, time lags included, as the devkit aggregates them."""
    from nuscenes.utils.data_classes import LidarPointCloud

    for info in train_infos[::29]:
        ours = LoadSweeps(10)(LoadPoints()(LidarSample(info, synthetic_root))).points
        cloud, times = LidarPointCloud.from_file_multisweep(nusc, nusc.get("sample", info["token"]), "LIDAR_TOP",
                                                            "LIDAR_TOP", nsweeps=11, min_distance=1.0)
        assert ours.shape == (cloud.points.shape[1], 5)
        assert np.allclose(ours[:, :3], cloud.points[:3].T, atol=1e-3)
        assert np.allclose(ours[:, 3], cloud.points[3])
        assert np.allclose(ours[:, 4], times[0], atol=1e-6)


def test_format_version_and_missing_files_are_refused_with_how_to_fix(synthetic_root, tmp_path):
    infos = load_infos(Path(synthetic_root) / "nuscenes_infos_val.pkl")
    infos["metainfo"]["format_version"] = 0
    old = tmp_path / "nuscenes_infos_val.pkl"
    old.write_bytes(pickle.dumps(infos))
    with pytest.raises(ValueError, match="format version 0.*tools/create_data.py nuscenes"):
        load_infos(old)
    with pytest.raises(FileNotFoundError, match="nuscenes_infos_train.pkl does not exist.*create_data.py"):
        NuScenesDataset(str(tmp_path), "nuscenes_infos_train.pkl")


def test_bad_point_files_get_clear_errors(tmp_path):
    odd = tmp_path / "odd.pcd.bin"
    odd.write_bytes(np.zeros(7, np.float32).tobytes())
    with pytest.raises(ValueError, match=r"odd.pcd.bin has 28 bytes, not a multiple of 5 float32"):
        load_bin_points(odd)
    with pytest.raises(FileNotFoundError, match="missing.pcd.bin does not exist"):
        load_bin_points(tmp_path / "missing.pcd.bin")
    empty = tmp_path / "empty.pcd.bin"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.pcd.bin holds no"):
        load_bin_points(empty)
    nan = tmp_path / "nan.pcd.bin"
    pts = np.ones((4, 5), np.float32)
    pts[1, 2] = np.nan
    pts[3, 0] = np.inf
    nan.write_bytes(pts.tobytes())
    assert len(load_bin_points(nan)) == 2


def test_a_missing_sweep_names_the_file(synthetic_root, train_infos, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(Path(synthetic_root) / "samples", root / "samples")
    sample = LoadPoints()(LidarSample(train_infos[3], str(root)))
    with pytest.raises(FileNotFoundError, match=r"sweeps/LIDAR_TOP/.*pcd.bin does not exist"):
        LoadSweeps(10)(sample)


def test_real_nuscenes_frame_loads_with_five_columns_and_no_ego_points():
    raw = np.fromfile(next(REAL.glob("*.pcd.bin")), dtype=np.float32).reshape(-1, 5)
    info = {"lidar_path": next(REAL.glob("*.pcd.bin")).name, "sweeps": []}
    points = LoadSweeps(10)(LoadPoints()(LidarSample(info, str(REAL)))).points
    ego = (np.abs(raw[:, 0]) < 1) & (np.abs(raw[:, 1]) < 1)
    assert ego.sum() > 5000 and points.shape == (len(raw) - ego.sum(), 5)
    assert np.array_equal(points[:, :4], raw[~ego, :4]) and not points[:, 4].any()


def test_range_filter_and_shuffle_keep_exactly_the_points_in_range():
    raw = np.fromfile(next(REAL.glob("*.pcd.bin")), dtype=np.float32).reshape(-1, 5)
    points = raw * np.float32(1.5)  # pushes part of the frame past the range, on every side
    sample = PointsRangeFilter(RANGE)(LidarSample({}, "", points=points.copy()))
    r = np.array(RANGE, dtype=np.float32)
    inside = ((points[:, :3] >= r[:3]) & (points[:, :3] < r[3:])).all(axis=1)
    assert 0.5 < inside.mean() < 0.99 and np.array_equal(sample.points, points[inside])
    shuffled = PointShuffle(seed=0)(sample).points
    assert not np.array_equal(shuffled, points[inside])

    def rows(a):
        return a[np.lexsort(a.T[::-1])]

    assert np.array_equal(rows(shuffled), rows(points[inside]))


def test_points_in_boxes_matches_a_brute_force_loop_on_the_real_frame():
    import json

    frame = json.loads((REAL / "frame.json").read_text())
    raw = np.fromfile(next(REAL.glob("*.pcd.bin")), dtype=np.float32).reshape(-1, 5)
    boxes = np.array(frame["boxes"], dtype=np.float32)
    mask = points_in_boxes_mask(raw, boxes)
    index = points_in_boxes(raw, boxes)
    pts = raw[:, :3].astype(np.float64)
    for b, box in enumerate(boxes.astype(np.float64)):
        c, s = np.cos(box[6]), np.sin(box[6])
        inside = np.array([abs(c * (p[0] - box[0]) + s * (p[1] - box[1])) <= box[3] / 2
                           and abs(-s * (p[0] - box[0]) + c * (p[1] - box[1])) <= box[4] / 2
                           and abs(p[2] - box[2]) <= box[5] / 2 for p in pts[::7]])
        assert np.array_equal(mask[::7, b], inside)
    first = np.where(mask.any(axis=1), mask.argmax(axis=1), -1)
    assert np.array_equal(index, first)
    # and the counts are nuScenes' own num_lidar_pts for most boxes (a point or two off at faces)
    close = np.abs(mask.sum(axis=0) - np.array(frame["num_lidar_pts"])) <= 2
    assert close.mean() > 0.9


def test_bev_overlap_matches_shapely():
    rng = np.random.default_rng()
    boxes = np.zeros((120, 9))
    boxes[:, :2] = rng.uniform(-6, 6, (120, 2))
    boxes[:, 3:6] = rng.uniform(0.3, 5, (120, 3))
    boxes[:, 6] = rng.uniform(-np.pi, np.pi, 120)
    boxes[-1] = boxes[0]  # identical boxes overlap
    polys = [shapely.geometry.Polygon(c) for c in bev_corners(boxes)]
    ours = boxes_overlap_bev(boxes, boxes)
    for i in range(0, 120, 3):
        for j in range(120):
            area = polys[i].intersection(polys[j]).area
            if area > 1e-6 or area == 0.0:
                assert ours[i, j] == (area > 1e-6), (i, j, area)


def train_pipeline(seed):
    return [LoadPoints(), LoadSweeps(10), ObjectSample({"car": 3, "pedestrian": 3, "traffic_cone": 2,
                                                        "barrier": 2}, seed=seed),
            GlobalRotScaleTrans(scale_range=(0.9, 1.1), translation_std=(0.5, 0.5, 0.5), seed=seed),
            RandomFlip3D(seed=seed), PointsRangeFilter(RANGE), ObjectRangeFilter(RANGE)]


def test_augmented_points_stay_inside_their_transformed_boxes(synthetic_root):
    ds = NuScenesDataset(synthetic_root, "nuscenes_infos_train.pkl", pipeline=[LoadPoints(), LoadSweeps(10)])
    for idx, seed in ((3, 0), (40, 1), (77, 2)):
        sample = ds[idx]
        before = points_in_boxes_mask(sample.points, sample.gt_boxes)
        counts = before.sum(axis=0)
        for t in (GlobalRotScaleTrans(scale_range=(0.9, 1.1), translation_std=(0.5, 0.5, 0.5), seed=seed),
                  RandomFlip3D(flip_x_prob=1.0, flip_y_prob=0.5, seed=seed)):
            sample = t(sample)
        assert not np.allclose(sample.aug_matrix, np.eye(4))
        grown = sample.gt_boxes.copy()
        grown[:, 3:6] += 1e-3  # float32 rounding at the faces
        after = points_in_boxes_mask(sample.points, grown)
        assert (after | ~before).all()  # every point inside a box before is inside its box after
        assert np.array_equal(points_in_boxes_mask(sample.points, sample.gt_boxes).sum(axis=0)[counts > 50] > 0,
                              np.ones((counts > 50).sum(), bool))


def test_fixed_rotation_and_flips_move_a_known_point_and_box_where_hand_computation_puts_them():
    """Rotation by +90° about z with scale 1.5, then a flip across the x axis (y → −y), on the real frame with one
    known point and one known box: (3, 1, 0.5) → rotated (−1, 3, 0.5) → scaled (−1.5, 4.5, 0.75) → flipped
    (−1.5, −4.5, 0.75); the box's sizes × 1.5, heading 0.3 → 0.3 + π/2 → −(0.3 + π/2), velocity (1, −2) → (2, 1)
    → (3, 1.5) → (3, −1.5). Every point equals the point before × the reported matrix; intensity and time lag
    stay. A flip across the y axis alone: x → −x, heading θ → π − θ, vx → −vx."""
    raw = np.fromfile(next(REAL.glob("*.pcd.bin")), dtype=np.float32).reshape(-1, 5)
    known_point = np.array([[3.0, 1.0, 0.5, 7.0, 0.1]], dtype=np.float32)
    known_box = np.array([[3.0, 1.0, 0.5, 4.0, 2.0, 1.5, 0.3, 1.0, -2.0]], dtype=np.float32)
    before = np.concatenate([known_point, raw])

    def moved(*transforms):
        sample = LidarSample({}, "", points=before.copy(), gt_boxes=known_box.copy(), gt_labels=np.zeros(1, np.int64))
        for t in transforms:
            sample = t(sample)
        return sample

    sample = moved(GlobalRotScaleTrans(rot_range=(np.pi / 2, np.pi / 2), scale_range=(1.5, 1.5)),
                   RandomFlip3D(flip_x_prob=1.0, flip_y_prob=0.0))
    by_hand = np.array([[0.0, -1.5, 0.0, 0.0], [-1.5, 0.0, 0.0, 0.0], [0.0, 0.0, 1.5, 0.0], [0.0, 0.0, 0.0, 1.0]])
    np.testing.assert_allclose(sample.aug_matrix, by_hand, atol=1e-12)
    np.testing.assert_allclose(sample.points[0], [-1.5, -4.5, 0.75, 7.0, 0.1], atol=1e-6)
    np.testing.assert_allclose(sample.points[:, :3], before[:, :3] @ by_hand[:3, :3].T, atol=1e-4)
    assert np.array_equal(sample.points[:, 3:], before[:, 3:])
    (box,) = sample.gt_boxes
    np.testing.assert_allclose(box[[0, 1, 2, 3, 4, 5, 7, 8]], [-1.5, -4.5, 0.75, 6.0, 3.0, 2.25, 3.0, -1.5], atol=1e-5)
    assert abs(limit_yaw(box[6] + 0.3 + np.pi / 2)) < 1e-6

    sample = moved(RandomFlip3D(flip_x_prob=0.0, flip_y_prob=1.0))
    np.testing.assert_allclose(sample.aug_matrix, np.diag([-1.0, 1.0, 1.0, 1.0]), atol=0)
    np.testing.assert_allclose(sample.points[0], [-3.0, 1.0, 0.5, 7.0, 0.1], atol=0)
    np.testing.assert_allclose(sample.gt_boxes[0, [0, 1, 2, 3, 4, 5, 7, 8]],
                               [-3.0, 1.0, 0.5, 4.0, 2.0, 1.5, -1.0, -2.0], atol=1e-6)
    assert abs(limit_yaw(sample.gt_boxes[0, 6] - (np.pi - 0.3))) < 1e-6


def rows(points: np.ndarray) -> collections.Counter:
    """(N, 5) points → the multiset of their rows (exact bytes)."""
    return collections.Counter(map(bytes, np.ascontiguousarray(points, dtype=np.float32)))


def database_objects(root: str):
    """The GT database read from its files → a function: box (9,) → the points (float32 (P, 5), where they were
    recorded) of each database object with exactly that box (a standing object has the same box in many frames)."""
    db = pickle.loads((Path(root) / "nuscenes_dbinfos_train.pkl").read_bytes())
    points = np.fromfile(Path(root) / "nuscenes_gt_database.bin", dtype=np.float32).reshape(-1, 5)
    records = [r for recs in db["objects"].values() for r in recs]

    def points_of(box: np.ndarray):
        found = [points[r["offset"]: r["offset"] + r["num_points"]].copy() for r in records
                 if np.array_equal(r["box"], box)]
        for pts in found:
            pts[:, :3] += box[:3]
        return found

    return points_of


def test_object_sample_pastes_without_collisions_and_clears_the_space(synthetic_root):
    ds = NuScenesDataset(synthetic_root, "nuscenes_infos_train.pkl", pipeline=[LoadPoints(), LoadSweeps(10)])
    sample = ds[36]  # where three of the pasted objects land on about 200 of the frame's points
    n_before, frame_points = len(sample.gt_boxes), sample.points.copy()
    sample = ObjectSample({"car": 6, "pedestrian": 6, "barrier": 4}, seed=0)(sample)
    added = len(sample.gt_boxes) - n_before
    assert added > 0
    overlap = boxes_overlap_bev(sample.gt_boxes[n_before:], sample.gt_boxes)
    overlap[np.arange(added), n_before + np.arange(added)] = False
    assert not overlap.any()
    inside = points_in_boxes_mask(sample.points, sample.gt_boxes[n_before:]).sum(axis=0)
    assert (inside >= 5).all()  # each pasted object brought its points (min_points 5)
    assert set(CLASSES[i] for i in sample.gt_labels[n_before:]) <= {"car", "pedestrian", "barrier"}
    # the space is cleared: inside each pasted box lie exactly its object's points from the GT database (the frame's
    # own points there are gone), and the frame's other points are all kept
    points_of, cleared = database_objects(synthetic_root), 0
    pasted = sample.gt_boxes[n_before:]
    for box, mask in zip(pasted, points_in_boxes_mask(sample.points, pasted).T):
        assert any(rows(sample.points[mask]) == rows(pts) for pts in points_of(box))
        cleared += points_in_boxes_mask(frame_points, box[None])[:, 0].sum()
    assert cleared > 100  # the frame had points where objects were pasted
    untouched = ~points_in_boxes_mask(frame_points, pasted).any(axis=1)
    assert rows(frame_points[untouched]) <= rows(sample.points)
    with pytest.raises(ValueError, match=r"min_points names unknown classes \['cars'\]"):
        ObjectSample({"car": 2}, min_points={"cars": 5})


def test_object_sample_keeps_no_point_older_than_the_frames_sweeps(synthetic_root):
    """The GT database holds 10 sweeps of each object; a frame of 3 sweeps gets pasted objects of 3 sweeps."""
    ds = NuScenesDataset(synthetic_root, "nuscenes_infos_train.pkl", pipeline=[LoadPoints(), LoadSweeps(3)])
    sample = ds[10]
    oldest, n_before = sample.points[:, 4].max(), len(sample.gt_boxes)
    sample = ObjectSample({"car": 6, "pedestrian": 6}, seed=0)(sample)
    assert len(sample.gt_boxes) > n_before
    assert sample.points[:, 4].max() == oldest
    inside = points_in_boxes_mask(sample.points, sample.gt_boxes[n_before:]).any(axis=1)
    assert len(np.unique(sample.points[inside, 4])) > 1  # the pasted objects kept their recent sweeps


def test_dataset_packs_training_samples(synthetic_root):
    ds = NuScenesDataset(synthetic_root, "nuscenes_infos_train.pkl", pipeline=train_pipeline(0) + [Pack()])
    assert len(ds) == 80
    item = ds[7]
    points, targets = item["inputs"]["points"], item["data_samples"]
    assert points.dtype.is_floating_point and points.shape[1] == 5 and len(points) > 100_000
    assert set(np.unique(points[:, 4].numpy().round(2))) >= {0.0, 0.5}
    assert targets.gt_boxes.shape[1] == 9 and len(targets.gt_boxes) == len(targets.gt_labels) > 0
    xy = targets.gt_boxes[:, :2].numpy()
    assert (np.abs(xy) < 54).all()


def frames_holding_classes(root, min_points):
    """Per train frame (info order), the set of class indices of its boxes with ≥ ``min_points`` LiDAR points,
    read from the info file itself."""
    infos = pickle.loads((Path(root) / "nuscenes_infos_train.pkl").read_bytes())["data_list"]
    return [{CLASSES.index(n) for n, p in zip(info["gt_names"], info["num_lidar_pts"]) if n in CLASSES and
             p >= min_points} for info in infos]


def cbgs_expected_shares(frame_classes):
    """CBGS as Zhu et al. 2019 define it (OpenPCDet's balanced_infos_resampling, mmdetection3d's CBGSDataset): F_c
    the frames holding class c, D = Σ_c |F_c|, K classes (those present); class c draws |F_c| · (1/K) / (|F_c| / D)
    = ⌊D / K⌋ frames uniformly from F_c. Returns the balanced length K·⌊D/K⌋, the expected fraction of balanced
    frames that hold each class (n_classes,), and the variance of one balanced set's fraction (n_classes,)."""
    holds = np.array([[c in f for c in range(len(CLASSES))] for f in frame_classes], dtype=np.float64)  # (N, C)
    per_class = holds.sum(0)
    present = np.flatnonzero(per_class)
    draws = int(per_class.sum()) // len(present)  # per present class
    length = draws * len(present)
    # p[g, c]: chance that a frame drawn from F_g holds class c
    p = np.stack([holds[holds[:, g] > 0].mean(0) for g in present])
    return length, draws * p.sum(0) / length, draws * (p * (1 - p)).sum(0) / length ** 2


@pytest.mark.parametrize("min_points", [1, 50, 200])  # 50: motorcycles in 7 of 80 frames; 200: four classes absent
def test_cbgs_gives_each_class_its_share(synthetic_root, min_points):
    """Each class's share of the balanced frames, averaged over 20 seeds, against the share CBGS's definition gives
    (within 4 standard deviations of the draws), and the balanced length exactly."""
    base = NuScenesDataset(synthetic_root, "nuscenes_infos_train.pkl", min_gt_points=min_points)
    frame_classes = frames_holding_classes(synthetic_root, min_points)
    length, expected, variance = cbgs_expected_shares(frame_classes)
    seeds = range(20)
    shares = []
    for seed in seeds:
        cbgs = CBGSDataset(base, seed=seed)
        assert len(cbgs) == length
        shares.append([np.mean([c in frame_classes[i] for i in cbgs.indices]) for c in range(len(CLASSES))])
    observed = np.mean(shares, 0)
    tolerance = 4 * np.sqrt(variance / len(seeds)) + 1e-9
    off = {CLASSES[c]: (round(observed[c], 4), round(expected[c], 4))
           for c in np.flatnonzero(np.abs(observed - expected) > tolerance)}
    assert not off, off  # class: (observed, expected) share
    before = np.array([np.mean([c in f for f in frame_classes]) for c in range(len(CLASSES))])
    rare = int(np.argmin(np.where(before > 0, before, 2)))
    assert observed[rare] > before[rare]  # the rarest class is drawn more often
