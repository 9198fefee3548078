"""Track the objects of a saved detection run and score the tracks with the official nuscenes-devkit.

    python tools/track.py RESULTS.pkl [--data-root data/synthetic] [--work-dir DIR] [--max-age N]
                          [--matcher greedy|hungarian] [--motion kalman|centerpoint] [--voxel-association]
                          [--birth-score S] [--eval-backend fast|devkit|both]

RESULTS.pkl is what `tools/test.py CONFIG CHECKPOINT --out RESULTS.pkl` saves (or `--task track` runs both). The
tracker runs over each scene in time order; the tracking submission JSON and the devkit's metrics_summary.json
and metrics_details.json (TrackingEval, config tracking_nips_2019; computed by our fast evaluation unless
--eval-backend says devkit, or both to compare them) go to <work-dir>/track_eval/ (default: beside
RESULTS.pkl); AMOTA, AMOTP, MOTA, IDS and the per-class table are printed.
"""
from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def add_tracker_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-age", type=int, default=None, help="frames a track coasts unseen (default 6)")
    parser.add_argument("--matcher", choices=["greedy", "hungarian"], default=None,
                        help="greedy by falling score (CenterPoint's, default) or hungarian")
    parser.add_argument("--motion", choices=["kalman", "centerpoint"], default=None,
                        help="tracks move by a constant-velocity Kalman filter (default) or by CenterPoint's rule "
                             "(the last detection, moved by its own velocity)")
    parser.add_argument("--voxel-association", action="store_true", default=None,
                        help="also match query voxels (VoxelNeXt's association)")
    parser.add_argument("--birth-score", type=float, default=None, help="least score that starts a track")


def tracker_from_args(args, defaults: dict = None):
    """A CenterPointTracker from ``defaults`` (e.g. a config's ``tracker``) overridden by the flags given."""
    from perception3d.tracking import CenterPointTracker

    kwargs = dict(defaults or {})
    for name in ("max_age", "matcher", "voxel_association", "birth_score"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if args.motion == "centerpoint":
        kwargs["motion"] = None
    elif args.motion == "kalman" and kwargs.get("motion", {}) is None:
        kwargs.pop("motion")  # the config chose CenterPoint's rule; the flag restores the default filter
    return CenterPointTracker(**kwargs)


def run_tracking(detections_path: str, data_root: str, out_dir: str, tracker, backend: str = "fast") -> dict:
    """Tracks the saved detections, writes and scores the submission → the devkit's summary dict."""
    from perception3d.evaluation import evaluate_tracking, load_detections
    from perception3d.tracking import tracking_results

    detections = load_detections(detections_path)
    if not isinstance(detections, dict) or {"classes", "frames"} - set(detections):
        raise ValueError(f"{detections_path} is not a detection result of tools/test.py --out")
    print(f"tracking with max_age {tracker.max_age}, {tracker.matcher}, "
          f"{'CenterPoint motion' if tracker.motion is None else 'Kalman motion'}, voxel association "
          f"{'on' if tracker.voxel_association else 'off'}, birth score {tracker.birth_score:g}")
    results = tracking_results(detections, tracker)
    summary = evaluate_tracking(results, data_root, out_dir, backend=backend)
    print(f"AMOTA {summary['amota']:.4f}, AMOTP {summary['amotp']:.4f}, MOTA {summary['mota']:.4f}, "
          f"IDS {int(summary['ids'])}; devkit metrics ({backend}) in {out_dir}")
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="detections saved by tools/test.py --out")
    parser.add_argument("--data-root", default="data/synthetic", help="the dataset the detections are of")
    parser.add_argument("--work-dir", help="default: the folder of RESULTS")
    add_tracker_args(parser)
    parser.add_argument("--eval-backend", choices=["fast", "devkit", "both"], default="fast",
                        help="who computes TrackingEval's metrics: fast (ours), devkit, or both (compared)")
    args = parser.parse_args(argv)
    if not Path(args.results).is_file():
        print(f"error: detection results not found: {args.results}", file=sys.stderr)
        return 2
    if not Path(args.data_root).is_dir():
        print(f"error: --data-root {args.data_root} is not a folder", file=sys.stderr)
        return 2
    try:
        tracker = tracker_from_args(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    work_dir = Path(args.work_dir or Path(args.results).parent)
    try:
        run_tracking(args.results, args.data_root, str(work_dir / "track_eval"), tracker, args.eval_backend)
    except (ValueError, pickle.UnpicklingError, EOFError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
