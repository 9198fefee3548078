"""The fast detection evaluation against the nuscenes-devkit's DetectionEval, run in the same test on the same
submission: every number of metrics_summary.json and metrics_details.json equal (to 1e-9, relative), on ground
truth as predictions, noisy predictions, tied scores, classes without ground truth or predictions, samples
without predictions, boxes beyond the class ranges, bike racks; and the devkit's refusals kept."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from perception3d.evaluation.backends import metric_differences

EVAL_SET = "mini_val"


def split_tokens(nusc):
    from perception3d.evaluation.splits import split_sample_tokens

    return [s["token"] for s in nusc.sample if s["token"] in split_sample_tokens(nusc, EVAL_SET)]


def gt_records(nusc, token, seen_only=False):
    """The sample's annotations as devkit detection records (score 1, the annotated attribute); ``seen_only``:
    only those with a lidar or radar point (the devkit leaves the others out of the ground truth)."""
    from nuscenes.eval.detection.utils import category_to_detection_name

    records = []
    for ann in (nusc.get("sample_annotation", a) for a in nusc.get("sample", token)["anns"]):
        name = category_to_detection_name(ann["category_name"])
        if name is None or (seen_only and ann["num_lidar_pts"] + ann["num_radar_pts"] == 0):
            continue
        attrs = [nusc.get("attribute", t)["name"] for t in ann["attribute_tokens"]]
        records.append({"sample_token": token, "translation": list(ann["translation"]), "size": list(ann["size"]),
                        "rotation": list(ann["rotation"]),
                        "velocity": np.nan_to_num(nusc.box_velocity(ann["token"])[:2]).tolist(),
                        "detection_name": name, "detection_score": 1.0,
                        "attribute_name": attrs[0] if attrs else ""})
    return records


def noisy(records, rng, sigma=0.7, drop=0.2, false_positives=15, decimals=None):
    """Ground-truth records jittered (centre, size, heading, velocity; half the barriers turned by π), some
    dropped, some doubled, false
    positives added, random scores (rounded to ``decimals`` for ties)."""
    from pyquaternion import Quaternion

    names = ["car", "truck", "bus", "trailer", "construction_vehicle", "pedestrian", "motorcycle", "bicycle",
             "traffic_cone", "barrier"]
    out = []
    for r in records:
        if rng.random() < drop:
            continue
        for _ in range(1 + (rng.random() < 0.1)):
            yaw = Quaternion(r["rotation"]).yaw_pitch_roll[0] + rng.normal(0, 0.4)
            if r["detection_name"] == "barrier" and rng.random() < 0.5:
                yaw += np.pi  # the same barrier to the devkit (period π)
            out.append({**r, "translation": (np.asarray(r["translation"]) + rng.normal(0, sigma, 3)).tolist(),
                        "size": (np.asarray(r["size"]) * rng.uniform(0.7, 1.3, 3)).tolist(),
                        "rotation": Quaternion(axis=[0, 0, 1], angle=yaw).elements.tolist(),
                        "velocity": (np.asarray(r["velocity"]) + rng.normal(0, 1.0, 2)).tolist()})
    if records:
        token, centre = records[0]["sample_token"], np.mean([r["translation"] for r in records], axis=0)
        for _ in range(false_positives):
            name = names[rng.integers(len(names))]
            out.append({"sample_token": token, "translation": (centre + rng.uniform(-60, 60, 3)).tolist(),
                        "size": rng.uniform(0.5, 5, 3).tolist(),
                        "rotation": Quaternion(axis=[0, 0, 1], angle=rng.uniform(-3, 3)).elements.tolist(),
                        "velocity": rng.normal(0, 3, 2).tolist(), "detection_name": name, "detection_score": 0.0,
                        "attribute_name": ""})
    scores = rng.random(len(out))
    if decimals is not None:
        scores = np.round(scores, decimals)
    for r, s in zip(out, scores):
        r["detection_score"] = float(s)
    return out


def write(tmp_path, results, name="results.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"meta": {"use_camera": False, "use_lidar": True, "use_radar": False,
                                         "use_map": False, "use_external": False}, "results": results}))
    return path


def devkit_and_fast(nusc, path, out):
    """Both evaluations of one file → (devkit summary, devkit details, fast summary, fast details)."""
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval

    from perception3d.evaluation.backends import evaluate_detection_file

    DetectionEval(nusc, config_factory("detection_cvpr_2019"), str(path), EVAL_SET, str(out / "devkit"),
                  verbose=False).main(plot_examples=0, render_curves=False)
    evaluate_detection_file(str(path), nusc, EVAL_SET, str(out / "fast"), backend="fast", verbose=False)
    return [json.loads((out / who / name).read_text()) for who in ("devkit", "fast")
            for name in ("metrics_summary.json", "metrics_details.json")]


def assert_equal_to_devkit(nusc, path, out):
    dev_summary, dev_details, summary, details = devkit_and_fast(nusc, path, out)
    problems = metric_differences(summary, dev_summary) + metric_differences(details, dev_details)
    assert not problems, "\n".join(problems[:10])
    return summary


def test_ground_truth_as_predictions_equals_the_devkit(nusc, tmp_path):
    """Every annotation with points predicted exactly, all at score 1 (one long tie): full marks, number for
    number."""
    path = write(tmp_path, {t: gt_records(nusc, t, seen_only=True) for t in split_tokens(nusc)})
    summary = assert_equal_to_devkit(nusc, path, tmp_path)
    assert summary["mean_ap"] > 0.99 and summary["tp_errors"]["trans_err"] < 1e-9


@pytest.mark.parametrize("decimals", [None, 1])
def test_noisy_predictions_equal_the_devkit(nusc, tmp_path, decimals):
    """Jittered, dropped and doubled boxes, false positives beyond the class ranges, random scores; with
    ``decimals`` 1 the scores take 11 values, so the devkit's order of equal scores (by position in the
    submission, samples in its order, last first) decides the matching."""
    rng = np.random.default_rng(7)
    tokens = split_tokens(nusc)[::-1]  # the submission's own order of samples decides between equal scores
    results = {t: noisy(gt_records(nusc, t), rng, decimals=decimals) for t in tokens}
    summary = assert_equal_to_devkit(nusc, write(tmp_path, results), tmp_path)
    assert 0.2 < summary["mean_ap"] < 0.95


def test_missing_classes_samples_and_velocities_equal_the_devkit(nusc, tmp_path):
    """No prediction of cars, none in every third sample, NaN velocities on some boxes (the devkit counts
    their error as NaN and leaves it out of the mean)."""
    rng = np.random.default_rng(3)
    results = {}
    for i, token in enumerate(split_tokens(nusc)):
        records = [r for r in noisy(gt_records(nusc, token), rng, sigma=0.3) if r["detection_name"] != "car"]
        for r in records[::5]:
            r["velocity"] = [float("nan"), float("nan")]
        results[token] = [] if i % 3 == 0 else records
    summary = assert_equal_to_devkit(nusc, write(tmp_path, results), tmp_path)
    assert summary["label_aps"]["car"]["2.0"] == 0 and summary["label_tp_errors"]["car"]["trans_err"] == 1


@pytest.fixture(scope="module")
def edited_world(synthetic_root, tmp_path_factory):
    """The session world's tables (no point files) with every trailer annotation removed and a 3 m bike rack
    around every other bicycle of mini_val (category static_object.bicycle_rack), one bicycle annotation
    with no lidar or radar point, and a twin of every fifth car (same centre, larger) listed after it: a
    prediction on that centre is equally near both, and the devkit takes the first. A twin's ``prev`` is its car
    2 or 4 samples earlier: a velocity over 1 s, or NaN for a gap over 1.5 s."""
    from nuscenes import NuScenes

    root = tmp_path_factory.mktemp("edited_world")
    shutil.copytree(Path(synthetic_root) / "v1.0-mini", root / "v1.0-mini")
    (root / "maps").symlink_to(Path(synthetic_root) / "maps")
    (root / "v1.0-mini" / "lidarseg.json").unlink()  # detection tables only: no lidarseg label files here
    tables = {name: json.loads((root / "v1.0-mini" / f"{name}.json").read_text())
              for name in ("category", "instance", "sample_annotation")}
    category = {c["token"]: c["name"] for c in tables["category"]}
    trailer = {i["token"] for i in tables["instance"] if category[i["category_token"]] == "vehicle.trailer"}
    assert trailer, "the world should hold trailers"
    tables["instance"] = [i for i in tables["instance"] if i["token"] not in trailer]
    anns = [a for a in tables["sample_annotation"] if a["instance_token"] not in trailer]
    rack = next(c["token"] for c in tables["category"] if c["name"] == "static_object.bicycle_rack")
    bike_instances = {i["token"] for i in tables["instance"] if category[i["category_token"]] == "vehicle.bicycle"}
    nusc = NuScenes("v1.0-mini", dataroot=synthetic_root, verbose=False)
    val = set(split_tokens(nusc))
    bikes = [a for a in anns if a["instance_token"] in bike_instances and a["sample_token"] in val]
    assert len(bikes) > 10
    for k, bike in enumerate(bikes[::2]):
        token = f"{k:032x}"
        tables["instance"].append({"token": token, "category_token": rack, "nbr_annotations": 1,
                                   "first_annotation_token": token, "last_annotation_token": token})
        anns.append({**bike, "token": token, "instance_token": token, "size": [3.0, 3.0, 2.0], "prev": "",
                     "next": "", "attribute_tokens": []})
    bikes[1]["num_lidar_pts"] = bikes[1]["num_radar_pts"] = 0
    car_instances = {i["token"] for i in tables["instance"] if category[i["category_token"]] == "vehicle.car"}
    cars = [a for a in anns if a["instance_token"] in car_instances and a["sample_token"] in val]
    by_token = {a["token"]: a for a in anns}
    for k, car in enumerate(cars[::5]):
        token = f"{k:031x}c"
        tables["instance"].append({**next(i for i in tables["instance"] if i["token"] == car["instance_token"]),
                                   "token": token, "nbr_annotations": 1, "first_annotation_token": token,
                                   "last_annotation_token": token})
        earlier = car  # the twin's velocity: from the car 2 samples earlier (1 s), or 4 (2 s: NaN, over 1.5 s)
        for _ in range(2 + 2 * (k % 2)):
            earlier = by_token.get(earlier["prev"], earlier)
        anns.append({**car, "token": token, "instance_token": token, "size": [2 * s for s in car["size"]],
                     "prev": earlier["token"] if earlier is not car else "", "next": ""})
    tables["sample_annotation"] = anns
    for name, rows in tables.items():
        (root / "v1.0-mini" / f"{name}.json").write_text(json.dumps(rows))
    return NuScenes("v1.0-mini", dataroot=str(root), verbose=False)


def test_no_ground_truth_of_a_class_and_bike_racks_equal_the_devkit(edited_world, tmp_path):
    """Trailers predicted where none is annotated (the devkit's no_predictions curves), bicycles in racks
    left out of both sides, a bicycle without points left out of the ground truth, predictions exactly on the
    twinned cars (equally near two ground-truth boxes)."""
    from nuscenes.eval.common.config import config_factory

    from perception3d.evaluation.fasteval import filter_boxes, load_ground_truth, load_samples

    nusc = edited_world
    rng = np.random.default_rng(5)
    results = {t: noisy(gt_records(nusc, t), rng, sigma=0.3) for t in split_tokens(nusc)}
    for token, records in results.items():
        records += [{**r, "detection_score": 0.5} for r in gt_records(nusc, token) if r["detection_name"] == "car"]
        records += [{**r, "detection_name": "trailer", "attribute_name": "vehicle.parked"}
                    for r in records if r["detection_name"] == "truck"]
    summary = assert_equal_to_devkit(nusc, write(tmp_path, results), tmp_path)
    assert summary["label_aps"]["trailer"]["2.0"] == 0
    samples = load_samples(nusc, EVAL_SET)
    gt = load_ground_truth(nusc, samples, "det")
    kept = filter_boxes(gt, samples, config_factory("detection_cvpr_2019").class_range)
    bicycle = list(gt.names).index("bicycle")
    assert (kept.label == bicycle).sum() < (gt.label == bicycle).sum() // 2 + 1, "the racks should hide half"


def test_ground_truth_is_read_in_each_samples_anns_order(edited_world, tmp_path):
    """The devkit reads a sample's ground truth in its "anns" order and, of two boxes equally near, matches the
    first. One prediction on each twinned car's centre (the car's own box): with the anns as listed the car is
    first (no scale error); with every sample's anns reversed its twin, twice the size, is. Ours equals the
    devkit's both ways, so it follows "anns" and not the order of the annotation table."""
    nusc = edited_world
    rng = np.random.default_rng(7)
    results = {}
    for token in split_tokens(nusc):
        centres, results[token] = set(), []
        for r in gt_records(nusc, token):
            if r["detection_name"] == "car" and tuple(r["translation"]) not in centres:
                centres.add(tuple(r["translation"]))
                results[token].append({**r, "detection_score": float(rng.random())})
    path = write(tmp_path, results)
    listed = assert_equal_to_devkit(nusc, path, tmp_path / "listed")
    anns = {s["token"]: list(s["anns"]) for s in nusc.sample}
    try:
        for sample in nusc.sample:
            sample["anns"].reverse()
        reversed_ = assert_equal_to_devkit(nusc, path, tmp_path / "reversed")
    finally:
        for sample in nusc.sample:
            sample["anns"][:] = anns[sample["token"]]
    assert listed["label_tp_errors"]["car"]["scale_err"] < 1e-9 < reversed_["label_tp_errors"]["car"]["scale_err"]


