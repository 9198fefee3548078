"""The devkit's evaluation inputs as arrays: the split's samples, its ground truth, a submission, and the
filters both go through (``nuscenes.eval.common.loaders``: load_gt, load_prediction, add_center_dist,
filter_eval_boxes), with the devkit's checks and its order of boxes, one row per box instead of one object."""
from __future__ import annotations

import json
from array import array
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import itemgetter
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np

TASKS = ("det", "track")
MAX_TIME_DIFF = 1.5  # s: NuScenes.box_velocity's default, doubled for a centred difference


def class_names(task: str) -> Tuple[str, ...]:
    """The devkit's class names of ``task`` ("det": DETECTION_NAMES, "track": TRACKING_NAMES)."""
    if task == "det":
        from nuscenes.eval.detection.constants import DETECTION_NAMES

        return tuple(DETECTION_NAMES)
    if task == "track":  # the devkit keeps them in its tracking_nips_2019 config (tracking/constants has none)
        import nuscenes.eval.tracking

        config = Path(nuscenes.eval.tracking.__file__).parent / "configs" / "tracking_nips_2019.json"
        return tuple(json.loads(config.read_text())["tracking_names"])
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def attribute_names() -> Tuple[str, ...]:
    from nuscenes.eval.detection.constants import ATTRIBUTE_NAMES

    return tuple(ATTRIBUTE_NAMES)


@dataclass
class SampleTable:
    """The samples of one devkit split, in ``nusc.sample`` order.

    tokens: S sample tokens. scene: (S,) int64 index into ``scene_tokens``. timestamp: (S,) int64 µs.
    ego_translation: (S, 3) float64, the ego pose of each sample's LIDAR_TOP sample_data (global frame, m).
    scene_samples: per scene, its samples' indices from first to last (``scene.first_sample_token`` → ``next``).
    bike_racks: sample index → the devkit ``Box`` es of its ``static_object.bicycle_rack`` annotations.
    """

    tokens: List[str]
    scene: np.ndarray
    scene_tokens: List[str]
    timestamp: np.ndarray
    ego_translation: np.ndarray
    scene_samples: List[np.ndarray]
    bike_racks: Dict[int, list] = field(default_factory=dict)

    def index(self) -> Dict[str, int]:
        return {token: i for i, token in enumerate(self.tokens)}


@dataclass
class EvalBoxArrays:
    """N boxes in the devkit's order (samples as ``EvalBoxes.sample_tokens`` lists them, boxes in list order).

    sample: (N,) int64 index into the SampleTable. translation (N, 3), size (N, 3) wlh, rotation (N, 4) wxyz,
    velocity (N, 2) (NaN where the devkit's box_velocity gives NaN): float64, global frame, m, m/s.
    ego_dist: (N,) xy distance to the sample's ego pose. num_pts: (N,) lidar + radar points (-1: a prediction).
    label: (N,) index into ``names``. score: (N,) (-1.0: ground truth). attribute: (N,) index into the devkit's
    ATTRIBUTE_NAMES, -1 for none. track: (N,) index into ``track_ids`` (-1 for detection boxes).
    sample_order: the sample indices in the order the devkit iterates them (its dict's insertion order).
    """

    sample: np.ndarray
    translation: np.ndarray
    size: np.ndarray
    rotation: np.ndarray
    velocity: np.ndarray
    ego_dist: np.ndarray
    num_pts: np.ndarray
    label: np.ndarray
    score: np.ndarray
    attribute: np.ndarray
    track: np.ndarray
    names: Tuple[str, ...]
    track_ids: List[str]
    sample_order: np.ndarray

    ROW_FIELDS = ("sample", "translation", "size", "rotation", "velocity", "ego_dist", "num_pts", "label",
                  "score", "attribute", "track")

    def __len__(self) -> int:
        return len(self.sample)

    def take(self, keep: np.ndarray) -> "EvalBoxArrays":
        """The rows where the boolean (N,) ``keep`` is true (or the given row indices), order kept."""
        rows = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else keep
        rows = {name: np.take(getattr(self, name), rows, axis=0) for name in self.ROW_FIELDS}
        return EvalBoxArrays(**rows, names=self.names, track_ids=self.track_ids, sample_order=self.sample_order)


