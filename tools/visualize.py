"""Draw a point cloud with its boxes: an Open3D window where there is a display, a picture or a video otherwise.

    python tools/visualize.py POINTS_FILE [--load-dims 5] [--boxes BOXES.json] [--model CONFIG CHECKPOINT]
                              [--out PATH.png]
    python tools/visualize.py CONFIG --index I | --token T [--data-root DIR] [--pred RESULTS.pkl|results_nusc.json]
                              [--tracks results_nusc_tracking.json] [--out PATH.png] [--mode bev]
    python tools/visualize.py CONFIG --index I --sequence --out SCENE.mp4|.gif

A point file is any that perception3d.apis reads (.bin / .pcd.bin with --load-dims, .npy, .pcd, .ply), drawn
with the boxes of a JSON (class colours; classes outside the ten left out) or with --model's detections in it
(class colours, the JSON's boxes then white). A config picks a sample of its test dataset (by index or sample
token): its key-frame points and ground-truth boxes (white), with predictions (--pred: tools/test.py's --out
pickle or its submission JSON; class colours, from --score-thr up) and the tracks of a tracking submission
(--tracks: a colour per track id, a trail of its last --trail centres) over them. --sequence renders every key
frame of that sample's scene into an MP4 or GIF. Without --out a window opens where there is a display; without
a display the picture goes to visualize.png. --mode bev draws a matplotlib bird's-eye view instead of the Open3D
scene.

--colour-by label colours each point by its lidarseg class (the devkit's colours, a legend of the classes shown):
a config's sample by its ground truth (the lidarseg file its info names), or by the predictions of --pred
LIDARSEG_DIR (tools/test.py's <work-dir>/eval of a segmentation config, or any folder of the devkit's
<token>_lidarseg.bin result files); a point file by the classes --model (a segmentation config) predicts.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GT_LABEL, TRACK_LABEL = -1, -2  # Frame.labels of ground-truth and tracked boxes (predictions hold class indices)


def parse_args(argv=None):
    from perception3d.visualization.colours import COLOUR_MODES
    from perception3d.visualization.open3d_scene import CAMERAS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="a point file, or a config (.py) with --index or --token")
    parser.add_argument("--load-dims", type=int, default=5, help=".bin columns: 5 nuScenes (default), 4 KITTI")
    parser.add_argument("--out", help="write a picture (.png) or, with --sequence, a video (.mp4, .gif)")
    parser.add_argument("--boxes", help="with a point file: a JSON of boxes in its frame, {\"boxes\": [[x, y, z, dx, "
                        "dy, dz, yaw, vx, vy], ...], \"names\": [class, ...]}; docs/frame_format.md describes it, "
                        "tests/data/nuscenes_frame/frame.json is one")
    parser.add_argument("--model", nargs=2, metavar=("CONFIG", "CHECKPOINT"),
                        help="with a point file: detect objects in it with this model and draw those from --score-thr "
                        "up in class colours (--boxes are then drawn white, as ground truth)")
    parser.add_argument("--device", default="cpu", help="where --model runs (cpu, cuda, cuda:1, ...)")
    parser.add_argument("--index", type=int, help="sample index in the config's test dataset")
    parser.add_argument("--token", help="sample token in the config's test dataset")
    parser.add_argument("--data-root", help="the dataset's folder (default: the config's)")
    parser.add_argument("--pred", help="predictions drawn over the sample: tools/test.py's --out pickle or its "
                        "submission JSON (eval/results_nusc.json)")
    parser.add_argument("--tracks", help="a tracking submission (tools/track.py's track_eval/"
                        "results_nusc_tracking.json) drawn over the sample: boxes coloured by track id, with trails")
    parser.add_argument("--trail", type=int, default=6, help="key frames of past centres drawn behind each track")
    parser.add_argument("--score-thr", type=float, default=0.3, help="least score of a drawn prediction or track")
    parser.add_argument("--sequence", action="store_true", help="every key frame of the sample's scene → video")
    parser.add_argument("--mode", choices=["3d", "bev"], default="3d",
                        help="the Open3D scene, or a matplotlib bird's-eye view (square, --height pixels a side)")
    parser.add_argument("--camera", choices=CAMERAS, default="bev", help="Open3D camera preset")
    parser.add_argument("--colour-by", choices=COLOUR_MODES, default="height", help="point colours")
    parser.add_argument("--extent", type=float, default=None,
                        help="half-width of the view (m), around the sensor; default: a point file's view fitted "
                        "to its cloud, 54 m around the sensor for a dataset sample")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=960)
    parser.add_argument("--fps", type=float, default=2.0, help="video frames per second (key frames are 2 Hz)")
    return parser.parse_args(argv)


class Frame:
    """What one picture shows: points (N, 5), boxes (K, 9) with RGB colours (K, 3) and labels (K,) (class indices;
    GT_LABEL, TRACK_LABEL), trails ((P, 3) path, colour), in the points' frame."""

    def __init__(self, name, points, boxes=None, colours=None, labels=None, trails=(), point_labels=None,
                 title=""):
        self.name, self.points, self.trails = name, points, list(trails)
        self.point_labels, self.title = point_labels, title  # lidarseg classes (N,) for --colour-by label
        self.boxes = np.zeros((0, 9)) if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(-1, 9)
        self.colours = np.zeros((0, 3)) if colours is None else np.asarray(colours).reshape(-1, 3)
        self.labels = np.full(len(self.boxes), GT_LABEL) if labels is None else np.asarray(labels)


