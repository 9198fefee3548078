"""Tracking scored by the devkit's TrackingEval, on ground truth of the session's synthetic world (its mini_val
scene) turned into detections, exact or with noise, and saved as tools/test.py --out saves them."""
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from perception3d.datasets.classes import CLASSES
from perception3d.evaluation import evaluate_tracking, tracking_records
from perception3d.tracking import TRACKING_CLASSES, CenterPointTracker, frames_from_detections, tracking_results
from tool_module import load_tool

ROOT = Path(__file__).resolve().parents[1]


def ground_truth_detections(root, rng=None):
    """The mini_val ground truth the devkit scores (boxes with LiDAR points) as a DetectionDump result, each box's
    voxel at its centre, and the instance token of each box (None for a false positive). Exact, with scores
    falling in list order; or with the issue's noise drawn from ``rng``: centres σ 0.2 m, velocities σ 0.5 m/s,
    10 % dropped, 5 % false positives (a copy of a kept box of the frame moved up to 10 m in x and y), scores
    uniform in [0, 1)."""
    infos = pickle.loads((Path(root) / "nuscenes_infos_val.pkl").read_bytes())["data_list"]
    frames, instances = [], []
    for info in infos:
        keep = np.isin(info["gt_names"], CLASSES) & (np.asarray(info["num_lidar_pts"]) > 0)
        boxes = np.asarray(info["gt_boxes"], dtype=np.float64)[keep]
        labels = np.array([CLASSES.index(n) for n in np.asarray(info["gt_names"])[keep]], dtype=np.int64)
        tokens = list(np.asarray(info["instance_tokens"])[keep])
        scores = np.linspace(0.9, 0.5, len(boxes))
        if rng is not None:
            kept = rng.random(len(boxes)) >= 0.1
            boxes, labels, tokens = boxes[kept], labels[kept], [t for t, k in zip(tokens, kept) if k]
            boxes[:, :2] += rng.normal(0, 0.2, (len(boxes), 2))
            boxes[:, 7:9] += rng.normal(0, 0.5, (len(boxes), 2))
            copies = rng.integers(0, len(boxes), rng.binomial(len(boxes), 0.05)) if len(boxes) else []
            false = boxes[copies].copy()
            false[:, :2] += rng.uniform(-10, 10, (len(false), 2))
            boxes, labels = np.concatenate([boxes, false]), np.concatenate([labels, labels[copies]])
            tokens = tokens + [None] * len(false)
            scores = rng.random(len(boxes))
        frames.append({"token": info["token"], "scene_token": info["scene_token"], "timestamp": info["timestamp"],
                       "lidar2ego": info["lidar2ego"], "ego2global": info["ego2global"],
                       "boxes": boxes.astype(np.float32), "scores": scores, "labels": labels,
                       "voxel_xy": boxes[:, :2].astype(np.float32)})
        instances.append(tokens)
    return {"classes": list(CLASSES), "frames": frames}, instances


def oracle_results(detections, instances):
    """Tracking records of the detections with their true instance ids (each false positive its own track)."""
    frames = frames_from_detections(detections)
    by_token = {f["token"]: tokens for f, tokens in zip(detections["frames"], instances)}
    track_ids, results = {}, {}  # instance token (or a false positive's own key) → integer track id
    for frame in frames:
        tokens = by_token[frame.token]
        tracked = [i for i, name in enumerate(frame.names) if name in TRACKING_CLASSES]
        ids = [track_ids.setdefault(tokens[i] or (frame.token, i), len(track_ids)) for i in tracked]
        results[frame.token] = tracking_records(frame.token, frame.boxes[tracked], frame.scores[tracked],
                                                [frame.names[i] for i in tracked], ids, frame.scene_token)
    return results


@pytest.fixture
def exact_dump(synthetic_root, tmp_path):
    """The exact ground-truth detections saved as tools/test.py --out saves them → the .pkl path."""
    detections, _ = ground_truth_detections(synthetic_root)
    dump = tmp_path / "results.pkl"
    dump.write_bytes(pickle.dumps(detections))
    return dump