def _ego_dist(translation: np.ndarray, sample: np.ndarray, samples: SampleTable) -> np.ndarray:
    """add_center_dist + EvalBox.ego_dist: sqrt(dx² + dy²) to the sample's ego pose."""
    d = translation[:, :2] - samples.ego_translation[sample, :2]
    return np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2)


def load_samples(nusc, eval_set: str) -> SampleTable:
    """The samples of ``eval_set`` (a devkit split or a custom split of the data root's splits.json), with the
    devkit's check that the split belongs to ``nusc.version`` (load_gt's)."""
    from nuscenes.utils.splits import create_splits_scenes, get_scenes_of_split, is_predefined_split

    version = nusc.version
    if is_predefined_split(eval_set):
        wanted = {"train": "trainval", "val": "trainval", "train_detect": "trainval", "train_track": "trainval",
                  "mini_train": "mini", "mini_val": "mini", "test": "test"}.get(eval_set)
        if wanted is None or not version.endswith(wanted):
            raise ValueError(f"eval set {eval_set!r} is not a split of nuScenes {version} (the devkit's load_gt "
                             f"refuses it)")
        scene_names = set(create_splits_scenes()[eval_set])
    else:
        scene_names = set(get_scenes_of_split(eval_set, nusc))
    if not nusc.sample:
        raise ValueError(f"nuScenes {version} under {nusc.dataroot} has no samples")
    if eval_set == "test" and not nusc.sample_annotation:
        raise ValueError("the test split's annotations are not public: nothing to evaluate against")
    tokens, scene_of, stamps, ego = [], [], [], []
    scene_index: Dict[str, int] = {}
    for sample in nusc.sample:
        scene = nusc.get("scene", sample["scene_token"])
        if scene["name"] not in scene_names:
            continue
        tokens.append(sample["token"])
        scene_of.append(scene_index.setdefault(scene["token"], len(scene_index)))
        stamps.append(sample["timestamp"])
        sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
        ego.append(nusc.get("ego_pose", sd["ego_pose_token"])["translation"])
    index = {t: i for i, t in enumerate(tokens)}
    scene_samples = []
    for scene_token in scene_index:
        scene = nusc.get("scene", scene_token)
        walk, token = [], scene["first_sample_token"]
        while token:  # the devkit's create_tracks walks first → last the same way
            walk.append(index[token])  # a split holds whole scenes
            if token == scene["last_sample_token"]:
                break
            token = nusc.get("sample", token)["next"]
        scene_samples.append(np.asarray(walk, dtype=np.int64))
    racks = {}
    table, row = nusc.sample_annotation, nusc._token2ind["sample_annotation"]  # NuScenes.get, without the calls
    for i, token in enumerate(tokens):
        recs = [table[row[a]] for a in nusc.get("sample", token)["anns"]]
        recs = [r for r in recs if r["category_name"] == "static_object.bicycle_rack"]
        if recs:
            from nuscenes.utils.data_classes import Box
            from pyquaternion import Quaternion

            racks[i] = [Box(r["translation"], r["size"], Quaternion(r["rotation"])) for r in recs]
    return SampleTable(tokens=tokens, scene=np.asarray(scene_of, dtype=np.int64), scene_tokens=list(scene_index),
                       timestamp=np.asarray(stamps, dtype=np.int64),
                       ego_translation=np.asarray(ego, dtype=np.float64).reshape(-1, 3),
                       scene_samples=scene_samples, bike_racks=racks)


