"""Tracking by detection in the global frame, with CenterPoint's association (Yin et al., CVPR 2021): each
detection is matched to the nearest live track of its class within the class's gate, greedily by falling score;
unmatched detections start tracks; unmatched tracks coast on their velocity for ``max_age`` frames, unseen.
Track motion is a constant-velocity Kalman filter (CenterPoint's own rule, the last detection moved by its own
velocity, is an option). VoxelNeXt's voxel association (Chen et al., CVPR 2023) optionally adds the distance
between the detection's query voxel and the track's last query voxel moved forward by the track's velocity."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from .matching import gated_distances, greedy_match, hungarian_match
from .motion import ConstantVelocityFilter

# The devkit's tracking classes (nuscenes.eval.tracking, config tracking_nips_2019).
TRACKING_CLASSES = ("bicycle", "bus", "car", "motorcycle", "pedestrian", "trailer", "truck")
# CenterPoint's gates (m) on the distance between a detection moved back by its velocity and a track.
CENTERPOINT_GATES = {"car": 4.0, "truck": 4.0, "bus": 5.5, "trailer": 3.0, "pedestrian": 1.0, "motorcycle": 13.0,
                     "bicycle": 3.0}


@dataclass
class TrackingFrame:
    """Detections of one frame in the global frame: ``boxes`` float (N, 9) (x, y, z, dx, dy, dz, yaw, vx, vy; m,
    rad, m/s), ``scores`` (N,), ``names`` N class names, ``voxel_xy`` (N, 2) global x, y of the voxel each box was
    decoded from (m; None without), ``timestamp`` µs, ``scene_token`` of the scene the frame belongs to."""

    token: str
    scene_token: str
    timestamp: int
    boxes: np.ndarray
    scores: np.ndarray
    names: Sequence[str]
    voxel_xy: Optional[np.ndarray] = None


@dataclass
class TrackedFrame:
    """The tracks seen in a frame: ``boxes`` (T, 9) global, ``scores`` (T,) (the detection's score), ``names``,
    ``ids`` int (T,) unique within the scene."""

    token: str
    boxes: np.ndarray
    scores: np.ndarray
    names: List[str]
    ids: np.ndarray


# Columns of the tracker's float table (global frame): centre (m), velocity (m/s), filter covariance, last query
# voxel (m); and of its integer table.
XY, VELOCITY, COV, VOXEL = slice(0, 2), slice(2, 4), slice(4, 7), slice(7, 9)
ID, CLASS, UNSEEN = 0, 1, 2


class _ClassIndex(dict):
    """Class name → index; -1 for a class that is not tracked."""

    def __missing__(self, name):
        return -1


@dataclass
class CenterPointTracker:
    """Nearest-centre tracker; call :meth:`update` with the frames of each scene in time order (it resets itself
    when the scene changes).

    Args:
        gates: per tracking class, the largest matching distance (m); classes missing are not tracked.
        max_age: frames a track survives unseen, coasting on its velocity (not output meanwhile).
        birth_score: an unmatched detection starts a track when its score is at least this.
        matcher: "greedy" (by falling detection score, CenterPoint's) or "hungarian" (the most pairs, then the
            least total distance).
        motion: how tracks move between frames. A :class:`ConstantVelocityFilter` (or the dict of its
            arguments): each track's centre and velocity are filtered over its detections and each detection is
            matched against where its track is predicted now. None: CenterPoint's own rule, where a track is its
            last detection and each detection is moved back by its own velocity to the previous frame's time.
            The defaults are the best by the devkit on noisy ground truth and on the tiny model's detections
            (README, Tracking).
        voxel_association: also match on the query voxels (needs ``voxel_xy`` in every frame): the track's last
            query voxel moved forward by its velocity against the detection's; the cost is the mean of the
            centre and voxel distances, both within the gate.
    """

    gates: Dict[str, float] = field(default_factory=lambda: dict(CENTERPOINT_GATES))
    max_age: int = 6
    birth_score: float = 0.0
    matcher: str = "greedy"
    motion: Optional[ConstantVelocityFilter] = field(default_factory=ConstantVelocityFilter)
    voxel_association: bool = False

    def __post_init__(self):
        if self.matcher not in ("greedy", "hungarian"):
            raise ValueError(f"matcher must be 'greedy' or 'hungarian', got {self.matcher!r}")
        if self.max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {self.max_age}")
        if isinstance(self.motion, dict):
            self.motion = ConstantVelocityFilter(**self.motion)
        self.reset()

    def reset(self) -> None:
        """Forgets every track (a new scene starts)."""
        self._classes = list(self.gates)
        self._class_index = _ClassIndex({name: i for i, name in enumerate(self._classes)})
        self._gate = np.array([self.gates[name] for name in self._classes], dtype=np.float64)
        # The live tracks, a row each, in two tables: floats (T, 9) by the columns XY, VELOCITY, COV, VOXEL and
        # integers (T, 3) by ID, CLASS, UNSEEN (frames since the last match).
        self._tracks = np.zeros((0, 9))
        self._track_ints = np.zeros((0, 3), np.int64)
        self._next_id = 0
        self._scene: Optional[str] = None
        self._time: Optional[int] = None

    def update(self, frame: TrackingFrame) -> TrackedFrame:
        """Associates ``frame``'s detections with the live tracks → the tracks seen in this frame (the matched
        ones, then the new ones), each with its detection's box and score."""
        if frame.scene_token != self._scene:
            self.reset()
            self._scene = frame.scene_token
        if self._time is not None and frame.timestamp <= self._time:
            raise ValueError(f"frame {frame.token}: timestamp {frame.timestamp} is not after the previous frame's "
                             f"{self._time}; give the frames of a scene in time order")
        dt = 0.0 if self._time is None else (frame.timestamp - self._time) * 1e-6
        self._time = frame.timestamp
        if self.voxel_association and frame.voxel_xy is None:
            raise ValueError(f"frame {frame.token}: voxel association needs voxel_xy")

        det_class = np.fromiter(map(self._class_index.__getitem__, frame.names), np.int64, len(frame.names))
        boxes = np.asarray(frame.boxes, dtype=np.float64).reshape(-1, 9)
        scores = np.asarray(frame.scores, dtype=np.float64)
        voxel_xy = (np.zeros((len(boxes), 2)) if frame.voxel_xy is None
                    else np.asarray(frame.voxel_xy, dtype=np.float64).reshape(-1, 2))
        keep = det_class >= 0
        if not keep.all():
            det_class, boxes, scores, voxel_xy = det_class[keep], boxes[keep], scores[keep], voxel_xy[keep]
        # the detections as track rows: centre, velocity, a new track's covariance, query voxel
        dets = np.empty((len(boxes), 9))
        dets[:, XY], dets[:, VELOCITY], dets[:, VOXEL] = boxes[:, :2], boxes[:, 7:9], voxel_xy
        dets[:, COV] = 0.0 if self.motion is None else self.motion.start_cov
        tracks, track_class = self._tracks, self._track_ints[:, CLASS]

        if self.motion is None:  # each detection moved back to the previous frame's time, against the tracks there
            cost = gated_distances(dets[:, XY] - dets[:, VELOCITY] * dt, det_class, tracks[:, XY], track_class,
                                   self._gate)
            tracks[:, XY] += tracks[:, VELOCITY] * dt
        else:
            self.motion.predict(tracks[:, XY], tracks[:, VELOCITY], tracks[:, COV], dt)
            # gates widen by how much less sure a track's predicted centre is than a detection (coasting tracks)
            cost = gated_distances(dets[:, XY], det_class, tracks[:, XY], track_class, self._gate,
                                   self.motion.gate_margin(tracks[:, COV]))
        if self.voxel_association:  # the tracks' last query voxels moved forward to now
            tracks[:, VOXEL] += tracks[:, VELOCITY] * dt
            voxel_cost = gated_distances(dets[:, VOXEL], det_class, tracks[:, VOXEL], track_class, self._gate)
            cost = 0.5 * (cost + voxel_cost)  # inf unless both are within the gate
        order = np.argsort(-scores, kind="stable")
        det, trk = greedy_match(cost, order) if self.matcher == "greedy" else hungarian_match(cost)

        # matched tracks take their detection; the others have coasted to this frame's time
        matched = dets[det]
        if self.motion is None:
            tracks[trk, :VOXEL.start] = matched[:, :VOXEL.start]
        else:
            self.motion.correct(tracks[:, XY], tracks[:, VELOCITY], tracks[:, COV], trk, matched[:, XY],
                                matched[:, VELOCITY])
        tracks[trk, VOXEL] = matched[:, VOXEL]
        ints = self._track_ints
        ints[:, UNSEEN] += 1
        ints[trk, UNSEEN] = 0
        matched_ids = ints[trk, ID]
        alive = ints[:, UNSEEN] <= self.max_age

        unmatched = np.ones(len(boxes), dtype=bool)
        unmatched[det] = False
        born = order[unmatched[order] & (scores[order] >= self.birth_score)]
        born_ints = np.zeros((len(born), 3), np.int64)
        born_ints[:, ID] = born_ids = self._next_id + np.arange(len(born))
        born_ints[:, CLASS] = det_class[born]
        self._next_id += len(born)
        self._tracks = np.concatenate([tracks[alive], dets[born]])
        self._track_ints = np.concatenate([ints[alive], born_ints])

        seen = np.concatenate([det, born])
        return TrackedFrame(frame.token, boxes[seen], scores[seen],
                            list(map(self._classes.__getitem__, det_class[seen].tolist())),
                            np.concatenate([matched_ids, born_ids]))
