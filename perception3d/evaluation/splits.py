"""Which nuScenes version and devkit split a data root holds, and the samples of a split."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Set, Tuple


def resolve_split(data_root: str, version: Optional[str] = None, eval_set: Optional[str] = None) -> Tuple[str, str]:
    """(version, eval_set): version None → "v1.0-trainval" if ``data_root`` has its tables, else "v1.0-mini";
    eval_set None → "val" for v1.0-trainval, "mini_val" for v1.0-mini."""
    if version is None:
        version = "v1.0-trainval" if (Path(data_root) / "v1.0-trainval").is_dir() else "v1.0-mini"
    return version, eval_set or {"v1.0-trainval": "val", "v1.0-mini": "mini_val"}.get(version, "val")


def split_sample_tokens(nusc, eval_set: str) -> Set[str]:
    """Sample tokens of the scenes of the devkit split ``eval_set`` in the loaded tables ``nusc``."""
    from nuscenes.utils.splits import create_splits_scenes

    scenes = set(create_splits_scenes()[eval_set])
    return {s["token"] for s in nusc.sample if nusc.get("scene", s["scene_token"])["name"] in scenes}