def _floats(lists: List[list], width: int) -> np.ndarray:
    """(N, width) float64 from N lists of ``width`` numbers (one C-level pass)."""
    return np.fromiter(chain.from_iterable(lists), np.float64, count=width * len(lists)).reshape(-1, width)


def _box_velocity(nusc, anns: List[dict], translation: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """NuScenes.box_velocity(token)[:2] of every annotation record: the centred difference of the previous and
    next annotations' translations over their samples' times (one-sided at a track's ends), NaN for a lone
    annotation or a gap over 1.5 s (3 s centred). ``translation`` (A, 3) and ``seconds`` (A,) (1e-6 × the
    sample's timestamp, as the devkit computes it) are the annotations' own. (A, 2) float64, the devkit's float
    operations."""
    row_of = dict(zip(map(itemgetter("token"), anns), range(len(anns))))  # a track's neighbours: same scene
    row_of[""] = row_of[None] = -2  # no neighbour: the annotation itself stands in (box_velocity's `if prev`)

    def neighbour(key):
        tokens = list(map(itemgetter(key), anns))
        rows = np.fromiter(map(row_of.get, tokens, repeat(-1)), np.int64, count=len(anns))
        has = rows != -2
        alone = np.flatnonzero(~has)
        rows[alone] = alone
        xyz, t = translation[rows], seconds[rows]
        for i in np.flatnonzero(rows == -1):  # a neighbour outside these annotations: from the tables
            record = nusc.get("sample_annotation", tokens[i])
            xyz[i] = record["translation"]
            t[i] = 1e-6 * nusc.get("sample", record["sample_token"])["timestamp"]
        return xyz, t, has

    first, t_first, has_prev = neighbour("prev")
    last, t_last, has_next = neighbour("next")
    time_diff = t_last - t_first
    with np.errstate(divide="ignore", invalid="ignore"):
        velocity = (last - first)[:, :2] / time_diff[:, None]
    too_long = time_diff > np.where(has_prev & has_next, 2 * MAX_TIME_DIFF, MAX_TIME_DIFF)
    velocity[~(has_prev | has_next) | too_long] = np.nan
    return velocity


def load_ground_truth(nusc, samples: SampleTable, task: str = "det") -> EvalBoxArrays:
    """The annotations of ``samples`` as the devkit's load_gt reads them (DetectionBox for "det", TrackingBox
    for "track"): categories mapped to the task's names (others dropped), at most one attribute, velocity from
    box_velocity, num_pts = lidar + radar points, the tracking id = the instance token. Not yet filtered."""
    names = class_names(task)
    if task == "det":
        from nuscenes.eval.detection.utils import category_to_detection_name as to_name
    else:
        from nuscenes.eval.tracking.utils import category_to_tracking_name as to_name
    name_index = {name: i for i, name in enumerate(names)}
    label_of = {c["name"]: name_index.get(to_name(c["name"]), -1) for c in nusc.category}
    # The devkit's order is the split's samples, each sample's "anns" in turn. The records are read in the
    # table's own order instead (the order json.load laid them out in memory: 3x faster than hopping from sample
    # to sample), and each column is then put in the devkit's order.
    table, row = nusc.sample_annotation, nusc._token2ind["sample_annotation"]  # NuScenes.get, without the calls
    sample_table, sample_row = nusc.sample, nusc._token2ind["sample"]
    tokens = [sample_table[sample_row[t]]["anns"] for t in samples.tokens]
    table_rows = np.fromiter(map(row.__getitem__, chain.from_iterable(tokens)), np.int64,
                             count=sum(map(len, tokens)))  # the table row of each annotation, devkit order
    by_table = np.argsort(table_rows, kind="stable")  # record j below is annotation by_table[j] of the devkit
    records = list(map(table.__getitem__, table_rows[by_table].tolist()))
    record_of = np.empty_like(by_table)
    record_of[by_table] = np.arange(len(by_table))  # the devkit's annotation k is records[record_of[k]]
    record_sample = np.repeat(np.arange(len(tokens), dtype=np.int64), list(map(len, tokens)))[by_table]
    record_label = np.fromiter(map(label_of.__getitem__, map(itemgetter("category_name"), records)), np.int64,
                               count=len(records))
    rows = record_of[record_label[record_of] >= 0]  # the task's boxes, devkit order → records

    def column(key):
        values = list(map(itemgetter(key), records))
        return [values[i] for i in rows.tolist()]

    track_ids: Dict[str, int] = {}
    if task == "det":
        attribute_tokens = column("attribute_tokens")
        crowded = next((i for i, a in enumerate(attribute_tokens) if len(a) > 1), None)
        if crowded is not None:
            raise ValueError(f"annotation {records[rows[crowded]]['token']} has {len(attribute_tokens[crowded])} "
                             f"attributes: the devkit allows at most one")
        attr_index = {a["token"]: attribute_names().index(a["name"]) for a in nusc.attribute}
        attribute = np.asarray([attr_index[a[0]] if a else -1 for a in attribute_tokens], dtype=np.int64)
        track = np.full(len(rows), -1, dtype=np.int64)
    else:
        attribute = np.full(len(rows), -1, dtype=np.int64)
        track = np.fromiter(map(lambda t: track_ids.setdefault(t, len(track_ids)), column("instance_token")),
                            np.int64, count=len(rows))
    translation = _floats(list(map(itemgetter("translation"), records)), 3)
    seconds = 1e-6 * samples.timestamp.astype(np.float64)[record_sample]
    velocity = _box_velocity(nusc, records, translation, seconds).reshape(-1, 2)[rows]
    num_pts = (np.fromiter(map(itemgetter("num_lidar_pts"), records), np.int64, count=len(records))
               + np.fromiter(map(itemgetter("num_radar_pts"), records), np.int64, count=len(records)))
    sample, translation = record_sample[rows], translation[rows]
    return EvalBoxArrays(
        sample=sample, translation=translation, size=_floats(list(map(itemgetter("size"), records)), 3)[rows],
        rotation=_floats(list(map(itemgetter("rotation"), records)), 4)[rows], velocity=velocity,
        ego_dist=_ego_dist(translation, sample, samples), num_pts=num_pts[rows], label=record_label[rows],
        score=np.full(len(rows), -1.0), attribute=attribute, track=track, names=names,
        track_ids=list(track_ids), sample_order=np.arange(len(samples.tokens), dtype=np.int64))


class SubmissionError(ValueError):
    """A submission the devkit refuses (its assertion, said with the file and the offending sample or box)."""


def _read_submission(submission: Union[str, Path, dict]) -> Tuple[dict, str]:
    if isinstance(submission, dict):
        return submission, "the submission"
    path = Path(submission)
    if not path.is_file():
        raise SubmissionError(f"{path}: no such submission file")
    try:
        with open(path) as f:
            return json.load(f), str(path)
    except json.JSONDecodeError as err:
        raise SubmissionError(f"{path}: not valid JSON ({err})") from None


def load_submission(submission: Union[str, Path, dict], samples: SampleTable, task: str = "det",
                    max_boxes: int = 500) -> Tuple[EvalBoxArrays, dict]:
    """A devkit submission (a path to its JSON, or the loaded dict) → (boxes, meta), refused as the devkit's
    load_prediction + DetectionEval/TrackingEval refuse it: no ``results`` or ``meta``, samples other than the
    split's, more than ``max_boxes`` boxes in a sample, an unknown class or attribute, NaN in a translation,
    size, rotation or score, wrong lengths. Velocity may be NaN (its error then counts as NaN, as the devkit's)."""
    data, where = _read_submission(submission)
    if not isinstance(data, dict) or "results" not in data:
        raise SubmissionError(f"{where}: no field 'results' (the devkit's result format: "
                              f"{{'meta': {{...}}, 'results': {{sample_token: [box, ...]}}}})")
    if "meta" not in data:
        raise SubmissionError(f"{where}: no field 'meta' (use_camera, use_lidar, use_radar, use_map, use_external)")
    if not isinstance(data["meta"], dict):
        raise SubmissionError(f"{where}: 'meta' must be a dict, got {type(data['meta']).__name__}")
    results = data["results"]
    if not isinstance(results, dict):
        raise SubmissionError(f"{where}: 'results' must map sample tokens to lists of boxes")
    index = samples.index()
    extra = [t for t in results if t not in index]
    missing = len(index) - (len(results) - len(extra))
    if extra or missing:
        raise SubmissionError(f"{where}: samples in split doesn't match samples in predictions (the devkit's "
                              f"assertion): {missing} of the split's {len(index)} samples missing, {len(extra)} "
                              f"not in the split{' (e.g. ' + extra[0] + ')' if extra else ''}")
    names = class_names(task)
    name_index = {name: i for i, name in enumerate(names)}
    attr_index = {a: i for i, a in enumerate(attribute_names())}
    attr_index[""] = -1
    name_key, score_key = ("detection_name", "detection_score") if task == "det" else \
        ("tracking_name", "tracking_score")
    records, sample, keys = [], [], []
    for token, boxes in results.items():
        if len(boxes) > max_boxes:
            raise SubmissionError(f"{where}: sample {token} has {len(boxes)} boxes: only <= {max_boxes} boxes per "
                                  f"sample allowed")
        records.extend(boxes)
        sample.extend([index[token]] * len(boxes))
        keys.extend([token] * len(boxes))

    if not records:  # the devkit's filter_eval_boxes finds no box to tell the task by and raises
        raise SubmissionError(f"{where}: no box in any of the {len(results)} samples: the devkit "
                              f"cannot score an empty submission")

    # one C-level pass over the boxes takes every field of each (map + itemgetter, row by row: the parsed JSON's
    # objects are read while they are in cache), then the columns come out of those rows
    last_key = "attribute_name" if task == "det" else "tracking_id"
    fields = ("sample_token", "translation", "size", "rotation", "velocity", name_key, score_key, last_key)
    try:
        rows = list(map(itemgetter(*fields), records))
    except TypeError:
        raise SubmissionError(f"{where}: each box must be a dict (a JSON object)") from None
    except KeyError:  # a box without a score scores -1.0 (the devkit's deserialize); any other key is required
        missing = next((k for r in records for k in fields if k != score_key and k not in r), None)
        if missing is not None:
            raise SubmissionError(f"{where}: a box without '{missing}'") from None
        rows = [tuple(r.get(k, -1.0) if k == score_key else r[k] for k in fields) for r in records]

    def column(i):
        return list(map(itemgetter(i), rows))

    # the devkit matches a box against the ground truth of its own sample_token but measures its range from the
    # sample it is listed under: a box listed under another sample is refused rather than scored both ways
    listed = column(0)
    if listed != keys:
        k = next(i for i, (a, b) in enumerate(zip(listed, keys)) if a != b)
        raise SubmissionError(f"{where}: a box listed under sample {keys[k]} has sample_token {listed[k]!r}")
    widths = {"translation": 3, "size": 3, "rotation": 4, "velocity": 2}
    try:
        lengths = np.fromiter(map(len, chain.from_iterable(map(itemgetter(1, 2, 3, 4), rows))), np.int64,
                              count=4 * len(rows))
        if (lengths.reshape(-1, 4) != list(widths.values())).any():
            raise TypeError
        # array("d") takes real numbers only (a string is refused, as the devkit's np.isnan refuses it)
        numbers = np.frombuffer(array("d", chain.from_iterable(chain.from_iterable(map(itemgetter(1, 2, 3, 4),
                                                                                         rows)))),
                                np.float64).reshape(-1, 12)
    except (TypeError, ValueError):
        key, bad = next((key, r) for r in records for key, width in widths.items()
                        if np.ndim(r[key]) != 1 or len(r[key]) != width or
                        not all(isinstance(v, (int, float)) for v in r[key]))
        raise SubmissionError(f"{where}: {key} must be {widths[key]} numbers, got {bad[key]!r} in sample "
                              f"{bad.get('sample_token')}") from None
    translation, size, rotation, velocity = (numbers[:, a:b] for a, b in ((0, 3), (3, 6), (6, 10), (10, 12)))
    for key, values in (("translation", translation), ("size", size), ("rotation", rotation)):
        if np.isnan(values).any():
            row = int(np.isnan(values).any(axis=1).argmax())
            raise SubmissionError(f"{where}: {key} may not be NaN (sample {keys[row]})")

    def indices(i, index, choices):
        try:
            return np.fromiter(map(index.__getitem__, map(itemgetter(i), rows)), np.int64, count=len(rows))
        except (KeyError, TypeError):
            bad = next(r[i] for r in rows if not isinstance(r[i], str) or r[i] not in index)
            raise SubmissionError(f"{where}: unknown {fields[i]} {bad!r} {choices}") from None

    label = indices(5, name_index, f"(one of {', '.join(names)})")
    try:  # the devkit's deserialize: float(score)
        score = np.fromiter(map(itemgetter(6), rows), np.float64, count=len(rows))
    except (TypeError, ValueError):
        raise SubmissionError(f"{where}: {score_key} must be a number, got "
                              f"{next(r[6] for r in rows if not isinstance(r[6], (int, float)))!r}") from None
    if np.isnan(score).any():
        raise SubmissionError(f"{where}: {score_key} must be a number, not NaN or null (sample "
                              f"{keys[int(np.isnan(score).argmax())]})")
    track_ids: Dict[str, int] = {}
    if task == "det":
        attribute = indices(7, attr_index, "(one of the devkit's ATTRIBUTE_NAMES or '')")
        track = np.full(len(records), -1, dtype=np.int64)
    else:
        attribute = np.full(len(records), -1, dtype=np.int64)
        track = np.asarray([track_ids.setdefault(t, len(track_ids)) for t in column(7)], dtype=np.int64)
    sample = np.asarray(sample, dtype=np.int64)
    boxes = EvalBoxArrays(
        sample=sample, translation=translation, size=size, rotation=rotation, velocity=velocity,
        ego_dist=_ego_dist(translation, sample, samples), num_pts=np.full(len(records), -1, dtype=np.int64),
        label=label, score=score, attribute=attribute, track=track, names=names, track_ids=list(track_ids),
        sample_order=np.asarray([index[t] for t in results], dtype=np.int64))
    return boxes, data["meta"]


def filter_boxes(boxes: EvalBoxArrays, samples: SampleTable, class_range: Dict[str, float]) -> EvalBoxArrays:
    """filter_eval_boxes: keep boxes nearer the ego than their class's range, drop ground truth without a lidar
    or radar point (num_pts == 0), drop bicycles and motorcycles whose centre lies in a bike rack."""
    max_dist = np.asarray([class_range[name] for name in boxes.names], dtype=np.float64)
    keep = (boxes.ego_dist < max_dist[boxes.label]) & (boxes.num_pts != 0)
    cycles = [i for i, name in enumerate(boxes.names) if name in ("bicycle", "motorcycle")]
    if samples.bike_racks and cycles:
        from nuscenes.utils.geometry_utils import points_in_box

        for row in np.flatnonzero(keep & np.isin(boxes.label, cycles)):
            racks = samples.bike_racks.get(int(boxes.sample[row]), ())
            centre = boxes.translation[row].reshape(3, 1)
            if any(np.sum(points_in_box(rack, centre)) > 0 for rack in racks):
                keep[row] = False
    return boxes.take(keep)
