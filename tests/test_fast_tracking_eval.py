"""perception3d.evaluation.fasteval.tracking against the devkit's TrackingEval (tracking_nips_2019), both run in
the same test on the same input, every number of metrics_summary.json and metrics_details.json compared.

Two harnesses:
- the session's synthetic world: a tracking submission written as JSON, the devkit's TrackingEval.main on it
  (its own loading, filtering, create_tracks, evaluate), ours through fasteval.boxes' loaders;
- in-memory worlds (many scenes, ties on a 1 m grid, duplicate ids, tracks changing class): the devkit's
  create_tracks (over a stand-in for the NuScenes tables it reads: sample and scene records) and
  TrackingEval.evaluate on TrackingBox objects, ours on the same boxes as arrays.

Numbers are compared exactly (bit for bit, and int vs float as json writes them) where
``tracking._EXACT_DISTANCES`` (this machine's sklearn distances reproduced), else to 1e-9."""
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("motmetrics")
pytest.importorskip("pandas")

from nuscenes.eval.common.config import config_factory  # noqa: E402

from perception3d.evaluation.fasteval import tracking  # noqa: E402
from perception3d.evaluation.fasteval.boxes import (EvalBoxArrays, SampleTable, filter_boxes,  # noqa: E402
                                                    load_ground_truth, load_samples, load_submission)
from perception3d.evaluation.fasteval.tracking import evaluate_tracking, print_tracking_summary  # noqa: E402

META = {"use_camera": False, "use_lidar": True, "use_radar": False, "use_map": False, "use_external": False}


@pytest.fixture
def cfg():
    return config_factory("tracking_nips_2019")


# ------------------------------------------------------------------------------------------------------------
# comparison
# ------------------------------------------------------------------------------------------------------------
def differences(ref, ours, path="", exact=True):
    """Every place where two JSON-like values differ: keys, lengths, numbers (NaN equals NaN; exact: bit for bit
    and the same int/float type, else 1e-9 absolute or relative)."""
    out = []
    if isinstance(ref, dict):
        if not isinstance(ours, dict) or set(ref) != set(ours):
            return [(path, "keys", sorted(set(ref) ^ set(ours or {})))]
        for key in ref:
            if key != "eval_time":  # the devkit's and our own run time
                out += differences(ref[key], ours[key], f"{path}/{key}", exact)
        return out
    if isinstance(ref, list):
        if not isinstance(ours, list) or len(ref) != len(ours):
            return [(path, "length", ref, ours)]
        for i, (a, b) in enumerate(zip(ref, ours)):
            out += differences(a, b, f"{path}[{i}]", exact)
        return out
    if isinstance(ref, (int, float)) and not isinstance(ref, bool):
        if not isinstance(ours, (int, float)) or isinstance(ours, bool):
            return [(path, ref, ours)]
        if math.isnan(ref) or math.isnan(ours):
            return [] if math.isnan(ref) and math.isnan(ours) else [(path, ref, ours)]
        if exact:
            return [] if ref == ours and type(ref) is type(ours) else [(path, ref, ours)]
        return [] if abs(ref - ours) <= 1e-9 * max(1.0, abs(ref)) else [(path, ref, ours)]
    return [] if ref == ours else [(path, ref, ours)]


def assert_same(ref_summary, ref_details, summary, details):
    """Our two dicts as json writes and reads them back, equal to the devkit's."""
    summary, details = json.loads(json.dumps(summary)), json.loads(json.dumps(details))
    exact = tracking._EXACT_DISTANCES
    bad = differences(ref_summary, summary, "summary", exact) + differences(ref_details, details, "details", exact)
    assert not bad, f"{len(bad)} differences, first: {bad[:12]}"
    assert summary["eval_time"] >= 0


