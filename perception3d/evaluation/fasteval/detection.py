"""The devkit's DetectionEval (``nuscenes.eval.detection``) over arrays: the same greedy matching, the same
precision/recall and TP-error curves, the same two JSON files.

Only the hot part is ours: ``accumulate`` (the devkit's ``algo.accumulate``, a Python loop over box objects)
runs as one numba pass per class and distance threshold. Everything downstream of its 101-point curves is the
devkit's own code (``calc_ap``, ``calc_tp``, ``cummean``, ``DetectionMetricData``, ``DetectionMetrics``), so
the summary is computed and serialised exactly as the devkit does it.
"""
from __future__ import annotations

import time
from typing import Dict, Sequence, Tuple

import numba
import numpy as np

from .boxes import EvalBoxArrays, SubmissionError

PRINT_NAMES = {"trans_err": "mATE", "scale_err": "mASE", "orient_err": "mAOE", "vel_err": "mAVE",
               "attr_err": "mAAE"}


@numba.njit(cache=True)
def _greedy_match(order, pred_sample, pred_xy, gt_ptr, gt_xy, dist_th):
    """algo.accumulate's matching: predictions in ``order`` (by falling score) each take the nearest untaken
    ground truth of their sample (the first of equals, in the sample's list order) if it is nearer than
    ``dist_th``. gt_ptr: (S + 1,) CSR offsets of each sample's ground truth in ``gt_xy``.
    → (P,) matched ground-truth row or -1, (P,) its centre distance."""
    taken = np.zeros(gt_xy.shape[0], dtype=np.bool_)
    match = np.full(order.shape[0], -1, dtype=np.int64)
    dist = np.full(order.shape[0], np.inf)
    for k in range(order.shape[0]):
        p = order[k]
        s = pred_sample[p]
        best = np.inf
        best_g = -1
        for g in range(gt_ptr[s], gt_ptr[s + 1]):
            if taken[g]:
                continue
            dx = pred_xy[p, 0] - gt_xy[g, 0]
            dy = pred_xy[p, 1] - gt_xy[g, 1]
            d = np.sqrt(dx * dx + dy * dy)  # common.utils.center_distance
            if d < best:
                best = d
                best_g = g
        if best < dist_th:
            taken[best_g] = True
            match[k] = best_g
            dist[k] = best
    return match, dist


def _yaw(rotation: np.ndarray) -> np.ndarray:
    """common.utils.quaternion_yaw for (N, 4) wxyz quaternions: the heading of the rotated x axis, from
    pyquaternion's rotation matrix (normalised quaternion, first column)."""
    q = rotation
    norm_sq = np.sum(q * q, axis=1)
    q = np.where(np.abs(1.0 - norm_sq)[:, None] < 1e-14, q, q / np.sqrt(norm_sq)[:, None])  # Quaternion._normalise
    w, x, y, z = q.T
    return np.arctan2(y * x + z * w + w * z + x * y, x * x + w * w - z * z - y * y)


def _yaw_diff(gt_yaw: np.ndarray, pred_yaw: np.ndarray, period: float) -> np.ndarray:
    """common.utils.yaw_diff / angle_diff: |smallest signed angle from pred to gt| with the given period."""
    diff = np.mod(gt_yaw - pred_yaw + period / 2, period) - period / 2
    diff = np.where(diff > np.pi, diff - 2 * np.pi, diff)
    return np.abs(diff)


def _scale_err(gt_wlh: np.ndarray, pred_wlh: np.ndarray) -> np.ndarray:
    """1 − common.utils.scale_iou: the IoU of the two boxes aligned at one centre and heading."""
    if (gt_wlh <= 0).any():
        raise ValueError("the ground truth has a box of size <= 0 (w, l, h) matched by a prediction: the "
                         "devkit's scale_iou refuses it (sample_annotation sizes must be >0)")
    if (pred_wlh <= 0).any():
        raise SubmissionError(f"a box of size {pred_wlh[(pred_wlh <= 0).any(axis=1)][0].tolist()} (w, l, h) "
                              f"matched ground truth: sizes must be > 0 (the devkit's scale_iou refuses it)")
    inter = np.prod(np.minimum(gt_wlh, pred_wlh), axis=1)
    union = np.prod(gt_wlh, axis=1) + np.prod(pred_wlh, axis=1) - inter
    return 1 - inter / union


def accumulate(gt: EvalBoxArrays, pred: EvalBoxArrays, label: int, dist_ths: Sequence[float], n_samples: int):
    """algo.accumulate for class ``label`` at each match distance of ``dist_ths`` (m) → one devkit
    DetectionMetricData per distance (the class's boxes are gathered and sorted once for all of them)."""
    from nuscenes.eval.detection.data_classes import DetectionMetricData

    gt_rows = np.flatnonzero(gt.label == label)
    npos = len(gt_rows)
    if npos == 0:
        return [DetectionMetricData.no_predictions() for _ in dist_ths]
    # ground truth of the class grouped by sample, each sample's boxes in list order (the first of equals wins)
    gt_rows = gt_rows[np.argsort(gt.sample[gt_rows], kind="stable")]
    gt_ptr = np.zeros(n_samples + 1, dtype=np.int64)
    np.cumsum(np.bincount(gt.sample[gt_rows], minlength=n_samples), out=gt_ptr[1:])
    # predictions of the class in EvalBoxes.all order (the rows' order), sorted as the devkit's
    # sorted((score, i))[::-1]: by score, then by position, both falling
    pred_rows = np.flatnonzero(pred.label == label)
    scores = pred.score[pred_rows]
    order = np.lexsort((np.arange(len(pred_rows)), scores))[::-1]
    args = (order, pred.sample[pred_rows], pred.translation[pred_rows, :2], gt_ptr, gt.translation[gt_rows, :2])
    return [_metric_data(gt, pred, label, npos, gt_rows, pred_rows[order], scores[order],
                         *_greedy_match(*args, float(dist_th))) for dist_th in dist_ths]