def refusals(nusc):
    tokens = split_tokens(nusc)
    full = {t: gt_records(nusc, t) for t in tokens}
    box = full[tokens[0]][0]
    return {
        "a sample missing": ({t: full[t] for t in tokens[1:]}, "samples in split doesn't match"),
        "over 500 boxes": ({**full, tokens[0]: [box] * 501}, "only <= 500 boxes per sample"),
        "an unknown class": ({**full, tokens[0]: [{**box, "detection_name": "tram"}]}, "unknown detection_name 'tram'"),
        "NaN in a box": ({**full, tokens[0]: [{**box, "translation": [float("nan"), 0.0, 0.0]}]},
                         "translation may not be NaN"),
        "a box without a score": ({**full, tokens[0]: [{**box, "detection_score": None}]},
                                  "detection_score must be a number, not NaN or null"),
        "no box at all": ({t: [] for t in tokens}, "no box in any of the 40 samples"),
        "text for numbers": ({**full, tokens[0]: [{**box, "translation": ["1.0", "2.0", "3.0"]}]},
                             "translation must be 3 numbers"),
        "lengths that add up": ({**full, tokens[0]: [{**box, "translation": box["translation"] + [1.0],
                                                      "size": box["size"][:2]}]}, "translation must be 3 numbers"),
        "a matched box of size 0": ({**full, tokens[0]: [{**b, "size": [0.0] + b["size"][1:]}
                                                         for b in full[tokens[0]]]},
                                    r"a box of size \[0.0, .*matched ground truth: sizes must be > 0"),
    }