def dataset_frames(args):
    """The Frames of the config's sample (or of its whole scene with --sequence), with ground truth,
    predictions and tracks."""
    from mmengine.registry import init_default_scope

    from perception3d.datasets.point_io import load_points
    from perception3d.engine import UserError, load_config
    from perception3d.registry import DATASETS
    from perception3d.structures import transform_points
    from perception3d.visualization import GT_COLOUR, class_box_colours, track_colour

    import perception3d.datasets  # noqa: F401  (registers the datasets)

    cfg = load_config(args.input, None, args.data_root)
    init_default_scope(cfg.get("default_scope", "perception3d"))  # not a scope an earlier runner in the process left
    dataset = DATASETS.build(dict(cfg.test_dataloader.dataset, pipeline=[], test_mode=True))
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    if args.token is not None:
        found = [i for i, info in enumerate(infos) if info["token"] == args.token]
        if not found:
            raise UserError(f"--token {args.token}: no such sample in the test dataset of {args.input}")
        index = found[0]
    else:
        if args.index is None or not 0 <= args.index < len(infos):
            raise UserError(f"--index must be within 0..{len(infos) - 1} (or give --token), got {args.index}")
        index = args.index
    scene = sorted((i for i, info in enumerate(infos) if info["scene_token"] == infos[index]["scene_token"]),
                   key=lambda i: infos[i]["timestamp"])  # the sample's scene in time order
    chosen = scene if args.sequence else [index]
    if args.colour_by == "label":
        return [label_frame(dataset, infos[i], args.pred) for i in chosen]
    predictions = load_predictions(args.pred, args.score_thr) if args.pred else {}
    tracks = load_submission(args.tracks, "--tracks", "tracking_score", args.score_thr) if args.tracks else None
    frames = []
    for i in chosen:
        info = infos[i]
        sample = dataset.make_sample(info)
        points = sweep_points(sample, cfg) if args.colour_by == "time" else \
            load_points(str(Path(dataset.data_root) / info["lidar_path"]))
        boxes, colours, labels = [sample.gt_boxes], [np.tile(GT_COLOUR, (len(sample.gt_boxes), 1))], \
            [np.full(len(sample.gt_boxes), GT_LABEL)]
        if info["token"] in predictions:
            pred_boxes, pred_labels = predicted_boxes(predictions[info["token"]], info)
            boxes.append(pred_boxes)
            labels.append(pred_labels)
            colours.append(class_box_colours(pred_labels))
        trails = []
        if tracks is not None:
            records = tracks.get(info["token"], [])
            track_boxes, to_lidar = submission_boxes(records, info)
            ids = [r["tracking_id"] for r in records]
            colours_by_id = [track_colour(t) for t in ids]
            boxes.append(track_boxes)
            colours.append(np.asarray(colours_by_id).reshape(-1, 3))
            labels.append(np.full(len(track_boxes), TRACK_LABEL))
            # each track's centres in the scene's last --trail key frames up to this one (global, then LiDAR)
            position = scene.index(i)
            past = {}
            for j in scene[max(position - args.trail, 0):position + 1]:
                for record in tracks.get(infos[j]["token"], []):
                    past.setdefault(record["tracking_id"], []).append(record["translation"])
            for track_id, colour in zip(ids, colours_by_id):
                trails.append((transform_points(to_lidar, np.asarray(past[track_id], dtype=np.float64)), colour))
        frames.append(Frame(info["token"], points, np.concatenate(boxes), np.concatenate(colours),
                            np.concatenate(labels), trails))
    return frames