# ------------------------------------------------------------------------------------------------------------
# the synthetic world through the devkit's TrackingEval
# ------------------------------------------------------------------------------------------------------------
def split_samples(nusc, split):
    from nuscenes.utils.splits import create_splits_scenes

    scenes = set(create_splits_scenes()[split])
    return [s for s in nusc.sample if nusc.get("scene", s["scene_token"])["name"] in scenes]


def instance_tracks(nusc, split):
    """instance token → its (sample token, annotation) in time order, tracking classes only."""
    from nuscenes.eval.tracking.utils import category_to_tracking_name

    tracks = {}
    for sample in sorted(split_samples(nusc, split), key=lambda s: s["timestamp"]):
        for token in sample["anns"]:
            ann = nusc.get("sample_annotation", token)
            name = category_to_tracking_name(ann["category_name"])
            if name is not None:
                tracks.setdefault(ann["instance_token"], []).append((sample["token"], ann, name))
    return tracks


def record(token, ann, name, tracking_id, score, xy=(0.0, 0.0)):
    t = list(ann["translation"])
    return {"sample_token": token, "translation": [t[0] + xy[0], t[1] + xy[1], t[2]], "size": ann["size"],
            "rotation": ann["rotation"], "velocity": [0.0, 0.0], "tracking_id": tracking_id,
            "tracking_name": name, "tracking_score": float(score)}


def ground_truth_results(nusc, split):
    """Every annotation of a tracking class as a prediction of its own instance, each track scored by a number
    of its own (so the recall thresholds fall between tracks)."""
    results = {s["token"]: [] for s in split_samples(nusc, split)}
    for k, (instance, boxes) in enumerate(sorted(instance_tracks(nusc, split).items())):
        score = 0.05 + 0.9 * ((k * 0.618034) % 1.0)
        for token, ann, name in boxes:
            results[token].append(record(token, ann, name, instance, score))
    return results