@pytest.mark.parametrize("case", ["a sample missing", "over 500 boxes", "an unknown class", "NaN in a box",
                                  "a box without a score", "no box at all", "text for numbers",
                                  "lengths that add up", "a matched box of size 0", "no meta"])
def test_submissions_the_devkit_refuses_are_refused_with_the_reason(nusc, tmp_path, case):
    """Each refused by the devkit (an assertion or a KeyError deep inside) and by ours with a SubmissionError
    that names the problem."""
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval

    from perception3d.evaluation.backends import evaluate_detection_file
    from perception3d.evaluation.fasteval import SubmissionError

    if case == "no meta":
        path = tmp_path / "results.json"
        path.write_text(json.dumps({"results": {t: [] for t in split_tokens(nusc)}}))
        message = "no field 'meta'"
    else:
        results, message = refusals(nusc)[case]
        path = write(tmp_path, results)
    with pytest.raises(Exception):  # the devkit: an AssertionError, a KeyError or a bare Exception
        DetectionEval(nusc, config_factory("detection_cvpr_2019"), str(path), EVAL_SET, str(tmp_path / "devkit"),
                      verbose=False).main(plot_examples=0, render_curves=False)
    with pytest.raises(SubmissionError, match=f"{path}: .*" + message.replace("(", r"\(")):
        evaluate_detection_file(str(path), nusc, EVAL_SET, str(tmp_path / "fast"), verbose=False)


