"""Speed measurements, each reported beside a reference measured in the same run.

    python tools/benchmark.py data [--data-root data/synthetic] [--frames 60]

data: key frames per second through LoadPoints + LoadSweeps(10) + global augmentation on one worker (reference:
the devkit's LidarPointCloud.from_file_multisweep on the same frames), and info creation samples per second on
one worker (reference: the devkit's get_sample_data per sample, the per-sample call our one pass avoids).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _world(data_root: str) -> str:
    """``data_root`` if it holds a v1.0-mini world with infos, else a fresh 2-scene world in a temporary folder."""
    if (Path(data_root) / "nuscenes_infos_train.pkl").is_file():
        return data_root
    from perception3d.datasets.create_infos import create_infos
    from perception3d.datasets.synthetic import create_synthetic_world

    root = tempfile.mkdtemp(prefix="p3d-bench-")
    print(f"no infos under {data_root}; writing a 2-scene synthetic world to {root}")
    create_synthetic_world(root, "v1.0-mini", n_scenes=2)
    create_infos(root, "v1.0-mini")
    return root


def bench_data(data_root: str, n_frames: int) -> None:
    import numpy as np
    from nuscenes import NuScenes
    from nuscenes.utils.data_classes import LidarPointCloud

    from perception3d.datasets import NuScenesDataset
    from perception3d.datasets.nuscenes_infos import collect_infos
    from perception3d.datasets.transforms import (GlobalRotScaleTrans, LoadPoints, LoadSweeps, PointShuffle,
                                                  PointsRangeFilter, RandomFlip3D)

    root = _world(data_root)
    pipeline = [LoadPoints(), LoadSweeps(10), GlobalRotScaleTrans(scale_range=(0.9, 1.1),
                                                                  translation_std=(0.5, 0.5, 0.5), seed=0),
                RandomFlip3D(seed=0), PointsRangeFilter([-54, -54, -5, 54, 54, 3]), PointShuffle(seed=0)]
    ds = NuScenesDataset(root, "nuscenes_infos_train.pkl", pipeline=pipeline)
    idx = np.linspace(0, len(ds) - 1, min(n_frames, len(ds))).astype(int)
    ds[int(idx[0])]  # warm up (numba, page cache)
    started = time.perf_counter()
    points = sum(len(ds[int(i)].points) for i in idx)
    ours = len(idx) / (time.perf_counter() - started)

    nusc = NuScenes("v1.0-mini", dataroot=root, verbose=False)
    samples = [nusc.get("sample", ds.get_data_info(int(i))["token"]) for i in idx]
    started = time.perf_counter()
    for sample in samples:
        LidarPointCloud.from_file_multisweep(nusc, sample, "LIDAR_TOP", "LIDAR_TOP", nsweeps=11)
    ref = len(idx) / (time.perf_counter() - started)
    print(f"data loading, one worker, {len(idx)} key frames, {points / len(idx):,.0f} points each after the range "
          f"filter (key frame + 10 sweeps):")
    print(f"  LoadPoints+LoadSweeps(10)+augmentation: {ours:6.1f} key frames/s")
    print(f"  devkit from_file_multisweep (load only): {ref:6.1f} key frames/s   ratio {ours / ref:.2f}x")

    started = time.perf_counter()
    grouped = collect_infos(nusc, max_sweeps=10, workers=1, progress=False)
    n = sum(len(v) for v in grouped.values())
    ours = n / (time.perf_counter() - started)
    started = time.perf_counter()
    for sample in nusc.sample:
        nusc.get_sample_data(sample["data"]["LIDAR_TOP"])
    ref = len(nusc.sample) / (time.perf_counter() - started)
    print(f"info creation, one worker, {n} samples ({len(nusc.sample_annotation) / len(nusc.sample):.0f} "
          f"annotations each):")
    print(f"  collect_infos (10 sweeps, boxes, velocities): {ours:7.1f} samples/s")
    print(f"  devkit get_sample_data alone, per sample:    {ref:7.1f} samples/s   ratio {ours / ref:.2f}x")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    data = sub.add_parser("data", help="data loading and info creation speed")
    data.add_argument("--data-root", default="data/synthetic")
    data.add_argument("--frames", type=int, default=60)
    args = parser.parse_args(argv)
    if args.what == "data":
        bench_data(args.data_root, args.frames)
    return 0


if __name__ == "__main__":
    sys.exit(main())
