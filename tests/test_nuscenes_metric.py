"""NuScenesMetric: our LiDAR-frame boxes, augmented or not, reach the devkit's DetectionEval in the global frame."""
import json

import numpy as np
import pytest
import torch
from nuscenes.eval.detection.utils import category_to_detection_name

from perception3d.datasets import NuScenesDataset
from perception3d.datasets.transforms import GlobalRotScaleTrans, LoadPoints, RandomFlip3D
from perception3d.datasets.transforms.formatting import Pack
from perception3d.evaluation import NuScenesMetric, attribute_from_velocity
from perception3d.models import Detections


def devkit_scored_annotations(nusc, eval_set="mini_val"):
    """(sample token, instance token) of each annotation the devkit scores: its own load_gt and filter_eval_boxes
    (within the class range, at least one point, not in a bike rack), found again by translation."""
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.common.loaders import add_center_dist, filter_eval_boxes, load_gt
    from nuscenes.eval.detection.data_classes import DetectionBox

    class_range = config_factory("detection_cvpr_2019").class_range
    kept = filter_eval_boxes(nusc, add_center_dist(nusc, load_gt(nusc, eval_set, DetectionBox)), class_range)
    scored = set()
    for token in kept.sample_tokens:
        where = {(b.detection_name, tuple(b.translation)) for b in kept[token]}
        for ann in (nusc.get("sample_annotation", a) for a in nusc.get("sample", token)["anns"]):
            if (category_to_detection_name(ann["category_name"]), tuple(ann["translation"])) in where:
                scored.add((token, ann["instance_token"]))
    assert len(scored) == sum(len(kept[t]) for t in kept.sample_tokens)
    return scored


def ground_truth_as_detections(root, augment, scored):
    """Every val key frame's ground truth that the devkit scores (``scored``: (sample token, instance token)) as
    Detections, in the frame the pipeline leaves them in: augmented by a random rotation, scale, translation and
    flip when ``augment``."""
    pipeline = [LoadPoints()]
    if augment:
        pipeline += [GlobalRotScaleTrans(rot_range=(-3.1, 3.1), scale_range=(0.9, 1.1),
                                         translation_std=(2.0, 2.0, 0.5), seed=1),
                     RandomFlip3D(flip_x_prob=0.5, flip_y_prob=0.5, seed=2)]
    dataset = NuScenesDataset(root, "nuscenes_infos_val.pkl", pipeline=pipeline + [Pack()])
    batches = []
    for i in range(len(dataset)):
        item, info = dataset[i], dataset.get_data_info(i)
        meta = item["data_samples"]
        instances = info["instance_tokens"][info["num_lidar_pts"] >= dataset.min_gt_points]  # the dataset's boxes
        keep = torch.tensor([(meta.token, t) in scored for t in instances], dtype=torch.bool)
        boxes, labels = meta.gt_boxes[keep], meta.gt_labels[keep]
        det = Detections(boxes, torch.linspace(0.9, 0.5, len(boxes)), labels,
                         torch.zeros((len(boxes), 2), dtype=torch.int64), boxes[:, :2])
        batches.append(({"data_samples": [meta]}, [det]))
    return batches


@pytest.mark.parametrize("augment", [False, True])
def test_ground_truth_through_the_metric_scores_full_marks_by_the_devkit(nusc, synthetic_root, tmp_path, augment):
    """Exactly the ground truth the devkit scores, through NuScenesMetric (LiDAR frame, augmented or not, to the
    global frame): 1 by the devkit, every class; the fast evaluation and the devkit's agree on every number
    (backend "both")."""
    scored = devkit_scored_annotations(nusc)
    metric = NuScenesMetric(synthetic_root, "v1.0-mini", "mini_val", out_dir=str(tmp_path), backend="both")
    batches = ground_truth_as_detections(synthetic_root, augment, scored)
    for data_batch, outputs in batches:
        metric.process(data_batch, outputs)
    metrics = metric.evaluate(len(batches))
    submission = json.loads((tmp_path / "results_nusc.json").read_text())
    assert min(v for k, v in metrics.items() if k.startswith("NuScenes/AP_")) >= 0.999, metrics
    assert metrics["NuScenes/mAP"] >= 0.999, metrics
    assert metrics["NuScenes/mATE"] < 1e-3 and metrics["NuScenes/mASE"] < 1e-3 and metrics["NuScenes/mAOE"] < 1e-3
    assert metrics["NuScenes/mAVE"] < 0.01  # float32 boxes; the velocities are the devkit's own
    # attributes are not ground truth but read off the speed (attribute_from_velocity), which the world's labels
    # do not always follow: NDS is what perfect boxes with those attributes score, 1 − mAAE / 10
    assert metrics["NuScenes/NDS"] > 0.95 and metrics["NuScenes/NDS"] >= 0.999 - metrics["NuScenes/mAAE"] / 10
    assert sum(map(len, submission["results"].values())) == len(scored) > 500
    summary = json.loads((tmp_path / "metrics_summary.json").read_text())
    assert np.isclose(summary["nd_score"], metrics["NuScenes/NDS"])
    assert (tmp_path / "metrics_details.json").is_file() and (tmp_path / "devkit" / "metrics_details.json").is_file()
    assert set(submission["results"]) == {m.token for b, _ in batches for m in b["data_samples"]}


def test_attributes_follow_the_speed():
    assert attribute_from_velocity("car", 5.0) == "vehicle.moving"
    assert attribute_from_velocity("car", 0.0) == "vehicle.parked"
    assert attribute_from_velocity("bus", 0.1) == "vehicle.stopped"
    assert attribute_from_velocity("bicycle", 3.0) == "cycle.with_rider"
    assert attribute_from_velocity("pedestrian", 0.0) == "pedestrian.standing"
    assert attribute_from_velocity("traffic_cone", 9.0) == ""