def test_metric_differences_finds_what_differs():
    """The comparison behind backend="both": a 1e-8 change, a NaN against a number, a missing key, a string;
    eval_time and NaN against NaN are not differences."""
    a = {"x": [1.0, float("nan")], "eval_time": 1.0, "s": "a", "k": {"y": 2.0}}
    assert metric_differences(a, {"x": [1.0, float("nan")], "eval_time": 9.0, "s": "a", "k": {"y": 2.0}}) == []
    assert metric_differences(a, {**a, "x": [1.0 + 1e-8, float("nan")]}) == ["/x[0]: 1.0 against the devkit's "
                                                                             f"{1.0 + 1e-8!r}"]
    assert len(metric_differences(a, {**a, "x": [1.0, 0.0]})) == 1
    assert len(metric_differences(a, {**a, "k": {}})) == 1
    assert len(metric_differences(a, {**a, "s": "b"})) == 1


def test_evaluate_tool_scores_a_submission_with_both_backends(nusc, synthetic_root, tmp_path, capsys):
    """tools/evaluate.py SUBMISSION --data-root --backend both: exit 0, the two files beside the submission, the
    devkit's in devkit/, the devkit's printout; a refused submission exits 2 with the reason."""
    from tool_module import load_tool

    evaluate = load_tool("evaluate")
    rng = np.random.default_rng(11)
    path = write(tmp_path, {t: noisy(gt_records(nusc, t), rng) for t in split_tokens(nusc)})
    assert evaluate.main([str(path), "--data-root", synthetic_root, "--backend", "both"]) == 0
    out = capsys.readouterr().out
    assert "NDS:" in out and "Per-class results:" in out and "every number of both files equals the devkit's" in out
    for folder in (tmp_path, tmp_path / "devkit"):
        assert (folder / "metrics_summary.json").is_file() and (folder / "metrics_details.json").is_file()
    bad = write(tmp_path, {t: [] for t in split_tokens(nusc)[1:]}, "bad.json")
    assert evaluate.main([str(bad), "--data-root", synthetic_root, "--out-dir", str(tmp_path / "bad")]) == 2
    assert "samples in split doesn't match samples in predictions" in capsys.readouterr().err


