"""Score any nuScenes detection or tracking submission (ours, OpenPCDet's, mmdetection3d's) with the devkit's
metrics, in seconds.

    python tools/evaluate.py SUBMISSION.json --data-root DIR [--task det|track] [--version V] [--eval-set S]
                             [--backend fast|devkit|both] [--out-dir DIR]

SUBMISSION.json is the devkit's format ({"meta": {...}, "results": {sample_token: [box, ...]}}), one entry per
sample of the split. metrics_summary.json and metrics_details.json, the files the devkit's DetectionEval /
TrackingEval write, go to --out-dir (default: beside the submission), and what the devkit prints is printed.

--backend fast (default) computes every number of those files as the devkit does, over arrays; devkit runs the
devkit itself; both runs the two and fails (exit 1) on any number that differs by more than 1e-9, leaving the
devkit's files in OUT_DIR/devkit.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submission", help="the devkit-format submission JSON")
    parser.add_argument("--data-root", required=True, help="the nuScenes root holding the version's tables")
    parser.add_argument("--task", choices=["det", "track"], default="det")
    parser.add_argument("--version", help="default: v1.0-trainval if DATA_ROOT has it, else v1.0-mini")
    parser.add_argument("--eval-set", help="the devkit split (default: val for v1.0-trainval, mini_val for mini)")
    parser.add_argument("--backend", choices=["fast", "devkit", "both"], default="fast")
    parser.add_argument("--out-dir", help="where the metric files go (default: the submission's folder)")
    args = parser.parse_args(argv)
    submission = Path(args.submission)
    if not submission.is_file():
        print(f"error: submission not found: {submission}", file=sys.stderr)
        return 2
    if not Path(args.data_root).is_dir():
        print(f"error: --data-root {args.data_root} is not a folder", file=sys.stderr)
        return 2
    from perception3d.evaluation.backends import (MetricMismatch, evaluate_detection_file, evaluate_tracking_file,
                                                  load_tables)
    from perception3d.evaluation.fasteval import SubmissionError
    from perception3d.evaluation.splits import resolve_split

    version, eval_set = resolve_split(args.data_root, args.version, args.eval_set)
    if not (Path(args.data_root) / version).is_dir():
        print(f"error: --data-root {args.data_root} has no {version} tables", file=sys.stderr)
        return 2
    out_dir = args.out_dir or str(submission.parent)
    nusc = load_tables(args.data_root, version)
    evaluate = evaluate_detection_file if args.task == "det" else evaluate_tracking_file
    start = time.time()
    try:
        evaluate(str(submission), nusc, eval_set, out_dir, backend=args.backend)
    except SubmissionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except MetricMismatch as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.task} metrics of {submission} ({eval_set} of {version}, backend {args.backend}) in "
          f"{time.time() - start:.1f} s: {out_dir}/metrics_summary.json, metrics_details.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
