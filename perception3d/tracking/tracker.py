"""Tracking by detection in the global frame, as CenterPoint does it (Yin et al., CVPR 2021): each detection is
moved back by its velocity to the previous frame's time and matched to the nearest live track of its class within
the class's gate; unmatched detections start tracks; unmatched tracks coast on their velocity for ``max_age``
frames, unseen. VoxelNeXt's voxel association (Chen et al., CVPR 2023) optionally adds the distance between the
detection's query voxel and the track's last query voxel moved forward by the track's velocity."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from .matching import greedy_match, hungarian_match

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


@dataclass
class _Track:
    id: int
    name: str
    box: np.ndarray
    score: float
    voxel_xy: Optional[np.ndarray]
    unseen: int = 0  # frames since the last match


@dataclass
class CenterPointTracker:
    """Nearest-centre tracker; call :meth:`update` with the frames of each scene in time order (it resets itself
    when the scene changes).

    Args:
        gates: per tracking class, the largest matching distance (m); classes missing are not tracked.
        max_age: frames a track survives unseen, coasting on its velocity (CenterPoint's 3; exact ground truth
            needs about 20 to carry objects through long occlusions, model detections score better with 3: see
            the README).
        birth_score: an unmatched detection starts a track when its score is at least this.
        matcher: "greedy" (by falling detection score, CenterPoint's: the best on model detections) or
            "hungarian" (the most pairs, then the least total distance: the best on noisy ground truth).
        voxel_association: also match on the query voxels (needs ``voxel_xy`` in every frame); the cost is the
            mean of the centre and voxel distances, both within the gate.
    """

    gates: Dict[str, float] = field(default_factory=lambda: dict(CENTERPOINT_GATES))
    max_age: int = 3
    birth_score: float = 0.0
    matcher: str = "greedy"
    voxel_association: bool = False

    def __post_init__(self):
        if self.matcher not in ("greedy", "hungarian"):
            raise ValueError(f"matcher must be 'greedy' or 'hungarian', got {self.matcher!r}")
        if self.max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {self.max_age}")
        self.reset()

    def reset(self) -> None:
        """Forgets every track (a new scene starts)."""
        self._tracks: List[_Track] = []
        self._next_id = 0
        self._scene: Optional[str] = None
        self._time: Optional[int] = None

    def update(self, frame: TrackingFrame) -> TrackedFrame:
        """Associates ``frame``'s detections with the live tracks → the tracks seen in this frame."""
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

        keep = np.array([n in self.gates for n in frame.names], dtype=bool)
        boxes = np.asarray(frame.boxes, dtype=np.float64)[keep]
        scores = np.asarray(frame.scores, dtype=np.float64)[keep]
        names = [n for n, k in zip(frame.names, keep) if k]
        voxel_xy = None if frame.voxel_xy is None else np.asarray(frame.voxel_xy, dtype=np.float64)[keep]

        cost = self._cost(boxes, names, voxel_xy, dt)
        order = np.argsort(-scores, kind="stable")
        pairs = greedy_match(cost, order) if self.matcher == "greedy" else hungarian_match(cost)

        matched_dets, matched_tracks = {d for d, _ in pairs}, {t for _, t in pairs}
        for d, t in pairs:
            track = self._tracks[t]
            track.box, track.score, track.unseen = boxes[d], float(scores[d]), 0
            track.voxel_xy = None if voxel_xy is None else voxel_xy[d]
        for t, track in enumerate(self._tracks):  # unmatched tracks coast on their velocity to this frame's time
            if t not in matched_tracks:
                track.unseen += 1
                track.box = track.box.copy()
                track.box[:2] += track.box[7:9] * dt
                if track.voxel_xy is not None:
                    track.voxel_xy = track.voxel_xy + track.box[7:9] * dt
        self._tracks = [t for t in self._tracks if t.unseen <= self.max_age]
        for d in order:
            if d not in matched_dets and scores[d] >= self.birth_score:
                self._tracks.append(_Track(self._next_id, names[d], boxes[d], float(scores[d]),
                                           None if voxel_xy is None else voxel_xy[d]))
                self._next_id += 1
        seen = [t for t in self._tracks if t.unseen == 0]
        return TrackedFrame(frame.token, np.array([t.box for t in seen]).reshape(-1, 9),
                            np.array([t.score for t in seen]), [t.name for t in seen],
                            np.array([t.id for t in seen], dtype=np.int64))

    def _cost(self, boxes: np.ndarray, names: List[str], voxel_xy: Optional[np.ndarray], dt: float) -> np.ndarray:
        """(N detections, T tracks) distances (m); inf where the classes differ or beyond the class's gate."""
        if not len(boxes) or not self._tracks:
            return np.full((len(boxes), len(self._tracks)), np.inf)
        track_xy = np.array([t.box[:2] for t in self._tracks])
        back = boxes[:, :2] - boxes[:, 7:9] * dt  # where each detection was at the previous frame's time
        cost = np.linalg.norm(back[:, None] - track_xy[None], axis=2)
        gate = np.array([self.gates[n] for n in names])[:, None]
        valid = (np.array(names)[:, None] == np.array([t.name for t in self._tracks])[None]) & (cost <= gate)
        if self.voxel_association:
            track_voxel = np.array([t.voxel_xy + t.box[7:9] * dt for t in self._tracks])
            voxel_cost = np.linalg.norm(voxel_xy[:, None] - track_voxel[None], axis=2)
            valid &= voxel_cost <= gate
            cost = 0.5 * (cost + voxel_cost)
        return np.where(valid, cost, np.inf)
