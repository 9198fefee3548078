"""One entry for scoring a devkit-format submission file, by our array evaluation ("fast"), by the
nuscenes-devkit itself ("devkit"), or by both with every number compared ("both").

Each writes ``metrics_summary.json`` and ``metrics_details.json`` to ``out_dir`` as the devkit writes them;
"both" puts the devkit's pair in ``out_dir/devkit`` and raises MetricMismatch on any difference beyond 1e-9
(relative; the run time ``eval_time`` is not compared).
"""
from __future__ import annotations

import contextlib
import gc
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..utils.io import atomic_write

BACKENDS = ("fast", "devkit", "both")
TOLERANCE = 1e-9


class MetricMismatch(AssertionError):
    """backend="both" found numbers where our evaluation and the devkit's differ."""


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"evaluation backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return backend


def metric_differences(ours, theirs, path: str = "", tol: float = TOLERANCE) -> List[str]:
    """Where two JSON-like trees of metrics differ: keys, lengths, strings, or numbers further apart than
    ``tol`` × max(1, |theirs|) (NaN equals NaN). ``eval_time`` is skipped."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if set(ours) != set(theirs):
            return [f"{path}: keys {sorted(map(str, set(ours) ^ set(theirs)))} in only one"]
        return [d for key in ours if key != "eval_time"
                for d in metric_differences(ours[key], theirs[key], f"{path}/{key}", tol)]
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{path}: {len(ours)} values against {len(theirs)}"]
        return [d for i, (a, b) in enumerate(zip(ours, theirs)) for d in metric_differences(a, b, f"{path}[{i}]", tol)]
    numbers = (int, float)
    if isinstance(ours, numbers) and isinstance(theirs, numbers) and not isinstance(ours, bool):
        a, b = float(ours), float(theirs)
        if a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol * max(1.0, abs(b)):
            return []
        return [f"{path}: {ours!r} against the devkit's {theirs!r}"]
    return [] if ours == theirs else [f"{path}: {ours!r} against the devkit's {theirs!r}"]


@contextlib.contextmanager
def _bulk_reading():
    """Python's cyclic garbage collector paused while millions of boxes are read and scored: each full
    collection would walk every object of the parsed submission (1.1 s of 6.8 s on full val), which form no
    cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _write_json(path: Path, content: Dict) -> None:
    atomic_write(path, json.dumps(content, indent=2).encode())


def _compare(out_dir: Path, devkit_dir: Path) -> None:
    problems = []
    for name in ("metrics_summary.json", "metrics_details.json"):
        ours = json.loads((out_dir / name).read_text())
        theirs = json.loads((devkit_dir / name).read_text())
        problems += [f"{name}{d}" for d in metric_differences(ours, theirs)]
    if problems:
        raise MetricMismatch(f"the fast evaluation and the devkit's differ in {len(problems)} numbers "
                             f"(ours in {out_dir}, the devkit's in {devkit_dir}):\n  " + "\n  ".join(problems[:20]))


def evaluate_detection_file(result_path: str, nusc, eval_set: str, out_dir: str, backend: str = "fast",
                            config: str = "detection_cvpr_2019", verbose: bool = True,
                            submission: Optional[dict] = None) -> Dict:
    """Score the detection submission ``result_path`` on ``eval_set`` of the loaded tables ``nusc`` → the
    devkit's metrics summary dict (mean_ap, nd_score, tp_errors, mean_dist_aps, label_aps, …). ``submission``:
    the file's content when the caller has it loaded (the fast backend then skips reading it)."""
    return _evaluate_file("det", result_path, nusc, eval_set, out_dir, backend, config, verbose, submission)


def evaluate_tracking_file(result_path: str, nusc, eval_set: str, out_dir: str, backend: str = "fast",
                           config: str = "tracking_nips_2019", verbose: bool = True,
                           submission: Optional[dict] = None) -> Dict:
    """Score the tracking submission ``result_path`` on ``eval_set`` of the loaded tables ``nusc`` → the
    devkit's tracking summary dict (amota, amotp, mota, ids, …, label_metrics per class). ``submission``: the
    file's content when the caller has it loaded."""
    return _evaluate_file("track", result_path, nusc, eval_set, out_dir, backend, config, verbose, submission)


