"""NuScenesMetric: our LiDAR-frame boxes, augmented or not, reach the devkit's DetectionEval in the global frame."""
import json

import numpy as np
import pytest
import torch

from perception3d.datasets import NuScenesDataset
from perception3d.datasets.transforms import GlobalRotScaleTrans, LoadPoints, RandomFlip3D
from perception3d.datasets.transforms.formatting import Pack
from perception3d.evaluation import NuScenesMetric, attribute_from_velocity
from perception3d.models import Detections


def ground_truth_as_detections(root, augment):
    """Every val key frame's ground truth (boxes with points, as the devkit keeps) as Detections, in the frame
    the pipeline leaves them in: augmented by a random rotation, scale, translation and flip when ``augment``."""
    pipeline = [LoadPoints()]
    if augment:
        pipeline += [GlobalRotScaleTrans(rot_range=(-3.1, 3.1), scale_range=(0.9, 1.1),
                                         translation_std=(2.0, 2.0, 0.5), seed=1),
                     RandomFlip3D(flip_x_prob=0.5, flip_y_prob=0.5, seed=2)]
    dataset = NuScenesDataset(root, "nuscenes_infos_val.pkl", pipeline=pipeline + [Pack()])
    batches = []
    for i in range(len(dataset)):
        item = dataset[i]
        meta = item["data_samples"]
        det = Detections(meta.gt_boxes, torch.linspace(0.9, 0.5, len(meta.gt_boxes)), meta.gt_labels,
                         torch.zeros((len(meta.gt_boxes), 2), dtype=torch.int64), meta.gt_boxes[:, :2])
        batches.append(({"data_samples": [meta]}, [det]))
    return batches


@pytest.mark.parametrize("augment", [False, True])
def test_ground_truth_through_the_metric_scores_full_marks_by_the_devkit(synthetic_root, tmp_path, augment):
    metric = NuScenesMetric(synthetic_root, "v1.0-mini", "mini_val", out_dir=str(tmp_path))
    batches = ground_truth_as_detections(synthetic_root, augment)
    for data_batch, outputs in batches:
        metric.process(data_batch, outputs)
    metrics = metric.evaluate(len(batches))
    assert metrics["NuScenes/mAP"] > 0.95 and metrics["NuScenes/NDS"] > 0.95, metrics
    assert metrics["NuScenes/mATE"] < 0.01 and metrics["NuScenes/mAOE"] < 0.01 and metrics["NuScenes/mAVE"] < 0.05
    summary = json.loads((tmp_path / "metrics_summary.json").read_text())
    assert np.isclose(summary["nd_score"], metrics["NuScenes/NDS"])
    assert (tmp_path / "metrics_details.json").is_file()
    submission = json.loads((tmp_path / "results_nusc.json").read_text())
    assert set(submission["results"]) == {m.token for b, _ in batches for m in b["data_samples"]}


def test_attributes_follow_the_speed():
    assert attribute_from_velocity("car", 5.0) == "vehicle.moving"
    assert attribute_from_velocity("car", 0.0) == "vehicle.parked"
    assert attribute_from_velocity("bus", 0.1) == "vehicle.stopped"
    assert attribute_from_velocity("bicycle", 3.0) == "cycle.with_rider"
    assert attribute_from_velocity("pedestrian", 0.0) == "pedestrian.standing"
    assert attribute_from_velocity("traffic_cone", 9.0) == ""