def val_frames(root, pipeline=()):
    """The mini_val key frames packed as the test loop packs them: (data batch, ground truth as Detections)."""
    dataset = NuScenesDataset(root, "nuscenes_infos_val.pkl", pipeline=[LoadPoints(), *pipeline, Pack()])
    for i in range(len(dataset)):
        meta = dataset[i]["data_samples"]
        boxes = meta.gt_boxes
        yield {"data_samples": [meta]}, [Detections(boxes, torch.full((len(boxes),), 0.9), meta.gt_labels,
                                                    torch.zeros((len(boxes), 2), dtype=torch.int64), boxes[:, :2])]


def test_metric_warns_on_a_subset_and_refuses_samples_of_another_split(synthetic_root, tmp_path, capfd):
    """A subset of the split (e.g. test_dataloader.dataset.indices): a warning, and the devkit counts the other
    samples' boxes as missed. A sample of mini_train scored as mini_val: refused, naming the split."""
    metric = NuScenesMetric(synthetic_root, "v1.0-mini", "mini_val", out_dir=str(tmp_path / "subset"))
    frames = list(val_frames(synthetic_root))
    assert len(frames) == 40
    for data_batch, outputs in frames[:4]:
        metric.process(data_batch, outputs)
    capfd.readouterr()
    metrics = metric.evaluate(4)
    assert "predictions cover 4 of the 40 samples of mini_val; the devkit counts the boxes of the others as missed" \
        in "".join(capfd.readouterr())
    submission = json.loads((tmp_path / "subset" / "results_nusc.json").read_text())
    assert len(submission["results"]) == 40 and sum(bool(r) for r in submission["results"].values()) == 4
    assert metrics["NuScenes/mAP"] < 0.3  # recall at most about 4 / 40 of the boxes

    metric = NuScenesMetric(synthetic_root, "v1.0-mini", "mini_val", out_dir=str(tmp_path / "train"))
    train = NuScenesDataset(synthetic_root, "nuscenes_infos_train.pkl", pipeline=[LoadPoints(), Pack()])
    meta = train[0]["data_samples"]
    metric.process({"data_samples": [meta]}, frames[0][1])
    metric.process(*frames[1])
    with pytest.raises(ValueError, match=r"predictions for 1 samples outside mini_val of v1.0-mini under .*: is the "
                                         r"evaluator's eval_set the dataset's\?"):
        metric.evaluate(2)


def test_tracking_evaluation_warns_on_a_subset_and_refuses_samples_of_another_split(nusc, synthetic_root, tmp_path,
                                                                                     capfd):
    """evaluate_tracking (tools/track.py, tools/test.py --task track): tracks of 6 of mini_val's 40 samples are
    scored with a warning, the other samples' objects missed; a mini_train sample is refused."""
    from nuscenes.eval.tracking.utils import category_to_tracking_name
    from nuscenes.utils.splits import mini_train, mini_val

    from perception3d.evaluation import evaluate_tracking

    def tracks(sample):
        anns = [nusc.get("sample_annotation", a) for a in sample["anns"]]
        return [{"sample_token": sample["token"], "translation": a["translation"], "size": a["size"],
                 "rotation": a["rotation"], "velocity": np.nan_to_num(nusc.box_velocity(a["token"])[:2]).tolist(),
                 "tracking_name": category_to_tracking_name(a["category_name"]), "tracking_score": 0.9,
                 "tracking_id": a["instance_token"]}
                for a in anns if category_to_tracking_name(a["category_name"]) and a["num_lidar_pts"] > 0]

    scene_of = {s["token"]: s["name"] for s in nusc.scene}
    val = sorted((s for s in nusc.sample if scene_of[s["scene_token"]] in mini_val), key=lambda s: s["timestamp"])
    train = next(s for s in nusc.sample if scene_of[s["scene_token"]] in mini_train)
    with pytest.raises(ValueError, match="tracks for 1 samples outside mini_val of v1.0-mini"):
        evaluate_tracking({train["token"]: tracks(train), val[0]["token"]: tracks(val[0])}, synthetic_root,
                          str(tmp_path / "wrong"), verbose=False)
    capfd.readouterr()
    summary = evaluate_tracking({s["token"]: tracks(s) for s in val[:6]}, synthetic_root, str(tmp_path / "subset"),
                                verbose=False)
    assert "tracks cover 6 of the 40 samples of mini_val; the devkit counts the objects of the others as missed" \
        in "".join(capfd.readouterr())
    assert summary["fn"] > 0 and summary["fp"] == 0 and summary["amota"] < 0.5


def test_detection_dump_refuses_augmented_frames_and_saves_test_frames(synthetic_root, tmp_path):
    """DetectionDump (tools/test.py --out) keeps boxes in each frame's LiDAR frame: an augmented frame (a training
    pipeline's rotation) is refused, a test-time frame saved with its poses."""
    from perception3d.evaluation import DetectionDump, load_detections

    dump = DetectionDump(str(tmp_path / "dets.pkl"))
    augmented = next(val_frames(synthetic_root, [GlobalRotScaleTrans(seed=0)]))
    with pytest.raises(ValueError, match="DetectionDump expects test-time frames .*got an augmented one"):
        dump.process(*augmented)
    data_batch, outputs = next(val_frames(synthetic_root))
    dump.process(data_batch, outputs)
    dump.evaluate(1)
    (frame,) = load_detections(str(tmp_path / "dets.pkl"))["frames"]
    meta = data_batch["data_samples"][0]
    assert frame["token"] == meta.token and np.array_equal(frame["ego2global"], meta.ego2global)
    np.testing.assert_array_equal(frame["boxes"], meta.gt_boxes.numpy())