def _run_devkit(task: str, result_path: str, nusc, eval_set: str, out_dir: Path, cfg, verbose: bool) -> Dict:
    """The devkit's DetectionEval / TrackingEval on the file, writing its two files to ``out_dir``."""
    if task == "det":
        from nuscenes.eval.detection.evaluate import DetectionEval

        return DetectionEval(nusc, cfg, str(result_path), eval_set=eval_set, output_dir=str(out_dir),
                             verbose=verbose).main(plot_examples=0, render_curves=False)
    from nuscenes.eval.tracking.evaluate import TrackingEval

    return TrackingEval(cfg, str(result_path), eval_set, str(out_dir), nusc.version, nusc.dataroot,
                        verbose=verbose).main(render_curves=False)


def _run_fast(task: str, result_path: str, submission: Optional[dict], nusc, eval_set: str, cfg,
              verbose: bool) -> Tuple[Dict, Dict]:
    """Our evaluation of the file (or of its content ``submission``) → (metrics_summary, metrics_details)."""
    from .fasteval import (SubmissionError, evaluate_detection, filter_boxes, load_ground_truth, load_samples,
                           load_submission)

    with _bulk_reading():
        samples = load_samples(nusc, eval_set)
        pred, meta = load_submission(result_path if submission is None else submission, samples, task,
                                     cfg.max_boxes_per_sample)
        gt = load_ground_truth(nusc, samples, task)
        if verbose:
            print(f"Fast nuScenes {'detection' if task == 'det' else 'tracking'} evaluation of {result_path}: "
                  f"{len(pred)} predicted and {len(gt)} ground-truth boxes in {len(samples.tokens)} samples of "
                  f"{eval_set}")
        gt, pred = filter_boxes(gt, samples, cfg.class_range), filter_boxes(pred, samples, cfg.class_range)
        if task == "det":
            try:
                summary, details = evaluate_detection(gt, pred, len(samples.tokens), cfg, meta)
            except SubmissionError as err:  # found while scoring (a matched box of size 0): name the file
                raise SubmissionError(f"{result_path}: {err}") from None
        else:
            from .fasteval.tracking import evaluate_tracking

            summary, details = evaluate_tracking(gt, pred, samples, cfg)
            summary["meta"] = dict(meta)
    return summary, details


def _evaluate_file(task: str, result_path: str, nusc, eval_set: str, out_dir: str, backend: str, config: str,
                   verbose: bool, submission: Optional[dict]) -> Dict:
    from nuscenes.eval.common.config import config_factory

    check_backend(backend)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = config_factory(config)
    if backend in ("devkit", "both"):
        summary = _run_devkit(task, result_path, nusc, eval_set, out / "devkit" if backend == "both" else out,
                              cfg, verbose)
        if backend == "devkit":
            return summary
    summary, details = _run_fast(task, result_path, submission, nusc, eval_set, cfg, verbose)
    _write_json(out / "metrics_summary.json", summary)
    _write_json(out / "metrics_details.json", details)
    if task == "det":
        from .fasteval import print_detection_summary as print_summary
    else:
        from .fasteval.tracking import print_tracking_summary as print_summary
    print_summary(summary)
    if backend == "both":
        _compare(out, out / "devkit")
        print(f"backend both: every number of both files equals the devkit's (to {TOLERANCE:g})")
    return summary


def load_tables(data_root: str, version: Optional[str] = None):
    """The devkit's NuScenes tables of ``data_root`` (version as resolve_split picks it)."""
    from nuscenes import NuScenes

    from .splits import resolve_split

    version, _ = resolve_split(data_root, version, None)
    return NuScenes(version, dataroot=str(data_root), verbose=False)