def run_track_tool(dump, data_root, *flags):
    """tools/track.py on ``dump`` as a command → (its stdout, the devkit's metrics_summary.json as a dict, the
    tracking submission's records per sample token)."""
    run = subprocess.run([sys.executable, "tools/track.py", str(dump), "--data-root", data_root, *flags],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = Path(dump).parent / "track_eval"
    summary = json.loads((out / "metrics_summary.json").read_text())
    submission = json.loads((out / "results_nusc_tracking.json").read_text())["results"]
    return run.stdout, summary, submission


def test_track_tool_on_exact_detections_scores_full_marks_by_the_devkit(synthetic_root, tmp_path):
    """Noise-free detections through tools/track.py: the devkit's summary lands in <work-dir>/track_eval, AMOTA
    ≥ 0.99 with no identity switch. Exact boxes carry exact velocities, so CenterPoint's motion rule is the right
    one for them (the Kalman default smooths positions a detector gets wrong); 20 frames of coasting carry
    objects through occlusions of several seconds, and Hungarian matching keeps a higher-scored neighbour from
    taking a track."""
    detections, _ = ground_truth_detections(synthetic_root)
    dump = tmp_path / "results.pkl"
    dump.write_bytes(pickle.dumps(detections))
    run = subprocess.run([sys.executable, "tools/track.py", str(dump), "--data-root", synthetic_root, "--max-age", "20",
                          "--matcher", "hungarian", "--motion", "centerpoint"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((tmp_path / "track_eval" / "metrics_summary.json").read_text())
    print(run.stdout[-1500:])
    assert summary["amota"] >= 0.99 and summary["ids"] == 0, (summary["amota"], summary["ids"])
    assert "AMOTA" in run.stdout


def test_default_tracker_on_exact_detections_meets_the_readme(exact_dump, synthetic_root):
    """tools/track.py with no tracker flag (Kalman, greedy, max_age 6) on the exact detections: the README's
    figures for it (AMOTA 0.989, IDS 6) as floors."""
    stdout, summary, _ = run_track_tool(exact_dump, synthetic_root)
    assert "with max_age 6, greedy, Kalman motion, voxel association off, birth score 0\n" in stdout, stdout[-1500:]
    assert summary["amota"] >= 0.985 and summary["ids"] <= 6, (summary["amota"], summary["ids"])


def test_track_tool_voxel_association_flag(exact_dump, synthetic_root):
    """--voxel-association reaches the tracker: the README's figures for it on exact detections (AMOTA 0.989,
    IDS 5; the default without it has 6 switches) as floors."""
    stdout, summary, _ = run_track_tool(exact_dump, synthetic_root, "--voxel-association")
    assert "voxel association on" in stdout, stdout[-1500:]
    assert summary["amota"] >= 0.985 and summary["ids"] <= 5, (summary["amota"], summary["ids"])


def test_track_tool_birth_score_flag(exact_dump, synthetic_root):
    """--birth-score 0.7: no track starts from a detection scored below 0.7 (the exact detections' scores fall
    from 0.9 to 0.5 in each frame, so objects first seen below 0.7 would start tracks without it); a started
    track keeps matching lower-scored detections."""
    stdout, _, submission = run_track_tool(exact_dump, synthetic_root, "--birth-score", "0.7")
    assert "birth score 0.7\n" in stdout, stdout[-1500:]
    infos = pickle.loads((Path(synthetic_root) / "nuscenes_infos_val.pkl").read_bytes())["data_list"]
    first_score = {}  # tracking id → the score of its first record, frames in time order
    for info in sorted(infos, key=lambda i: i["timestamp"]):
        for record in submission[info["token"]]:
            first_score.setdefault(record["tracking_id"], record["tracking_score"])
    scores = [r["tracking_score"] for records in submission.values() for r in records]
    assert first_score and min(first_score.values()) >= 0.7, sorted(first_score.values())[:5]
    assert min(scores) < 0.7  # tracks go on below the birth score


def test_default_tracker_is_within_003_amota_of_the_oracle_on_noisy_detections(synthetic_root, tmp_path):
    """The issue's measure: noisy ground truth tracked by the default tracker against the same detections tracked
    with their true identities (the oracle), both scored by the devkit, as the README reports it: the mean over
    noise draws 0 to 3 (one val scene of 40 frames, so one draw moves AMOTA by about ±0.03). The README's
    figures as floors: oracle 0.914 (≥ 0.90), ours 0.893 (≥ 0.88), gap 0.021 (≤ 0.03). Each draw takes about
    40 s of the suite."""
    oracle, ours = [], []
    for draw in range(4):
        detections, instances = ground_truth_detections(synthetic_root, np.random.default_rng(draw))
        oracle.append(evaluate_tracking(oracle_results(detections, instances), synthetic_root,
                                        str(tmp_path / f"oracle{draw}"), verbose=False)["amota"])
        ours.append(evaluate_tracking(tracking_results(detections, CenterPointTracker()), synthetic_root,
                                      str(tmp_path / f"ours{draw}"), verbose=False)["amota"])
        print(f"noise draw {draw}: oracle AMOTA {oracle[-1]:.4f}, ours {ours[-1]:.4f}")
    oracle_amota, our_amota = np.mean(oracle), np.mean(ours)
    assert oracle_amota >= 0.90, oracle
    assert our_amota >= 0.88, ours
    assert oracle_amota - our_amota <= 0.03, (oracle_amota, our_amota)


def test_track_tool_refuses_bad_input(tmp_path, synthetic_root, capsys):
    """tools/track.py's main in this process (the exact-detections test runs it as a command)."""
    tool = load_tool("track")
    not_a_dump = tmp_path / "points.pkl"
    not_a_dump.write_bytes(pickle.dumps(np.zeros((3, 5))))
    cases = [([str(tmp_path / "missing.pkl"), "--data-root", synthetic_root], "not found"),
             ([str(not_a_dump), "--data-root", synthetic_root], "not a detection result"),
             ([str(not_a_dump), "--data-root", str(tmp_path / "nowhere")], "is not a folder"),
             ([str(not_a_dump), "--data-root", synthetic_root, "--max-age", "-1"], "max_age")]
    for args, message in cases:
        code = tool.main(args)
        err = capsys.readouterr().err
        assert code == 2 and message in err, (args, err[-2000:])


def test_track_tool_says_when_no_track_is_left_to_score(exact_dump, synthetic_root):
    """A birth score above every detection's (the exact detections score at most 0.9) leaves no track: one error
    line and exit 2, not the devkit's traceback on an empty submission."""
    run = subprocess.run([sys.executable, "tools/track.py", str(exact_dump), "--data-root", synthetic_root,
                          "--birth-score", "0.95"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.stderr.strip().splitlines()[-1].startswith("error: no track in any of the 40 samples of mini_val")


def test_test_tool_tracks_with_the_configs_tracker_and_the_flags_over_it(synthetic_root, tiny_checkpoint, tmp_path):
    """tools/test.py --task track takes the config's ``tracker`` settings, the flags over them: max_age 20 and
    birth score 0.95 from the config, CenterPoint's motion from the config turned back to Kalman by --motion, the
    matcher from --matcher. Untrained weights score below 0.95, so it ends with the one-line no-track error."""
    run = subprocess.run([sys.executable, "tools/test.py", "configs/voxelnext/voxelnext_tiny_synthetic.py",
                          str(tiny_checkpoint), "--data-root", synthetic_root, "--work-dir", str(tmp_path),
                          "--task", "track", "--motion", "kalman", "--matcher", "hungarian", "--cfg-options",
                          "tracker.max_age=20", "tracker.birth_score=0.95", "tracker.motion=None",
                          "test_dataloader.dataset.indices=2"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert "tracking with max_age 20, hungarian, Kalman motion, voxel association off, birth score 0.95\n" in run.stdout, \
        run.stdout[-2000:] + run.stderr[-2000:]
    assert run.returncode == 2 and run.stderr.strip().splitlines()[-1].startswith("error: tracking: no track"), \
        run.stderr[-2000:]
