"""NuScenesDataset: key frames of an info file through a pipeline of transforms."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
from mmengine.dataset import BaseDataset

from ..registry import DATASETS, TRANSFORMS
from ..structures import LidarSample
from .classes import CLASSES
from .lidarseg import SEG_CLASSES
from .nuscenes_infos import load_infos
from .samplers import SampleKey
from .transforms.random_state import seeded_sample


@DATASETS.register_module()
class NuScenesDataset(BaseDataset):
    """nuScenes (or the synthetic world) as an mmengine dataset.

    Each item starts as a :class:`LidarSample` holding the info record, the boxes of ``classes`` with at least
    ``min_gt_points`` LiDAR points (all boxes in test mode) and their labels, and goes through ``pipeline``.
    Infos are serialized once (mmengine's ``serialize_data``), so dataloader workers share them, not copy them.
    ``pipeline`` holds transforms or their config dicts (built from perception3d's TRANSFORMS registry).
    """

    METAINFO = {"classes": CLASSES}

    def __init__(self, data_root: str, ann_file: str, pipeline: Sequence = (), classes: Sequence[str] = CLASSES,
                 min_gt_points: int = 1, test_mode: bool = False, **kwargs):
        self.min_gt_points = min_gt_points
        pipeline = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(ann_file=ann_file, data_root=data_root, pipeline=pipeline, test_mode=test_mode,
                         metainfo={"classes": tuple(classes)}, **kwargs)

    def load_data_list(self) -> List[dict]:
        infos = load_infos(self.ann_file)
        return infos["data_list"]

    def make_sample(self, info: dict) -> LidarSample:
        """The LidarSample of an info record: boxes of known classes, filtered by points unless in test mode."""
        classes = self.metainfo["classes"]
        names = info.get("gt_names", np.zeros(0, dtype="<U20"))
        labels = np.array([classes.index(n) if n in classes else -1 for n in names], dtype=np.int64)
        keep = labels >= 0
        if not self.test_mode and len(names):
            keep &= info["num_lidar_pts"] >= self.min_gt_points
        boxes = info["gt_boxes"][keep] if len(names) else np.zeros((0, 9), dtype=np.float32)
        return LidarSample(info=info, data_root=self.data_root, gt_boxes=boxes, gt_labels=labels[keep])

    def prepare_data(self, idx: int):
        return self.pipeline(self.make_sample(self.get_data_info(idx)))

    def __getitem__(self, idx):
        """``idx``: an int, or a :class:`SampleKey` whose entropy seeds the random transforms of this sample. In
        test mode an int seeds them by itself (a test pipeline's PointShuffle, as OpenPCDet shuffles at test
        time), so a sample is loaded the same way by any worker, in any order, every time."""
        if isinstance(idx, SampleKey):
            with seeded_sample(idx.entropy):
                return super().__getitem__(idx.index)
        if self.test_mode:
            with seeded_sample((int(idx),)):
                return super().__getitem__(idx)
        return super().__getitem__(idx)

    def class_labels(self, idx: int) -> np.ndarray:
        """Labels of the boxes of item ``idx`` (after the points filter), without loading points."""
        return self.make_sample(self.get_data_info(idx)).gt_labels


@DATASETS.register_module()
class NuScenesSegDataset(NuScenesDataset):
    """nuScenes-lidarseg (or the synthetic world's labels): key frames whose points carry classes 1–16 of the
    devkit's mapping (0 ignored), for LiDAR semantic segmentation. Outside test mode every info must name its
    lidarseg file; the pipeline reads it (``LoadPoints(with_point_index=True)``, ``LoadPointLabels``)."""

    METAINFO = {"classes": SEG_CLASSES}

    def __init__(self, data_root: str, ann_file: str, pipeline: Sequence = (), classes: Sequence[str] = SEG_CLASSES,
                 test_mode: bool = False, **kwargs):
        if tuple(classes) != SEG_CLASSES:
            raise ValueError(f"classes must be the devkit's {len(SEG_CLASSES)} lidarseg classes in its order "
                             f"{list(SEG_CLASSES)}, got {list(classes)}")
        super().__init__(data_root, ann_file, pipeline, classes, test_mode=test_mode, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        if not self.test_mode:
            unlabelled = sum(1 for info in data_list if not info.get("lidarseg_path"))
            if unlabelled:
                raise ValueError(f"{unlabelled} of the {len(data_list)} key frames of {self.ann_file} have no "
                                 f"lidarseg labels: the data root needs lidarseg.json and its label files "
                                 f"(nuScenes-lidarseg), then: python tools/create_data.py nuscenes --root "
                                 f"{self.data_root} --version <version>")
        return data_list

    def make_sample(self, info: dict) -> LidarSample:
        return LidarSample(info=info, data_root=self.data_root)


@DATASETS.register_module()
class CBGSDataset:
    """Class-balanced grouping and sampling (Zhu et al. 2019): repeats frames so that each class is drawn about
    equally often. Indices are drawn once, with ``seed``, when the wrapper is built."""

    def __init__(self, dataset, seed: int = 0):
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.metainfo = self.dataset.metainfo
        n_classes = len(self.metainfo["classes"])
        per_class: List[List[int]] = [[] for _ in range(n_classes)]
        for idx in range(len(self.dataset)):
            for label in np.unique(self.dataset.class_labels(idx)):
                per_class[label].append(idx)
        total = sum(len(p) for p in per_class)
        rng = np.random.default_rng(seed)
        indices: List[int] = []
        if total:
            present = [p for p in per_class if p]
            for frames in present:
                ratio = (1.0 / len(present)) / (len(frames) / total)
                indices += rng.choice(frames, int(len(frames) * ratio)).tolist()
        self.indices = np.array(indices if indices else range(len(self.dataset)), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, idx):
        if isinstance(idx, SampleKey):
            return self.dataset[SampleKey(int(self.indices[idx.index]), idx.entropy)]
        return self.dataset[int(self.indices[idx])]
