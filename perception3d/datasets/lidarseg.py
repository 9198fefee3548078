"""nuScenes-lidarseg conventions in one place: the 32 fine categories and their ``index``, the devkit's 16 classes,
and reading a label file.

A lidarseg file holds one ``uint8`` per point of its LIDAR_TOP key frame, in the point file's order: the fine
category's ``index`` (``category.json``). The devkit's ``LidarsegClassMapper`` maps the fine categories to the
challenge's 16 classes 1–16, 0 being ignored (noise, the ego vehicle, animals, ...). Both tables are read from the
devkit here, not written again.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Sequence

import numpy as np
from nuscenes.eval.lidarseg.utils import LidarsegClassMapper
from nuscenes.utils.color_map import get_colormap

# nuScenes-lidarseg's category.json lists the 32 categories with ``index`` 0–31 in the order of the devkit's colormap
# (nuscenes/utils/color_map.py: "noise" 0 ... "vehicle.ego" 31)
LIDARSEG_CATEGORIES: List[str] = list(get_colormap())
CATEGORY_INDEX: Dict[str, int] = {name: i for i, name in enumerate(LIDARSEG_CATEGORIES)}

# the devkit's mappings (nuscenes/eval/lidarseg/utils.py, LidarsegClassMapper.get_fine2coarse / get_coarse2idx);
# they read only ``ignore_class`` of the mapper, so they are called without loading a NuScenes
_MAPPER = SimpleNamespace(ignore_class=LidarsegClassMapper.get_ignore_class())
FINE_TO_COARSE_NAME: Dict[str, str] = LidarsegClassMapper.get_fine2coarse(_MAPPER)
_COARSE_INDEX: Dict[str, int] = LidarsegClassMapper.get_coarse2idx(_MAPPER)
IGNORE_INDEX = _MAPPER.ignore_class["index"]  # 0
# the 16 classes, class k + 1 at position k (label 0 is "ignore")
SEG_CLASSES: tuple = tuple(name for name, _ in sorted(_COARSE_INDEX.items(), key=lambda kv: kv[1])
                           if name != _MAPPER.ignore_class["name"])
SEG_COLOURS: Dict[str, tuple] = LidarsegClassMapper.get_coarse2color(_MAPPER)


def fine_to_coarse_table(categories: Sequence[dict]) -> np.ndarray:
    """uint8 (max index + 1,) lookup: fine category ``index`` → class 0–16, from a ``category.json`` table (the
    records' ``name`` and ``index``), as the devkit's ``LidarsegClassMapper.fine_idx_2_coarse_idx_mapping``."""
    table = np.zeros(max(c["index"] for c in categories) + 1, dtype=np.uint8)
    for c in categories:
        table[c["index"]] = _COARSE_INDEX[FINE_TO_COARSE_NAME[c["name"]]]
    return table


# fine index → class 0–16 for nuScenes-lidarseg's numbering (create_infos refuses a root numbered otherwise)
NUSCENES_FINE_TO_COARSE = fine_to_coarse_table([{"name": n, "index": i} for n, i in CATEGORY_INDEX.items()])


def load_point_labels(path: str, num_points: int, table: np.ndarray = NUSCENES_FINE_TO_COARSE) -> np.ndarray:
    """Classes 0–16, int64 (num_points,), of the lidarseg file ``path`` (fine indices) through ``table``.

    Refuses a missing file, one whose length is not the point file's ``num_points``, and an index the table does
    not know, naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"lidarseg file {path} does not exist")
    fine = np.fromfile(path, dtype=np.uint8)
    if len(fine) != num_points:
        raise ValueError(f"lidarseg file {path} holds {len(fine)} labels for a point file of {num_points} points")
    if len(fine) and int(fine.max()) >= len(table):
        raise ValueError(f"lidarseg file {path} holds category index {int(fine.max())}; the category table knows "
                         f"0-{len(table) - 1}")
    return table[fine].astype(np.int64)


def check_predicted_labels(labels: np.ndarray, num_points: int, what: str) -> np.ndarray:
    """uint8 (num_points,) predictions 1–16 for the devkit's files, or a ValueError naming ``what``: a wrong length
    or a class outside 1–16 (the devkit's ConfusionMatrix asserts on them)."""
    labels = np.asarray(labels)
    if labels.shape != (num_points,):
        raise ValueError(f"{what}: {labels.shape[0] if labels.ndim == 1 else labels.shape} predicted labels for a "
                         f"frame of {num_points} points")
    if len(labels) and (labels.min() < 1 or labels.max() > len(SEG_CLASSES)):
        raise ValueError(f"{what}: predicted labels must lie in 1-{len(SEG_CLASSES)}, got "
                         f"{int(labels.min())}-{int(labels.max())}")
    return labels.astype(np.uint8)