def test_evaluate_tool_scores_a_tracking_submission_with_both_backends(nusc, synthetic_root, tmp_path, capsys):
    """tools/evaluate.py --task track --backend both on the annotated tracks jittered by 0.3 m: exit 0, the
    devkit's tracking printout, AMOTA from both backends in their files."""
    from nuscenes.eval.tracking.utils import category_to_tracking_name

    from tool_module import load_tool

    rng = np.random.default_rng(2)
    results = {}
    for token in split_tokens(nusc):
        anns = [nusc.get("sample_annotation", a) for a in nusc.get("sample", token)["anns"]]
        results[token] = [{"sample_token": token, "translation": (np.asarray(a["translation"]) +
                                                                  rng.normal(0, 0.3, 3)).tolist(),
                           "size": a["size"], "rotation": a["rotation"], "velocity": [0.0, 0.0],
                           "tracking_name": category_to_tracking_name(a["category_name"]),
                           "tracking_score": float(rng.random()), "tracking_id": a["instance_token"]}
                          for a in anns if category_to_tracking_name(a["category_name"])]
    path = write(tmp_path, results, "tracks.json")
    assert load_tool("evaluate").main([str(path), "--data-root", synthetic_root, "--task", "track",
                                       "--backend", "both"]) == 0
    out = capsys.readouterr().out
    assert "AMOTA" in out and "every number of both files equals the devkit's" in out
    ours, theirs = (json.loads((folder / "metrics_summary.json").read_text())
                    for folder in (tmp_path, tmp_path / "devkit"))
    assert ours["amota"] == theirs["amota"] > 0.5