def label_frame(dataset, info: dict, pred_dir) -> Frame:
    """A sample's key frame coloured by class: the predictions of ``pred_dir`` (a folder holding the devkit's
    ``<lidar token>_lidarseg.bin`` result files, searched below it) or, without one, its lidarseg ground truth."""
    from perception3d.datasets.lidarseg import load_point_labels
    from perception3d.datasets.point_io import count_file_points, load_bin_points
    from perception3d.engine import UserError

    path = str(Path(dataset.data_root) / info["lidar_path"])
    points = load_bin_points(path)
    if len(points) != count_file_points(path):
        raise UserError(f"{path} has rows with NaN or inf: its per-point classes cannot be drawn")
    if pred_dir:
        if not Path(pred_dir).is_dir():
            raise UserError(f"--pred {pred_dir}: with --colour-by label, a folder of lidarseg result files "
                            f"(<token>_lidarseg.bin) such as tools/test.py's <work-dir>/eval")
        name = f"{info['lidar_token']}_lidarseg.bin"
        found = sorted(Path(pred_dir).rglob(name))
        if not found:
            raise UserError(f"--pred {pred_dir}: no {name} below it (the sample's key frame)")
        labels = np.fromfile(found[0], dtype=np.uint8).astype(np.int64)
        if len(labels) != len(points) or labels.max(initial=0) > 16:
            raise UserError(f"{found[0]}: {len(labels)} classes (0-16 expected) for {len(points)} points")
        return Frame(info["token"], points, point_labels=labels, title="prediction")
    if not info.get("lidarseg_path"):
        raise UserError(f"sample {info['token']} has no lidarseg labels to colour by (--colour-by label)")
    labels = load_point_labels(str(Path(dataset.data_root) / info["lidarseg_path"]), len(points))
    return Frame(info["token"], points, point_labels=labels, title="ground truth")


def sweep_points(sample, cfg) -> np.ndarray:
    """The sample's key frame and the earlier sweeps of its config's test pipeline (LoadSweeps' sweeps_num, 9
    without one), moved into the key frame, with their time lags (s): what --colour-by time colours → (N, 5)."""
    from perception3d.datasets.transforms import LoadPoints, LoadSweeps

    steps = cfg.get("test_dataloader", {}).get("dataset", {}).get("pipeline", []) or cfg.get("test_pipeline", [])
    sweeps = next((t.get("sweeps_num", 10) for t in steps if t.get("type") == "LoadSweeps"), 9)
    return LoadSweeps(sweeps, ego_radius=0.0)(LoadPoints(ego_radius=0.0)(sample)).points


def load_predictions(path: str, score_thr: float) -> dict:
    """--pred: a tools/test.py --out pickle (LiDAR frame) or a detection submission JSON (tools/test.py's
    eval/results_nusc.json, global frame) → its predictions of score at least ``score_thr`` by sample token: a
    dict of boxes, labels from the pickle, a list of devkit records from the JSON."""
    from perception3d.engine import UserError
    from perception3d.evaluation import load_detections

    if not Path(path).is_file():
        raise UserError(f"--pred {path}: file not found")
    if path.endswith(".json"):
        return load_submission(path, "--pred", "detection_score", score_thr)
    try:
        frames = load_detections(path)["frames"]
    except Exception as e:  # noqa: BLE001  (whatever the unpickling raised, named with the file)
        raise UserError(f"--pred {path}: not a tools/test.py --out pickle or submission JSON ({e})") from e
    predictions = {}
    for frame in frames:
        shown = np.asarray(frame["scores"]) >= score_thr
        predictions[frame["token"]] = {"boxes": np.asarray(frame["boxes"], dtype=np.float64)[shown],
                                       "labels": np.asarray(frame["labels"], dtype=np.int64)[shown]}
    return predictions


