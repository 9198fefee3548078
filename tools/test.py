"""Test a trained detector or segmentor on its config's test split and score it with the nuscenes-devkit's metrics.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--show-dir DIR [--show-score-thr T]]
                         [--score-thr T] [--data-root PATH] [--cfg-options k=v ...] [--launcher ...]
                         [--eval-backend fast|devkit|both]
                         [--task det|track [--max-age N] [--matcher greedy|hungarian] [--motion kalman|centerpoint]
                                           [--voxel-association]]

Writes the submission JSON (global frame) and the devkit's metrics_summary.json and metrics_details.json to
<work-dir>/eval/ and prints mAP, NDS, the TP errors and the per-class table. The numbers are the devkit's
DetectionEval's, computed by our fast evaluation; --eval-backend devkit runs the devkit itself, both runs the two
and fails on any difference (the evaluator's ``backend`` in a config does the same). --out saves every prediction (LiDAR
frame, with poses) as a pickle; --show-dir draws each frame from above, ground truth beside the predictions
(the config's LidarVisualizer).
--task track then tracks the objects of each scene (the config's ``tracker`` settings, overridden by the flags)
and scores the tracks with the devkit's TrackingEval: submission and metrics_summary.json in <work-dir>/track_eval/.

A segmentation config (evaluator LidarSegMetric) writes the devkit's lidarseg result files, one class per point
of every key frame, to <work-dir>/eval/lidarseg/<eval_set>/, scores them with the devkit's LidarSegEval
(<work-dir>/eval/lidarseg_metrics.json) and prints mIoU and the IoU of each class; --show-dir draws each frame's
points coloured by class, ground truth left and prediction right.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from track import add_tracker_args, run_tracking, tracker_from_args  # noqa: E402  (tools/track.py)


def parse_args(argv=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--work-dir", help="default work_dirs/<config stem>")
    parser.add_argument("--out", help="save all predictions to this .pkl")
    parser.add_argument("--show-dir", help="write a picture of every frame here, ground truth beside predictions")
    parser.add_argument("--score-thr", type=float, default=0.0,
                        help="leave out predictions below this score (submission, --out and pictures)")
    parser.add_argument("--show-score-thr", type=float, default=0.3,
                        help="draw predictions from this score up in the --show-dir pictures (default 0.3)")
    parser.add_argument("--data-root", help="point every dataset, info file and evaluator of the config here")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm"], default="none")
    parser.add_argument("--task", choices=["det", "track"], default="det",
                        help="det: detection metrics; track: also track and score the tracks")
    parser.add_argument("--eval-backend", choices=["fast", "devkit", "both"], default=None,
                        help="who computes the devkit's metrics: fast (ours, the default), devkit (the "
                             "nuscenes-devkit itself) or both (compared number for number)")
    add_tracker_args(parser)
    return parser.parse_args(argv)


def setup(args):
    from perception3d.engine import UserError, check_config, load_config, require_writable_dir

    cfg = load_config(args.config, args.cfg_options, args.data_root, args.work_dir)
    check_config(cfg, ["test_dataloader"])
    require_writable_dir(cfg.work_dir)
    if not Path(args.checkpoint).is_file():
        raise UserError(f"checkpoint not found: {args.checkpoint}")
    if args.out and not args.out.endswith((".pkl", ".pickle")):
        raise UserError(f"--out must name a .pkl file, got {args.out}")
    if args.show_dir:
        require_writable_dir(args.show_dir, "--show-dir")
    cfg.launcher = args.launcher
    cfg.load_from = args.checkpoint
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
    if any(e.get("type") == "LidarSegMetric" for e in evaluators):  # a segmentor: its files are the predictions
        if args.out or args.task == "track":
            raise UserError("--out and --task track are for detection; a segmentation config writes its "
                            "predictions as the devkit's lidarseg files to <work-dir>/eval/lidarseg/")
        cfg.test_evaluator = evaluators
        return cfg, None
    for evaluator in evaluators:
        if evaluator.get("type") == "NuScenesMetric":
            evaluator["score_thr"] = args.score_thr
            if args.eval_backend:
                evaluator["backend"] = args.eval_backend
    dump = args.out or (str(Path(cfg.work_dir) / "results.pkl") if args.show_dir or args.task == "track" else None)
    if dump:
        evaluators.append(dict(type="DetectionDump", out_file=dump, score_thr=args.score_thr))
    cfg.test_evaluator = evaluators
    return cfg, dump


def draw_frames(cfg, dump: str, show_dir: str, score_thr: float, visualizer) -> None:
    """One PNG per frame of the dump through the run's LidarVisualizer (the config's ``visualizer``): the frame's
    points, its ground truth beside the predictions scored at least ``score_thr``."""
    from mmengine.utils import ProgressBar

    from perception3d.datasets.transforms.loading import LoadPoints, LoadSweeps
    from perception3d.evaluation import load_detections
    from perception3d.registry import DATASETS
    from perception3d.visualization import LidarVisualizer

    if not isinstance(visualizer, LidarVisualizer):  # a config with another visualizer: draw with ours
        visualizer = LidarVisualizer(name="show_dir")
    visualizer.score_thr = score_thr
    detections = load_detections(dump)
    visualizer.classes = tuple(detections["classes"])
    dataset = DATASETS.build(dict(cfg.test_dataloader.dataset, pipeline=[]))
    index = {dataset.get_data_info(i)["token"]: i for i in range(len(dataset))}
    load = [LoadPoints(), LoadSweeps(1)]
    progress = ProgressBar(len(detections["frames"]))
    for frame in detections["frames"]:
        sample = dataset.make_sample(dataset.get_data_info(index[frame["token"]]))
        for step in load:
            sample = step(sample)
        visualizer.add_datasample(frame["token"], sample.points, sample.gt_boxes, frame["boxes"], frame["labels"],
                                  frame["scores"], out_file=str(Path(show_dir) / f"{frame['token']}.png"))
        progress.update()
    print(f"\npictures in {show_dir}")


def draw_segmentation(cfg, show_dir: str) -> None:
    """One PNG per frame the LidarSegMetric scored: its points coloured by the ground truth's classes (left) and by
    the predicted ones (right), from the devkit's result files in the evaluator's out_dir."""
    from mmengine.utils import ProgressBar

    from perception3d.datasets.lidarseg import load_point_labels
    from perception3d.datasets.point_io import load_bin_points
    from perception3d.evaluation.lidarseg_eval import prediction_path
    from perception3d.evaluation.splits import resolve_split
    from perception3d.registry import DATASETS
    from perception3d.visualization import (add_class_legend, camera_preset, label_colours, render_image,
                                            save_png)

    metric = next(e for e in cfg.test_evaluator if e.get("type") == "LidarSegMetric")
    _, eval_set = resolve_split(metric["data_root"], metric.get("version"), metric.get("eval_set"))
    dataset = DATASETS.build(dict(cfg.test_dataloader.dataset, pipeline=[]))
    camera = camera_preset("bev", 54.0)
    progress = ProgressBar(len(dataset))
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        points = load_bin_points(str(Path(dataset.data_root) / info["lidar_path"]))
        predicted = np.fromfile(prediction_path(metric["out_dir"], eval_set, info["lidar_token"]), dtype=np.uint8)
        truth = (load_point_labels(str(Path(dataset.data_root) / info["lidarseg_path"]), len(points))
                 if info.get("lidarseg_path") else np.zeros(len(points), dtype=np.int64))
        halves = [add_class_legend(render_image(points, camera=camera, width=640, height=640,
                                                colour_by=label_colours(labels)), labels, title)
                  for labels, title in ((truth, "ground truth"), (predicted, "prediction"))]
        divider = np.full((640, 2, 3), 128, dtype=np.uint8)
        save_png(str(Path(show_dir) / f"{info['token']}.png"), np.concatenate([halves[0], divider, halves[1]], 1))
        progress.update()
    print(f"\npictures in {show_dir}")


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmengine.model import is_model_wrapper

    from perception3d.engine import UserError, build_runner, check_checkpoint

    try:
        cfg, dump = setup(args)
        try:
            tracker = tracker_from_args(args, cfg.get("tracker")) if args.task == "track" else None
        except ValueError as e:
            raise UserError(f"tracker settings: {e}") from e
        runner = build_runner(cfg)
        check_checkpoint(args.checkpoint, runner.model.module if is_model_wrapper(runner.model) else runner.model)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    metrics = runner.test()
    seg_dir = next((e["out_dir"] for e in cfg.test_evaluator if e.get("type") == "LidarSegMetric"), None)
    if seg_dir:
        from perception3d.datasets.lidarseg import SEG_CLASSES

        print(f"mIoU {metrics.get('LidarSeg/mIoU', float('nan')):.4f}; the devkit's numbers in "
              f"{seg_dir}/lidarseg_metrics.json, its result files in {seg_dir}/lidarseg/")
        for name in SEG_CLASSES:
            print(f"  {name:<22} IoU {metrics.get(f'LidarSeg/IoU_{name}', float('nan')):.4f}")
        if args.show_dir:
            draw_segmentation(cfg, args.show_dir)
        return 0
    eval_dir = next((e["out_dir"] for e in cfg.test_evaluator if e.get("type") == "NuScenesMetric"), None)
    if eval_dir:
        print(f"mAP {metrics.get('NuScenes/mAP', float('nan')):.4f}, NDS {metrics.get('NuScenes/NDS', float('nan')):.4f}; "
              f"devkit metrics in {eval_dir}")
    if dump:
        print(f"predictions saved to {dump}")
    if tracker is not None:
        try:
            run_tracking(dump, cfg.test_dataloader.dataset.data_root, str(Path(cfg.work_dir) / "track_eval"), tracker,
                         args.eval_backend or "fast")
        except ValueError as e:
            print(f"error: tracking: {e}", file=sys.stderr)
            return 2
    if args.show_dir:
        draw_frames(cfg, dump, args.show_dir, args.show_score_thr, runner.visualizer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
