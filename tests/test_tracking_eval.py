"""Tracking scored by the devkit's TrackingEval through tools/track.py, on ground truth of the session's synthetic
world (its mini_val scene) turned into detections and saved as tools/test.py --out saves them."""
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np

from perception3d.datasets.classes import CLASSES

ROOT = Path(__file__).resolve().parents[1]


def ground_truth_detections(root):
    """The mini_val ground truth the devkit scores (boxes with LiDAR points) as a DetectionDump result, each box's
    voxel at its centre, scores falling in list order."""
    infos = pickle.loads((Path(root) / "nuscenes_infos_val.pkl").read_bytes())["data_list"]
    frames = []
    for info in infos:
        keep = np.isin(info["gt_names"], CLASSES) & (np.asarray(info["num_lidar_pts"]) > 0)
        boxes = np.asarray(info["gt_boxes"], dtype=np.float32)[keep]
        frames.append({"token": info["token"], "scene_token": info["scene_token"], "timestamp": info["timestamp"],
                       "lidar2ego": info["lidar2ego"], "ego2global": info["ego2global"], "boxes": boxes,
                       "scores": np.linspace(0.9, 0.5, len(boxes)),
                       "labels": np.array([CLASSES.index(n) for n in np.asarray(info["gt_names"])[keep]]),
                       "voxel_xy": boxes[:, :2]})
    return {"classes": list(CLASSES), "frames": frames}


def test_track_tool_on_exact_detections_scores_full_marks_by_the_devkit(synthetic_root, tmp_path):
    """Noise-free detections through tools/track.py: the devkit's summary lands in <work-dir>/track_eval. Exact
    boxes are tracked through occlusions of several seconds with 20 frames of coasting, and Hungarian matching
    keeps a higher-scored neighbour from taking a track (the defaults, CenterPoint's, are for model detections:
    3 frames, greedy). One identity is lost in this world: a walking pedestrian disappears behind another object at the moment a
    standing one comes into view within the 1 m gate of where it should be, and that one takes its track (the
    issue asks for none; position alone cannot tell the two apart)."""
    detections = ground_truth_detections(synthetic_root)
    dump = tmp_path / "results.pkl"
    dump.write_bytes(pickle.dumps(detections))
    run = subprocess.run([sys.executable, "tools/track.py", str(dump), "--data-root", synthetic_root, "--max-age", "20",
                          "--matcher", "hungarian"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((tmp_path / "track_eval" / "metrics_summary.json").read_text())
    print(run.stdout[-1500:])
    assert summary["amota"] >= 0.99 and summary["ids"] <= 1, (summary["amota"], summary["ids"])
    assert "AMOTA" in run.stdout


def test_track_tool_refuses_bad_input(tmp_path, synthetic_root):
    not_a_dump = tmp_path / "points.pkl"
    not_a_dump.write_bytes(pickle.dumps(np.zeros((3, 5))))
    cases = [([str(tmp_path / "missing.pkl"), "--data-root", synthetic_root], "not found"),
             ([str(not_a_dump), "--data-root", synthetic_root], "not a detection result"),
             ([str(not_a_dump), "--data-root", str(tmp_path / "nowhere")], "is not a folder"),
             ([str(not_a_dump), "--data-root", synthetic_root, "--max-age", "-1"], "max_age")]
    for args, message in cases:
        run = subprocess.run([sys.executable, "tools/track.py", *args], cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 2 and message in run.stderr, (args, run.stderr[-2000:])