def load_submission(path: str, flag: str, score_key: str, score_thr: float) -> dict:
    """A nuScenes submission JSON (detection or tracking) → its records of ``score_key`` at least ``score_thr``,
    by sample token."""
    import json

    from perception3d.engine import UserError

    try:
        results = json.loads(Path(path).read_text())["results"]
        return {token: [r for r in records if r[score_key] >= score_thr] for token, records in results.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        kind = "tracking" if score_key == "tracking_score" else "detection"
        raise UserError(f"{flag} {path}: not a nuScenes {kind} submission ({type(e).__name__}: {e})") from e


def predicted_boxes(prediction, info: dict):
    """One sample's --pred entry → (boxes (K, 9) in its LiDAR frame, class indices (K,)); a submission's
    classes outside the ten left out."""
    from perception3d.datasets.classes import CLASSES

    if isinstance(prediction, dict):
        return prediction["boxes"], prediction["labels"]
    records = [r for r in prediction if r["detection_name"] in CLASSES]
    return submission_boxes(records, info)[0], np.array([CLASSES.index(r["detection_name"]) for r in records],
                                                        dtype=np.int64)


def submission_boxes(records: list, info: dict):
    """A sample's submission records (global frame) moved into its LiDAR frame → (boxes (K, 9), the global →
    LiDAR (4, 4) pose)."""
    from nuscenes.utils.data_classes import Box
    from pyquaternion import Quaternion

    from perception3d.structures import boxes_from_devkit, transform_boxes

    devkit = [Box(r["translation"], r["size"], Quaternion(r["rotation"]), velocity=(*r["velocity"], 0.0))
              for r in records]
    to_lidar = np.linalg.inv(np.asarray(info["ego2global"]) @ np.asarray(info["lidar2ego"]))
    boxes = boxes_from_devkit(devkit) if devkit else np.zeros((0, 9))
    return transform_boxes(to_lidar, boxes), to_lidar


def file_frame(args) -> Frame:
    """The Frame of a point file: the boxes of --boxes in their class colours, or, with --model, the model's
    detections in class colours and the --boxes white (as ground truth)."""
    import json

    from perception3d.datasets.classes import CLASSES
    from perception3d.datasets.point_io import load_points
    from perception3d.engine import UserError
    from perception3d.visualization import GT_COLOUR, class_box_colours

    points = load_points(args.input, args.load_dims)
    if args.colour_by == "label":
        if not args.model:
            raise UserError("--colour-by label on a point file needs --model CONFIG CHECKPOINT of a segmentation "
                            "config (its predicted classes colour the points)")
        from perception3d.apis import inference_segmentor, init_model
        from perception3d.engine import load_config

        if load_config(args.model[0]).model.get("type") != "PointSegmentor":
            raise UserError(f"--model {args.model[0]}: --colour-by label needs a segmentation model "
                            f"(PointSegmentor), not {load_config(args.model[0]).model.get('type')}")
        model = init_model(*args.model, device=args.device)
        return Frame(Path(args.input).name, points, point_labels=inference_segmentor(model, points),
                     title="prediction")
    boxes, labels = np.zeros((0, 9)), np.zeros(0, dtype=np.int64)
    if args.boxes:
        try:
            record = json.loads(Path(args.boxes).read_text())
            boxes = np.asarray(record["boxes"], dtype=np.float64).reshape(-1, 9)
            names = list(record.get("names", ["car"] * len(boxes)))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"--boxes {args.boxes}: not a JSON with boxes (K, 9) and names ({e})") from e
        known = np.array([n in CLASSES for n in names], dtype=bool)
        boxes = boxes[known]
        labels = np.array([CLASSES.index(n) for n in np.asarray(names)[known]], dtype=np.int64)
    if not args.model:
        return Frame(Path(args.input).name, points, boxes, class_box_colours(labels), labels)
    from perception3d.apis import inference_detector, init_model

    detections = inference_detector(init_model(*args.model, device=args.device), points)
    shown = detections.scores.cpu().numpy() >= args.score_thr
    found = detections.boxes.cpu().numpy().astype(np.float64)[shown]
    classes = detections.labels.cpu().numpy()[shown]
    print(f"{int(shown.sum())} of {len(shown)} detections scored {args.score_thr} or more")
    return Frame(Path(args.input).name, points, np.concatenate([boxes, found]),
                 np.concatenate([np.tile(GT_COLOUR, (len(boxes), 1)), class_box_colours(classes)]),
                 np.concatenate([np.full(len(boxes), GT_LABEL), classes]))


