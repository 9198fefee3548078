"""ObjectSample: pastes objects of the GT database into a frame, without collisions."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from ...ops import boxes_overlap_bev, points_in_boxes
from ...registry import TRANSFORMS
from ...structures import LidarSample
from ..classes import CLASSES
from ..gt_database import load_gt_database
from .random_state import RandomTransform


@TRANSFORMS.register_module()
class ObjectSample(RandomTransform):
    """Adds up to ``sample_groups[class]`` objects per class from the GT database of the data root.

    Candidates overlapping (in BEV) a box of the frame, an object pasted for an earlier class or another
    candidate of the same draw are dropped (OpenPCDet's ``DataBaseSampler``: ``iou1.max + iou2.max == 0``);
    the frame's points inside the accepted boxes are removed before the objects' points are added.
    With ``limit_whole_scene`` the count per class is a target that the frame's own boxes count toward.
    Objects with fewer than ``min_points`` points (per class, default 5) are never drawn. A pasted object keeps
    only its points no older (time lag, column 4) than the frame's oldest point, so a database built from 10
    sweeps serves a config that loads fewer.
    """

    def __init__(self, sample_groups: Dict[str, int], min_points: Optional[Dict[str, int]] = None,
                 limit_whole_scene: bool = False, classes=CLASSES, seed: Optional[int] = None):
        for name, given in (("sample_groups", sample_groups), ("min_points", min_points or {})):
            unknown = set(given) - set(classes)
            if unknown:
                raise ValueError(f"{name} names unknown classes {sorted(unknown)}; known: {list(classes)}")
        self.sample_groups = dict(sample_groups)
        self.min_points = dict(min_points or {})
        self.limit_whole_scene = limit_whole_scene
        self.classes = tuple(classes)
        super().__init__(seed)
        self._db = None  # (records per class, points), loaded on first use from the sample's data root

    def _database(self, data_root: str):
        if self._db is None:
            db, points = load_gt_database(data_root)
            pools = {}
            for name in self.sample_groups:
                recs = db["objects"].get(name, [])
                min_pts = self.min_points.get(name, 5)
                pools[name] = [r for r in recs if r["num_points"] >= min_pts]
            self._db = (pools, points)
        return self._db

    def __call__(self, sample: LidarSample) -> LidarSample:
        if sample.has_point_columns:
            raise ValueError("ObjectSample pastes database objects without per-point labels: leave it out of a "
                             "segmentation pipeline")
        pools, db_points = self._database(sample.data_root)
        boxes, labels = sample.gt_boxes, sample.gt_labels
        new_boxes, new_labels, new_points = [], [], []
        has_lag = sample.points.shape[1] > 4 and db_points.shape[1] > 4 and len(sample.points)
        oldest = float(sample.points[:, 4].max()) if has_lag else np.inf
        for name, count in self.sample_groups.items():
            label = self.classes.index(name)
            want = count - int((labels == label).sum()) if self.limit_whole_scene else count
            pool = pools[name]
            if want <= 0 or not pool:
                continue
            picks = self.rng.choice(len(pool), size=min(want, len(pool)), replace=False)
            cand = np.stack([pool[i]["box"] for i in picks]).astype(np.float32)
            placed = np.concatenate([boxes] + new_boxes) if new_boxes else boxes
            free = ~boxes_overlap_bev(cand, placed).any(axis=1) if len(placed) else np.ones(len(cand), bool)
            inner = boxes_overlap_bev(cand, cand)
            np.fill_diagonal(inner, False)
            free &= ~inner.any(axis=1)  # OpenPCDet: a candidate touching any other of its draw is dropped
            for i in np.flatnonzero(free):
                rec = pool[picks[i]]
                pts = np.array(db_points[rec["offset"]: rec["offset"] + rec["num_points"]])
                pts[:, :3] += cand[i, :3]
                new_points.append(pts[pts[:, 4] <= oldest] if has_lag else pts)
            new_boxes.append(cand[free])
            new_labels.append(np.full(int(free.sum()), label, dtype=np.int64))
        if not new_points:
            return sample
        added = np.concatenate(new_boxes)
        sample.points = sample.points[points_in_boxes(sample.points, added) < 0]
        sample.points = np.concatenate([sample.points] + new_points)
        sample.gt_boxes = np.concatenate([boxes, added])
        sample.gt_labels = np.concatenate([labels] + new_labels)
        return sample