def _metric_data(gt, pred, label, npos, gt_rows, pred_sorted, conf, match, dist):
    """The rest of algo.accumulate: precision, recall and the TP errors' cumulative means, interpolated at
    101 recall points, from the matching of the class's predictions taken by falling score."""
    from nuscenes.eval.common.utils import cummean
    from nuscenes.eval.detection.data_classes import DetectionMetricData

    is_tp = match >= 0
    if not is_tp.any():
        return DetectionMetricData.no_predictions()
    tp = np.cumsum(is_tp).astype(float)
    fp = np.cumsum(~is_tp).astype(float)
    prec = tp / (fp + tp)
    rec = tp / float(npos)
    rec_interp = np.linspace(0, 1, DetectionMetricData.nelem)
    prec = np.interp(rec_interp, rec, prec, right=0)
    conf_interp = np.interp(rec_interp, rec, conf, right=0)

    p = pred_sorted[is_tp]
    g = gt_rows[match[is_tp]]
    match_conf = conf[is_tp]
    period = np.pi if gt.names[label] == "barrier" else 2 * np.pi
    vel = pred.velocity[p] - gt.velocity[g]
    attr = np.where(gt.attribute[g] < 0, np.nan, 1.0 - (gt.attribute[g] == pred.attribute[p]))
    errors = {"trans_err": dist[is_tp],
              "vel_err": np.sqrt(vel[:, 0] * vel[:, 0] + vel[:, 1] * vel[:, 1]),
              "scale_err": _scale_err(gt.size[g], pred.size[p]),
              "orient_err": _yaw_diff(_yaw(gt.rotation[g]), _yaw(pred.rotation[p]), period),
              "attr_err": attr}
    curves = {name: np.interp(conf_interp[::-1], match_conf[::-1], cummean(values)[::-1])[::-1]
              for name, values in errors.items()}
    return DetectionMetricData(recall=rec_interp, precision=prec, confidence=conf_interp, **curves)


def evaluate_detection(gt: EvalBoxArrays, pred: EvalBoxArrays, n_samples: int, cfg, meta: dict
                       ) -> Tuple[Dict, Dict]:
    """DetectionEval.evaluate + the two dicts main() writes: filtered ground truth and predictions of one split
    (``n_samples`` samples), the devkit's DetectionConfig → (metrics_summary, metrics_details)."""
    from nuscenes.eval.detection.algo import calc_ap, calc_tp
    from nuscenes.eval.detection.constants import TP_METRICS
    from nuscenes.eval.detection.data_classes import DetectionMetricDataList, DetectionMetrics

    start = time.time()
    md_list = DetectionMetricDataList()
    names = list(gt.names)
    for class_name in cfg.class_names:
        for dist_th, md in zip(cfg.dist_ths, accumulate(gt, pred, names.index(class_name), cfg.dist_ths, n_samples)):
            md_list.set(class_name, dist_th, md)
    metrics = DetectionMetrics(cfg)
    for class_name in cfg.class_names:
        for dist_th in cfg.dist_ths:
            metrics.add_label_ap(class_name, dist_th, calc_ap(md_list[(class_name, dist_th)], cfg.min_recall,
                                                              cfg.min_precision))
        for metric_name in TP_METRICS:
            if (class_name == "traffic_cone" and metric_name in ("attr_err", "vel_err", "orient_err")) or \
                    (class_name == "barrier" and metric_name in ("attr_err", "vel_err")):
                tp = np.nan
            else:
                tp = calc_tp(md_list[(class_name, cfg.dist_th_tp)], cfg.min_recall, metric_name)
            metrics.add_label_tp(class_name, metric_name, tp)
    metrics.add_runtime(time.time() - start)
    summary = metrics.serialize()
    summary["meta"] = dict(meta)
    return summary, md_list.serialize()


def print_detection_summary(summary: Dict) -> None:
    """What DetectionEval.main prints: mAP, the five mean TP errors, NDS, the time, the per-class table."""
    print("mAP: %.4f" % summary["mean_ap"])
    for name, value in summary["tp_errors"].items():
        print("%s: %.4f" % (PRINT_NAMES[name], value))
    print("NDS: %.4f" % summary["nd_score"])
    print("Eval time: %.1fs" % summary["eval_time"])
    print()
    print("Per-class results:")
    print("%-20s\t%-6s\t%-6s\t%-6s\t%-6s\t%-6s\t%-6s" % ("Object Class", "AP", "ATE", "ASE", "AOE", "AVE", "AAE"))
    for name, ap in summary["mean_dist_aps"].items():
        tp = summary["label_tp_errors"][name]
        print("%-20s\t%-6.3f\t%-6.3f\t%-6.3f\t%-6.3f\t%-6.3f\t%-6.3f"
              % (name, ap, tp["trans_err"], tp["scale_err"], tp["orient_err"], tp["vel_err"], tp["attr_err"]))