def noisy_results(nusc, split, seed):
    """Ground truth made into a tracker's output: centres off by σ 0.3 m; a fifth of the tracks starting late, a
    fifth ending early, a quarter broken by a gap of 1-3 frames; a fifth taking a new id part way (a switch),
    pairs of same-class objects exchanging ids from some frame on; false positives (short moving tracks and lone
    boxes); no bus at all (a class with ground truth and no prediction); four samples without any prediction;
    two boxes repeating their sample's tracking id. Scores per track with per-box noise."""
    rng = np.random.default_rng(seed)
    samples = split_samples(nusc, split)
    results = {s["token"]: [] for s in samples}
    tracks = sorted(instance_tracks(nusc, split).items())
    ids = {}  # instance → per box tracking id
    for instance, boxes in tracks:
        n = len(boxes)
        tid = [instance] * n
        if n > 3 and rng.random() < 0.2:
            k = int(rng.integers(1, n))
            tid[k:] = [instance + "-new"] * (n - k)
        ids[instance] = tid
    by_class = {}
    for instance, boxes in tracks:
        by_class.setdefault((boxes[0][2], nusc.get("sample", boxes[0][0])["scene_token"]), []).append(instance)
    for members in by_class.values():
        for _ in range(min(3, len(members) // 2)):
            a, b = rng.choice(len(members), 2, replace=False)
            a, b = members[a], members[b]
            frames_a = {tok: i for i, (tok, _, _) in enumerate(dict(tracks)[a])}
            common = [(frames_a[tok], i) for i, (tok, _, _) in enumerate(dict(tracks)[b]) if tok in frames_a]
            for ia, ib in common[len(common) // 2:]:  # exchanged ids from the middle of their common frames
                ids[a][ia], ids[b][ib] = ids[b][ib], ids[a][ia]
    for instance, boxes in tracks:
        if boxes[0][2] == "bus":
            continue
        n = len(boxes)
        keep = np.ones(n, dtype=bool)
        u = rng.random()
        if u < 0.2:
            keep[:int(rng.integers(1, n // 2 + 2))] = False
        elif u < 0.4:
            keep[n - int(rng.integers(1, n // 2 + 2)):] = False
        if n > 6 and rng.random() < 0.25:
            i = int(rng.integers(1, n - 4))
            keep[i:i + int(rng.integers(1, 4))] = False
        base = rng.random()
        for i, (token, ann, name) in enumerate(boxes):
            if keep[i]:
                results[token].append(record(token, ann, name, ids[instance][i],
                                             np.clip(base + rng.normal(0, 0.1), 0.0, 1.0),
                                             rng.normal(0, 0.3, 2)))
    names = ["car", "pedestrian", "truck", "bicycle", "trailer", "motorcycle"]
    by_scene = {}
    for s in sorted(samples, key=lambda s: s["timestamp"]):
        by_scene.setdefault(s["scene_token"], []).append(s["token"])
    for scene, tokens in by_scene.items():
        for f in range(6):  # moving false-positive tracks
            start = int(rng.integers(0, len(tokens) - 5))
            anchor = results[tokens[start]][0] if results[tokens[start]] else None
            if anchor is None:
                continue
            origin = np.array(anchor["translation"][:2]) + rng.uniform(-15, 15, 2)
            velocity = rng.normal(0, 1.0, 2)
            for k in range(int(rng.integers(3, 12))):
                if start + k < len(tokens):
                    token = tokens[start + k]
                    box = dict(anchor, sample_token=token, tracking_id=f"fp-{scene}-{f}",
                               tracking_name=names[f % len(names)], tracking_score=float(rng.random()))
                    box["translation"] = list(origin + velocity * k) + [anchor["translation"][2]]
                    results[token].append(box)
        for token in tokens:  # lone false positives
            if results[token] and rng.random() < 0.5:
                anchor = results[token][int(rng.integers(len(results[token])))]
                box = dict(anchor, tracking_id=f"lone-{token}", tracking_score=float(rng.random()))
                box["translation"] = list(np.array(anchor["translation"][:2]) + rng.uniform(-6, 6, 2)) + \
                    [anchor["translation"][2]]
                results[token].append(box)
    first = next(iter(by_scene.values()))
    for token in first[10:13] + [list(by_scene.values())[-1][-1]]:
        results[token] = []  # samples without predictions
    for token in first[20:22]:  # a tracking id twice in one sample
        if results[token]:
            twin = dict(results[token][0])
            twin["translation"] = [twin["translation"][0] + 1.0] + twin["translation"][1:]
            results[token].append(twin)
    return results


def run_both(root, version, split, results, tmp_path, cfg):
    """The devkit's TrackingEval.main and ours on the same submission → both dicts, both sides."""
    from nuscenes import NuScenes
    from nuscenes.eval.tracking.evaluate import TrackingEval

    path = tmp_path / "submission.json"
    path.write_text(json.dumps({"meta": META, "results": results}))
    out = tmp_path / "devkit"
    TrackingEval(cfg, str(path), split, str(out), version, root, verbose=False).main(render_curves=False)
    ref_summary = json.loads((out / "metrics_summary.json").read_text())
    ref_details = json.loads((out / "metrics_details.json").read_text())

    nusc = NuScenes(version, dataroot=root, verbose=False)
    samples = load_samples(nusc, split)
    gt = filter_boxes(load_ground_truth(nusc, samples, "track"), samples, cfg.class_range)
    pred, meta = load_submission(str(path), samples, "track", cfg.max_boxes_per_sample)
    pred = filter_boxes(pred, samples, cfg.class_range)
    summary, details = evaluate_tracking(gt, pred, samples, cfg, meta)
    return ref_summary, ref_details, summary, details


def test_ground_truth_as_predictions_equals_the_devkit(synthetic_root, nusc, tmp_path, cfg):
    """mini_train (two scenes: the devkit's scene order matters for MOTP's sum), every annotation a prediction:
    interpolated ground truth (boxes without points) against uninterpolated predictions, one score per track."""
    results = ground_truth_results(nusc, "mini_train")
    ref_summary, ref_details, summary, details = run_both(synthetic_root, "v1.0-mini", "mini_train", results,
                                                          tmp_path, cfg)
    assert_same(ref_summary, ref_details, summary, details)
    assert summary["recall"] > 0.95, summary["recall"]  # the boxes without points are its false positives


def test_noisy_tracks_equal_the_devkit(synthetic_root, nusc, tmp_path, cfg):
    """mini_train, a tracker's kind of errors (noisy_results): switches, fragments, late starts, early ends,
    false positives, a class without predictions, samples without predictions, a repeated id."""
    results = noisy_results(nusc, "mini_train", seed=1)
    ref_summary, ref_details, summary, details = run_both(synthetic_root, "v1.0-mini", "mini_train", results,
                                                          tmp_path, cfg)
    assert_same(ref_summary, ref_details, summary, details)
    assert summary["ids"] > 10 and summary["frag"] > 10 and summary["fp"] > 10, summary
    bus = {name: values["bus"] for name, values in summary["label_metrics"].items()}
    assert bus["amota"] == 0 and bus["motp"] == 2 and math.isnan(bus["fp"]), bus  # the worst values


@pytest.fixture
def world_without_trailers(synthetic_root, tmp_path):
    """The session's world with every trailer annotation (and instance) removed: a copy of its tables, the
    sensor data linked."""
    src, root = Path(synthetic_root), tmp_path / "no_trailers"
    (root / "v1.0-mini").mkdir(parents=True)
    for item in src.iterdir():
        if item.is_dir() and item.name != "v1.0-mini":
            (root / item.name).symlink_to(item)
    tables = src / "v1.0-mini"
    category = {c["token"]: c["name"] for c in json.loads((tables / "category.json").read_text())}
    instances = json.loads((tables / "instance.json").read_text())
    trailers = {i["token"] for i in instances if category[i["category_token"]] == "vehicle.trailer"}
    assert trailers
    for table in tables.iterdir():
        if table.name == "instance.json":
            table_rows = [i for i in instances if i["token"] not in trailers]
            (root / "v1.0-mini" / table.name).write_text(json.dumps(table_rows))
        elif table.name == "sample_annotation.json":
            rows = [a for a in json.loads(table.read_text()) if a["instance_token"] not in trailers]
            (root / "v1.0-mini" / table.name).write_text(json.dumps(rows))
        else:
            shutil.copy(table, root / "v1.0-mini" / table.name)
    return str(root)


def test_class_without_ground_truth_equals_the_devkit(world_without_trailers, nusc, tmp_path, cfg):
    """mini_val of the world without trailers, predictions made from the full world: trailer tracks with no
    ground truth (every trailer value NaN), buses with no prediction, and the rest of noisy_results."""
    results = noisy_results(nusc, "mini_val", seed=2)
    assert any(r["tracking_name"] == "trailer" for records in results.values() for r in records)
    ref_summary, ref_details, summary, details = run_both(world_without_trailers, "v1.0-mini", "mini_val",
                                                          results, tmp_path, cfg)
    assert_same(ref_summary, ref_details, summary, details)
    assert all(math.isnan(v) for v in details["trailer"]["mota"]) and \
        math.isnan(summary["label_metrics"]["amota"]["trailer"])


# ------------------------------------------------------------------------------------------------------------
# in-memory worlds through the devkit's create_tracks and TrackingEval.evaluate
# ------------------------------------------------------------------------------------------------------------
class TablesStandIn:
    """The part of NuScenes that create_tracks reads: sample and scene records by token."""

    def __init__(self, scenes):
        self.records = {"sample": {}, "scene": {}}
        for name, scene_token, tokens, stamps in scenes:
            self.records["scene"][scene_token] = {"name": name, "first_sample_token": tokens[0],
                                                  "last_sample_token": tokens[-1]}
            for k, (token, stamp) in enumerate(zip(tokens, stamps)):
                self.records["sample"][token] = {"token": token, "scene_token": scene_token, "timestamp": stamp,
                                                 "next": tokens[k + 1] if k + 1 < len(tokens) else ""}

    def get(self, table, token):
        return self.records[table][token]


def memory_world(seed, n_scenes=3, n_frames=14, n_objects=12, grid=False, twins=False):
    """Random scenes of the train split: objects of the seven classes moving through parts of each scene (some
    ground-truth boxes missing inside a track, as the num_pts filter leaves them), and a tracker's output of
    them (noise, late starts, early ends, gaps, new ids, exchanged ids, a few tracks changing class, false
    positives, their ids reused in every scene). grid: every centre on a 1 m grid, so many distances tie, some
    exactly at the 2 m cut. twins: repeated ids in a sample.
    → (scenes, ground-truth rows, prediction rows, the predictions' sample order); a row is (sample token,
    x, y, z, tracking name, tracking id, score)."""
    from nuscenes.utils.splits import create_splits_scenes

    rng = np.random.default_rng(seed)
    names = ["bicycle", "bus", "car", "motorcycle", "pedestrian", "trailer", "truck"]
    scene_names = create_splits_scenes()["train"]
    scenes, gt_rows, pred_rows = [], [], []
    for s in range(n_scenes):
        tokens = [f"s{seed}-{s}-{k}" for k in range(n_frames)]
        stamps = [1532402927647951 + s * 10 ** 8 + k * 500000 + int(rng.integers(-30000, 30000))
                  for k in range(n_frames)]
        scenes.append((scene_names[(7 * s + seed) % len(scene_names)], f"scene{seed}-{s}", tokens, stamps))
        centre = rng.uniform(200, 2500, 2)
        objects = []
        for o in range(n_objects):
            start = int(rng.integers(0, n_frames - 2))
            stop = int(rng.integers(start + 2, n_frames + 1))
            p = centre + (rng.integers(-12, 12, 2) if grid else rng.uniform(-25, 25, 2))
            v = rng.integers(-1, 2, 2) if grid else rng.normal(0, 1.2, 2)
            objects.append((f"inst{s}-{o}", names[int(rng.integers(len(names)))], start, stop, p, v))
        frame_rows = {k: [] for k in range(n_frames)}
        pred_frame_rows = {k: [] for k in range(n_frames)}
        for inst, name, start, stop, p, v in objects:
            tid = f"trk{s}-{inst}"
            keep_from = start + (int(rng.integers(1, 4)) if rng.random() < 0.2 else 0)
            keep_to = stop - (int(rng.integers(1, 4)) if rng.random() < 0.2 else 0)
            gap = int(rng.integers(start, stop)) if rng.random() < 0.3 else -1
            switch_at = int(rng.integers(start, stop)) if rng.random() < 0.2 else n_frames
            class_at = int(rng.integers(start, stop)) if rng.random() < 0.05 else n_frames
            base = float(rng.integers(0, 5)) / 4 if grid else rng.random()
            for k in range(start, stop):
                xy = p + v * (k - start)
                if not (k not in (start, stop - 1) and rng.random() < 0.1):  # ground truth without points
                    frame_rows[k].append((tokens[k], float(xy[0]), float(xy[1]), 1.0, name, inst, -1.0))
                if keep_from <= k < keep_to and not (gap <= k < gap + 2) and rng.random() < 0.95:
                    noise = rng.integers(-2, 3, 2) if grid else rng.normal(0, 0.4, 2)  # grid: 2 m apart too
                    score = base if grid else float(np.clip(base + rng.normal(0, 0.1), 0, 1))
                    pred_frame_rows[k].append([tokens[k], float(xy[0] + noise[0]), float(xy[1] + noise[1]), 1.0,
                                               names[(names.index(name) + 1) % 7] if k >= class_at else name,
                                               tid + ("-b" if k >= switch_at else ""), score])
        for k in range(n_frames):  # exchanged ids, false positives, twins
            rows = pred_frame_rows[k]
            if len(rows) > 1 and rng.random() < 0.3:
                a, b = rng.choice(len(rows), 2, replace=False)
                rows[a][5], rows[b][5] = rows[b][5], rows[a][5]
            for f in range(int(rng.integers(0, 3))):
                xy = centre + (rng.integers(-12, 12, 2) if grid else rng.uniform(-25, 25, 2))
                rows.append([tokens[k], float(xy[0]), float(xy[1]), 1.0, names[int(rng.integers(7))],
                             f"fp-{k % 3}-{f}", float(rng.integers(0, 5)) / 4 if grid else rng.random()])
            if twins and rows and rng.random() < 0.15:
                twin = list(rows[0])
                twin[1] += 1.0
                rows.append(twin)
            order = rng.permutation(len(rows))
            pred_rows += [tuple(rows[i]) for i in order]
            gt_rows += frame_rows[k]
    tokens = [t for scene in scenes for t in scene[2]]
    pred_order = list(rng.permutation(tokens))
    return scenes, gt_rows, pred_rows, pred_order


def devkit_on_memory_world(scenes, gt_rows, pred_rows, pred_order, cfg, tmp_path):
    """create_tracks + TrackingEval.evaluate on TrackingBox objects → (summary, details) as main() makes them."""
    from nuscenes.eval.common.data_classes import EvalBoxes
    from nuscenes.eval.tracking.data_classes import TrackingBox
    from nuscenes.eval.tracking.evaluate import TrackingEval
    from nuscenes.eval.tracking.loaders import create_tracks

    tables = TablesStandIn(scenes)

    def boxes(rows, order):
        out = EvalBoxes()
        for token in order:
            out.add_boxes(token, [])
        for token, x, y, z, name, tid, score in rows:
            out.add_boxes(token, [TrackingBox(sample_token=token, translation=(x, y, z), size=(1.0, 2.0, 1.5),
                                              rotation=(1.0, 0.0, 0.0, 0.0), tracking_id=tid, tracking_name=name,
                                              tracking_score=float(score))])
        return out

    all_tokens = [t for scene in scenes for t in scene[2]]
    gt_boxes = boxes(gt_rows, all_tokens)
    pred_boxes = boxes(pred_rows, pred_order)
    ev = TrackingEval.__new__(TrackingEval)
    ev.cfg, ev.verbose, ev.output_dir, ev.render_classes = cfg, False, str(tmp_path), None
    ev.tracks_gt = create_tracks(gt_boxes, tables, "train", gt=True)
    ev.tracks_pred = create_tracks(pred_boxes, tables, "train", gt=False)
    metrics, md_list = ev.evaluate()
    summary = metrics.serialize()
    summary["meta"] = dict(META)
    return json.loads(json.dumps(summary)), json.loads(json.dumps(md_list.serialize()))


def arrays_of_memory_world(scenes, gt_rows, pred_rows, pred_order):
    """The same world as fasteval's inputs: a SampleTable and EvalBoxArrays (rows sample by sample in the
    devkit's order)."""
    names = ("bicycle", "bus", "car", "motorcycle", "pedestrian", "trailer", "truck")
    tokens = [t for scene in scenes for t in scene[2]]
    index = {t: i for i, t in enumerate(tokens)}
    samples = SampleTable(
        tokens=tokens, scene=np.repeat(np.arange(len(scenes)), [len(s[2]) for s in scenes]).astype(np.int64),
        scene_tokens=[s[1] for s in scenes], timestamp=np.array([t for s in scenes for t in s[3]], dtype=np.int64),
        ego_translation=np.zeros((len(tokens), 3)),
        scene_samples=[np.array([index[t] for t in s[2]], dtype=np.int64) for s in scenes])

    def arrays(rows, order):
        rank = {t: i for i, t in enumerate(order)}
        rows = sorted(rows, key=lambda r: rank[r[0]])  # stable: list order kept within a sample
        track_ids = {}
        n = len(rows)
        return EvalBoxArrays(
            sample=np.array([index[r[0]] for r in rows], dtype=np.int64).reshape(n),
            translation=np.array([r[1:4] for r in rows], dtype=np.float64).reshape(n, 3),
            size=np.tile([1.0, 2.0, 1.5], (n, 1)), rotation=np.tile([1.0, 0, 0, 0], (n, 1)),
            velocity=np.zeros((n, 2)), ego_dist=np.zeros(n), num_pts=np.full(n, -1, dtype=np.int64),
            label=np.array([names.index(r[4]) for r in rows], dtype=np.int64).reshape(n),
            score=np.array([r[6] for r in rows], dtype=np.float64).reshape(n),
            attribute=np.full(n, -1, dtype=np.int64),
            track=np.array([track_ids.setdefault(r[5], len(track_ids)) for r in rows], dtype=np.int64).reshape(n),
            names=names, track_ids=list(track_ids), sample_order=np.array([index[t] for t in order], dtype=np.int64))

    return samples, arrays(gt_rows, tokens), arrays(pred_rows, pred_order)


@pytest.mark.parametrize("seed,grid,twins,n_objects", [(0, True, False, 20), (3, True, True, 20),
                                                       (2, False, True, 12), (3, False, False, 12)])
def test_memory_worlds_equal_the_devkit(seed, grid, twins, n_objects, cfg, tmp_path):
    """Four random worlds of three scenes: two on a 1 m grid (equal distances everywhere: the Hungarian step's
    tie-breaking and the keep-previous-match rule decide; a scan of scipy's columns in the other order changes
    both grid worlds' results), two with repeated ids in a sample."""
    world = memory_world(seed, n_objects=n_objects, grid=grid, twins=twins)
    ref_summary, ref_details = devkit_on_memory_world(*world, cfg, tmp_path)
    samples, gt, pred = arrays_of_memory_world(*world)
    summary, details = evaluate_tracking(gt, pred, samples, cfg, dict(META))
    assert_same(ref_summary, ref_details, summary, details)
    assert summary["ids"] > 0 and summary["frag"] > 0, (summary["ids"], summary["frag"])


# ------------------------------------------------------------------------------------------------------------
# the pieces against what they mirror
# ------------------------------------------------------------------------------------------------------------
def test_assignment_is_scipys_including_ties(rng):
    """_lsa against scipy.optimize.linear_sum_assignment (what motmetrics.lap picks here) on square, wide and
    tall matrices of few distinct values (many ties), with motmetrics' large constant in places."""
    import motmetrics.lap
    from scipy.optimize import linear_sum_assignment

    assert motmetrics.lap.default_solver == "scipy", motmetrics.lap.available_solvers
    for _ in range(400):
        n, m = rng.integers(1, 9, 2)
        cost = rng.integers(0, 3, (n, m)).astype(float) * rng.choice([1.0, 0.5, np.sqrt(2)])
        if rng.random() < 0.5:
            cost[rng.random((n, m)) < 0.4] = 2 * min(n, m) * (cost.max() + 1) + 1
        rows, cols = linear_sum_assignment(cost)
        assign = np.empty(n, dtype=np.int64)
        tracking._lsa(np.ascontiguousarray(cost), assign)
        assert [(r, assign[r]) for r in range(n) if assign[r] >= 0] == list(zip(rows, cols)), cost


def test_sums_are_numpys():
    """_np_sum (the pairwise order numpy's sum, pandas' Series.sum and np.mean reduce in) bit for bit."""
    rng = np.random.default_rng(0)
    for n in list(range(0, 140)) + [255, 256, 1000, 8191, 8192, 8193, 20000, 70001]:
        a = rng.normal(0, 1, n) * 10.0 ** rng.integers(-6, 6, n)
        a[rng.random(n) < 0.3] = 0.0
        assert tracking._np_sum(a, 0, n) == a.sum(), n


def test_distances_are_sklearns_in_every_shape():
    """The calibrated formulas give sklearn's euclidean_distances bit for bit for all four BLAS shape classes
    (1x1, 1xm, nx1, nxm), on fresh points (not the calibration's)."""
    from sklearn.metrics.pairwise import euclidean_distances

    modes = tracking._calibrate()
    if not tracking._EXACT_DISTANCES:
        pytest.skip("this machine's BLAS rounds in a way none of the formulas reproduces")
    rng = np.random.default_rng(7)
    for n, m in [(1, 1), (1, 4), (1, 40), (6, 1), (50, 1), (2, 2), (7, 3), (40, 60)]:
        for _ in range(5):
            X = rng.uniform(-5000, 5000, (n, 2))
            Y = X[rng.integers(0, n, m)] + rng.normal(0, 2, (m, 2))
            cls = 0 if n == m == 1 else 1 if n == 1 else 2 if m == 1 else 3
            ours = tracking._euclid_matrix(X, Y, modes[cls, 0], modes[cls, 1])
            assert np.array_equal(ours, euclidean_distances(X, Y)), (n, m)


def test_bad_input_is_refused_with_a_clear_error(cfg):
    """What the devkit refuses, refused before any kernel: an unknown distance function, a box without a
    tracking id, NaN centres or scores, predictions for other samples than the ground truth's."""
    world = memory_world(0, n_scenes=1, n_frames=4, n_objects=3)
    samples, gt, pred = arrays_of_memory_world(*world)
    bad_cfg = config_factory("tracking_nips_2019")
    bad_cfg.dist_fcn = "iou"
    with pytest.raises(ValueError, match="Unknown distance function"):
        evaluate_tracking(gt, pred, samples, bad_cfg)
    no_id = pred.take(np.ones(len(pred), dtype=bool))
    no_id.track = no_id.track.copy()
    no_id.track[0] = -1
    with pytest.raises(ValueError, match="tracking id"):
        evaluate_tracking(gt, no_id, samples, cfg)
    nan = pred.take(np.ones(len(pred), dtype=bool))
    nan.score = nan.score.copy()
    nan.score[1] = np.nan
    with pytest.raises(ValueError, match="tracking_score may not be NaN"):
        evaluate_tracking(gt, nan, samples, cfg)
    nan = pred.take(np.ones(len(pred), dtype=bool))
    nan.translation = nan.translation.copy()
    nan.translation[0, 0] = np.inf
    with pytest.raises(ValueError, match="translation"):
        evaluate_tracking(gt, nan, samples, cfg)
    fewer = pred.take(pred.sample != pred.sample_order[0])
    fewer.sample_order = fewer.sample_order[1:]
    with pytest.raises(ValueError, match="Samples in split don't match"):
        evaluate_tracking(gt, fewer, samples, cfg)


def test_summary_prints_as_the_devkit_prints_it(cfg, tmp_path, capsys):
    """print_tracking_summary prints the devkit's final table (print_final_metrics) for our summary: the same
    lines as the devkit's own print of its metrics, but for the run time."""
    from nuscenes.eval.tracking.data_classes import TrackingMetrics
    from nuscenes.eval.tracking.utils import print_final_metrics

    world = memory_world(5, n_scenes=1, n_frames=8, n_objects=6)
    ref_summary, _ = devkit_on_memory_world(*world, cfg, tmp_path)
    samples, gt, pred = arrays_of_memory_world(*world)
    summary, _ = evaluate_tracking(gt, pred, samples, cfg)
    capsys.readouterr()
    print_final_metrics(TrackingMetrics.deserialize(ref_summary))
    ref = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("Eval time")]
    print_tracking_summary(summary)
    out = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("Eval time")]
    assert out == ref and any(line.startswith("AMOTA") for line in out)
