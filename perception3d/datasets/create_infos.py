"""Info files and GT database of a nuScenes-format root (what ``tools/create_data.py nuscenes`` runs)."""
from __future__ import annotations

import time
from typing import Optional

from nuscenes import NuScenes

from .gt_database import create_gt_database
from .nuscenes_infos import collect_infos, write_infos


def create_infos(root: str, version: str, max_sweeps: int = 10, workers: Optional[int] = None,
                 progress: bool = True) -> dict:
    """Writes ``nuscenes_infos_{split}.pkl`` and, with a train split, the GT database; returns a summary."""
    started = time.time()
    nusc = NuScenes(version=version, dataroot=str(root), verbose=False)
    grouped = collect_infos(nusc, max_sweeps=max_sweeps, workers=workers, progress=progress)
    paths = write_infos(root, version, grouped, max_sweeps)
    info_seconds = time.time() - started
    for split, path in paths.items():
        print(f"  {path}: {len(grouped[split])} key frames")
    summary = {"infos": {s: len(v) for s, v in grouped.items()}, "info_seconds": info_seconds}
    if "train" in grouped:
        counts = create_gt_database(root, grouped["train"], max_sweeps=max_sweeps, workers=workers, progress=progress)
        print("  GT database: " + ", ".join(f"{n} {c}" for n, c in counts.items()))
        summary["gt_database"] = counts
    return summary
