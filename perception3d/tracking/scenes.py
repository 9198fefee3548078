"""From a detection run (``tools/test.py --out``) to tracks: frames moved to the global frame, grouped by scene
and put in time order, then tracked scene by scene."""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from ..evaluation.nuscenes_tracking import tracking_records
from ..evaluation.submission import lidar_to_global
from ..structures import transform_points
from .tracker import CenterPointTracker, TrackedFrame, TrackingFrame


def frames_from_detections(detections: Dict) -> List[TrackingFrame]:
    """A :class:`~perception3d.evaluation.DetectionDump` result ``{"classes", "frames"}`` → TrackingFrames in
    the global frame (boxes, and each box's query voxel at the box's height), ordered by scene, then time."""
    classes = detections["classes"]
    frames = []
    for f in detections["frames"]:
        missing = {"scene_token", "voxel_xy"} - set(f)
        if missing:
            raise ValueError(f"detection frame {f.get('token')} lacks {sorted(missing)}: written by an older "
                             f"tools/test.py --out; run it again")
        pose = np.asarray(f["ego2global"], dtype=np.float64) @ np.asarray(f["lidar2ego"], dtype=np.float64)
        boxes = np.asarray(f["boxes"], dtype=np.float64).reshape(-1, 9)
        voxel_xyz = np.column_stack([np.asarray(f["voxel_xy"], dtype=np.float64).reshape(-1, 2), boxes[:, 2]])
        frames.append(TrackingFrame(
            token=f["token"], scene_token=f["scene_token"], timestamp=int(f["timestamp"]),
            boxes=lidar_to_global(boxes, f["lidar2ego"], f["ego2global"]), scores=np.asarray(f["scores"]),
            names=[classes[int(label)] for label in f["labels"]],
            voxel_xy=transform_points(pose, voxel_xyz)[:, :2]))
    frames.sort(key=lambda fr: (fr.scene_token, fr.timestamp))
    return frames


def track_scenes(frames: List[TrackingFrame], tracker: CenterPointTracker) -> Dict[str, TrackedFrame]:
    """Runs ``tracker`` over ``frames`` (grouped by scene, in time order: see :func:`frames_from_detections`)
    → the tracks seen in each frame, by sample token. The tracker starts afresh at every scene."""
    tracker.reset()
    return {frame.token: tracker.update(frame) for frame in frames}


def tracking_results(detections: Dict, tracker: CenterPointTracker) -> Dict[str, List[Dict]]:
    """A DetectionDump result → the devkit's tracking records (global frame) of every tracked frame, by sample
    token; track ids are made unique over scenes."""
    frames = frames_from_detections(detections)
    tracked = track_scenes(frames, tracker)
    return {f.token: tracking_records(f.token, tracked[f.token].boxes, tracked[f.token].scores,
                                      tracked[f.token].names, tracked[f.token].ids, f.scene_token) for f in frames}
