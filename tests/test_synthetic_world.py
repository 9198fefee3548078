"""The synthetic world as the devkit sees it: tables load, counts and velocities agree, evaluation runs."""
import json
from pathlib import Path

import numpy as np
import pytest
from nuscenes.utils import splits
from nuscenes.utils.data_classes import LidarPointCloud
from nuscenes.utils.geometry_utils import points_in_box

from perception3d.datasets.synthetic import create_synthetic_world, scene_names


def test_devkit_loads_the_world_with_official_scene_names_and_nuscenes_timing(nusc):
    names = {s["name"] for s in nusc.scene}
    assert names == set(splits.mini_train[:2]) | set(splits.mini_val[:1])
    for scene in nusc.scene:
        samples = [nusc.get("sample", scene["first_sample_token"])]
        while samples[-1]["next"]:
            samples.append(nusc.get("sample", samples[-1]["next"]))
        assert len(samples) == scene["nbr_samples"] == 40  # 20 s at 2 Hz
        assert np.allclose(np.diff([s["timestamp"] for s in samples]), 500_000)
        sd = nusc.get("sample_data", samples[5]["data"]["LIDAR_TOP"])
        chain = 0
        while sd["prev"] and chain < 10:  # 9 sweeps at 20 Hz between key frames
            sd = nusc.get("sample_data", sd["prev"])
            chain += 1
            assert sd["is_key_frame"] == (chain == 10)
    # the LiDAR is mounted like nuScenes': its x axis points to the ego's right
    calib = nusc.calibrated_sensor[0]
    from pyquaternion import Quaternion
    assert np.allclose(Quaternion(calib["rotation"]).rotate([1, 0, 0]), [0, -1, 0], atol=0.05)


def test_every_num_lidar_pts_equals_the_devkit_recount(nusc):
    checked = 0
    for sample in nusc.sample:
        path, boxes, _ = nusc.get_sample_data(sample["data"]["LIDAR_TOP"])
        cloud = LidarPointCloud.from_file(path)
        assert cloud.points.shape[1] == 32 * 1084  # every ray is written, as nuScenes does
        for box in boxes:
            ann = nusc.get("sample_annotation", box.token)
            assert points_in_box(box, cloud.points[:3]).sum() == ann["num_lidar_pts"], ann["category_name"]
            checked += 1
    assert checked > 1000


def test_world_has_all_ten_classes_moving_objects_and_linked_instances(nusc):
    from nuscenes.eval.detection.constants import DETECTION_NAMES
    from nuscenes.eval.detection.utils import category_to_detection_name
    ten = {"car", "truck", "bus", "trailer", "construction_vehicle", "pedestrian", "motorcycle", "bicycle",
           "traffic_cone", "barrier"}
    assert ten == set(DETECTION_NAMES)  # the devkit's ten detection classes
    names = {category_to_detection_name(a["category_name"]) for a in nusc.sample_annotation}
    assert names - {None} == ten, ten - names
    attributes = {nusc.get("attribute", t)["name"] for a in nusc.sample_annotation for t in a["attribute_tokens"]}
    assert {"vehicle.moving", "vehicle.parked", "pedestrian.moving", "pedestrian.standing",
            "cycle.with_rider"} <= attributes
    speeds = [np.linalg.norm(nusc.box_velocity(a["token"])[:2]) for a in nusc.sample_annotation[::7]]
    assert np.nanmax(speeds) > 3.0 and np.nanmedian(speeds) < 0.5  # traffic moves, parked things stand
    inst = nusc.instance[0]
    ann = nusc.get("sample_annotation", inst["first_annotation_token"])
    n = 1
    while ann["next"]:
        ann = nusc.get("sample_annotation", ann["next"])
        n += 1
    assert n == inst["nbr_annotations"] and ann["token"] == inst["last_annotation_token"]


def test_synthetic_frames_look_like_a_real_nuscenes_frame(nusc):
    real = np.fromfile(next((Path(__file__).parent / "data" / "nuscenes_frame").glob("*.pcd.bin")),
                       dtype=np.float32).reshape(-1, 5)
    path = nusc.get_sample_data_path(nusc.sample[10]["data"]["LIDAR_TOP"])
    syn = np.fromfile(path, dtype=np.float32).reshape(-1, 5)
    assert syn.shape == real.shape
    for cloud in (real, syn):
        far = np.hypot(cloud[:, 0], cloud[:, 1]) > 3
        assert 20_000 < far.sum() < 30_000
        assert np.percentile(cloud[far, 2], 5) < -1.5  # the ground, 1.84 m below the sensor
        assert np.array_equal(np.unique(cloud[:, 4]), np.arange(32))  # ring index
        assert cloud[:, 3].max() <= 255


def _ground_truth_as_predictions(nusc, split_scenes, to_record):
    """A devkit submission holding, for every sample of ``split_scenes``, its annotations with points, each
    turned into a prediction record by ``to_record(ann, velocity)`` (None leaves it out)."""
    results = {}
    for sample in nusc.sample:
        if nusc.get("scene", sample["scene_token"])["name"] not in split_scenes:
            continue
        boxes = []
        for token in sample["anns"]:
            ann = nusc.get("sample_annotation", token)
            if ann["num_lidar_pts"] == 0:  # the devkit drops such ground truth: a perfect detector misses them
                continue
            velocity = np.nan_to_num(nusc.box_velocity(token)[:2]).tolist()
            record = to_record(ann, velocity)
            if record is not None:
                boxes.append({"sample_token": sample["token"], "translation": ann["translation"],
                              "size": ann["size"], "rotation": ann["rotation"], "velocity": velocity, **record})
        results[sample["token"]] = boxes
    return {"meta": {"use_lidar": True, "use_camera": False, "use_radar": False, "use_map": False,
                     "use_external": False}, "results": results}