def view(frame: Frame, args):
    """(half-width extent m, center (x, y, z) m) of the picture: --extent around the sensor when given, else
    fitted to a point file's cloud (the BEV picture keeps the sensor in its middle), 54 m for a dataset sample."""
    from perception3d.visualization.open3d_scene import fit_view

    if args.extent is not None:
        return args.extent, (0.0, 0.0, 0.0)
    if args.input.endswith(".py"):
        return 54.0, (0.0, 0.0, 0.0)
    return fit_view(frame.points, around_sensor=args.mode == "bev")


def point_colouring(frame: Frame, args):
    """What colours the points: the --colour-by mode, or with "label" the colours of the frame's classes."""
    from perception3d.visualization import label_colours

    return label_colours(frame.point_labels) if args.colour_by == "label" else args.colour_by


def render(frame: Frame, args) -> np.ndarray:
    """A Frame → RGB uint8 picture with its legend: the Open3D scene, or (--mode bev) the matplotlib bird's-eye
    view, a square --height pixels a side."""
    from perception3d.datasets.classes import CLASSES
    from perception3d.visualization import add_class_legend, add_legend, camera_preset, render_bev, render_image

    extent, center = view(frame, args)
    colour_by = point_colouring(frame, args)
    if args.mode == "bev":
        image = render_bev(frame.points, frame.boxes, frame.colours, extent, args.height, colour_by,
                           frame.trails, title=frame.name)
    else:
        image = render_image(frame.points, frame.boxes, frame.colours, camera_preset(args.camera, extent, center),
                             args.width, args.height, colour_by=colour_by, trails=frame.trails)
    if frame.point_labels is not None:
        return add_class_legend(image, frame.point_labels, frame.title)
    return add_legend(image, frame.labels, CLASSES, ground_truth=bool((frame.labels == GT_LABEL).any()))


def main(argv=None) -> int:
    args = parse_args(argv)
    from perception3d.engine import UserError
    from perception3d.visualization import camera_preset, save_png, show_window
    from perception3d.visualization.open3d_scene import has_display
    from perception3d.visualization.video import VIDEO_TYPES, write_video

    try:
        if args.sequence and not (args.out and Path(args.out).suffix.lower() in VIDEO_TYPES):
            raise UserError(f"--sequence writes a video: give --out SCENE.mp4 or .gif, got {args.out}")
        if args.out and not args.sequence and Path(args.out).suffix.lower() != ".png":
            raise UserError(f"--out {args.out}: a picture is written as .png (videos need --sequence)")
        if args.input.endswith(".py"):
            if args.model:
                raise UserError("--model detects objects in a point file; a config's sample takes --pred (from "
                                "tools/test.py)")
            frames = dataset_frames(args)
        else:
            if args.index is not None or args.token is not None or args.sequence or args.pred or args.tracks:
                raise UserError("--index, --token, --sequence, --pred and --tracks need a config as INPUT")
            frames = [file_frame(args)]
    except (UserError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.sequence:
        from mmengine.utils import ProgressBar

        progress = ProgressBar(len(frames))

        def pictures():
            for frame in frames:
                yield render(frame, args)
                progress.update()

        count = write_video(args.out, pictures(), args.fps)
        print(f"\n{count} frames written to {args.out}")
        return 0
    frame = frames[0]
    if args.out is None and has_display() and args.mode == "3d":
        print(f"showing {frame.name} ({len(frame.points)} points, {len(frame.boxes)} boxes); Q or Esc closes the "
              "window", flush=True)
        try:
            show_window(frame.points, frame.boxes, frame.colours, camera_preset(args.camera, *view(frame, args)),
                        args.width, args.height, point_colouring(frame, args), title=frame.name,
                        trails=frame.trails)
        except RuntimeError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    out = args.out or "visualize.png"
    save_png(out, render(frame, args))
    print(f"picture written to {out} ({len(frame.points)} points, {len(frame.boxes)} boxes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