def test_detection_eval_of_the_ground_truth_scores_full_marks(nusc, tmp_path):
    """The ground truth the devkit keeps (its own load_gt and filter_eval_boxes: within the class range, at least one
    point, not in a bike rack) submitted as predictions scores 1 by the devkit: every class's AP, mAP and NDS."""
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.common.loaders import add_center_dist, filter_eval_boxes, load_gt
    from nuscenes.eval.detection.constants import DETECTION_NAMES
    from nuscenes.eval.detection.data_classes import DetectionBox
    from nuscenes.eval.detection.evaluate import DetectionEval

    config = config_factory("detection_cvpr_2019")
    kept = filter_eval_boxes(nusc, add_center_dist(nusc, load_gt(nusc, "mini_val", DetectionBox)), config.class_range)
    results = {token: [{"sample_token": token, "translation": list(box.translation), "size": list(box.size),
                        "rotation": list(box.rotation), "velocity": np.nan_to_num(box.velocity).tolist(),
                        "detection_name": box.detection_name, "detection_score": 0.9,
                        "attribute_name": box.attribute_name} for box in kept[token]]
               for token in kept.sample_tokens}
    assert sum(map(len, results.values())) > 500
    path = tmp_path / "gt_as_predictions.json"
    path.write_text(json.dumps({"meta": {"use_lidar": True, "use_camera": False, "use_radar": False,
                                         "use_map": False, "use_external": False}, "results": results}))
    evaluator = DetectionEval(nusc, config, str(path), eval_set="mini_val", output_dir=str(tmp_path), verbose=False)
    metrics, _ = evaluator.evaluate()
    assert set(metrics.mean_dist_aps) == set(DETECTION_NAMES)
    assert min(metrics.mean_dist_aps.values()) >= 0.999, metrics.mean_dist_aps  # every class is in mini_val
    assert metrics.mean_ap >= 0.999
    assert metrics.nd_score >= 0.999, metrics.serialize()["tp_errors"]


def test_tracking_eval_of_the_ground_truth_tracks_scores_full_marks(nusc, synthetic_root, tmp_path):
    """Instance tokens as track ids: the devkit's TrackingEval sees every track whole and never switched."""
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.tracking.evaluate import TrackingEval
    from nuscenes.eval.tracking.utils import category_to_tracking_name

    def track(ann, velocity):
        name = category_to_tracking_name(ann["category_name"])
        if name is None:  # barriers and cones are not tracked
            return None
        return {"tracking_name": name, "tracking_score": 0.9, "tracking_id": ann["instance_token"]}

    path = tmp_path / "gt_tracks.json"
    path.write_text(json.dumps(_ground_truth_as_predictions(nusc, set(splits.mini_val), track)))
    config = config_factory("tracking_nips_2019")
    evaluator = TrackingEval(config, str(path), eval_set="mini_val",
                             output_dir=str(tmp_path), nusc_version="v1.0-mini", nusc_dataroot=synthetic_root,
                             verbose=False)
    metrics, _ = evaluator.evaluate()
    summary = metrics.serialize()
    assert summary["amota"] >= 0.95 and summary["amotp"] < 0.05, summary
    assert summary["ids"] == 0 and summary["fn"] == 0 and summary["fp"] == 0
    tracked = {name for name, amota in summary["label_metrics"]["amota"].items() if amota >= 0.95}
    assert tracked == set(config.tracking_names), summary["label_metrics"]["amota"]  # all seven, mini_val alone


def test_same_seed_writes_the_same_world(synthetic_root, tmp_path):
    """A one-scene world with seed 0 is the first scene of the session's world, byte for byte."""
    summary = create_synthetic_world(str(tmp_path), "v1.0-mini", n_scenes=1, seed=0, progress=False)
    assert summary["samples"] == 40
    table = lambda root, name: json.loads((Path(root) / "v1.0-mini" / f"{name}.json").read_text())  # noqa: E731
    ours = {a["token"]: a for a in table(tmp_path, "sample_annotation")}
    theirs = {a["token"]: a for a in table(synthetic_root, "sample_annotation") if a["token"] in ours}
    assert len(theirs) == len(ours) and all(ours[t] == theirs[t] for t in ours)
    files = sorted((tmp_path / "samples" / "LIDAR_TOP").iterdir())[::9]
    for f in files:
        assert f.read_bytes() == (Path(synthetic_root) / "samples" / "LIDAR_TOP" / f.name).read_bytes()
    again = create_synthetic_world(str(tmp_path), "v1.0-mini", n_scenes=1, seed=0, progress=False)
    assert again["reused"]


@pytest.mark.parametrize("version,n,expected", [("v1.0-mini", None, (8, 2)), ("v1.0-mini", 3, (2, 1)),
                                                ("v1.0-trainval", 20, (16, 4))])
def test_scene_names_come_from_the_official_splits(version, n, expected):
    names = scene_names(version, n)
    assert (sum(s == "train" for _, s in names), sum(s == "val" for _, s in names)) == expected
    official = splits.create_splits_scenes()
    train, val = ("mini_train", "mini_val") if version == "v1.0-mini" else ("train", "val")
    assert all(name in official[train if s == "train" else val] for name, s in names)


def test_bad_arguments_are_refused_clearly():
    with pytest.raises(ValueError, match="--scenes must be between 1 and 10"):
        scene_names("v1.0-mini", 11)
    with pytest.raises(ValueError, match="--version must be one of"):
        scene_names("v2.0", 1)
