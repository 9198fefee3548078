"""Speed measurements, each reported beside a reference measured in the same run.

    python tools/benchmark.py data [--data-root data/synthetic] [--frames 60]
    python tools/benchmark.py ops [--repeat 5]
    python tools/benchmark.py model [--config configs/voxelnext/voxelnext_voxel0075_nus.py] [--repeat 3]
                                    [--train-config configs/voxelnext/voxelnext_tiny_synthetic.py] [--data-root D]
    python tools/benchmark.py sparse [--config configs/voxelnext/voxelnext_voxel0075_nus.py] [--repeat 5]
    python tools/benchmark.py track [--boxes 200] [--frames 200]
    python tools/benchmark.py eval [--task det|track|both] [--scenes 150] [--frames 40] [--boxes 300]
    python tools/benchmark.py focal WORK_DIR [WORK_DIR ...] [--frames 10] [--repeat 3] [--out report.md]
    python tools/benchmark.py seg WORK_DIR [WORK_DIR ...] [--frames 20] [--out report.md]

data: key frames per second through LoadPoints + LoadSweeps(10) + global augmentation on one worker (reference:
the devkit's LidarPointCloud.from_file_multisweep on the same frames), and info creation samples per second on
one worker (reference: the devkit's get_sample_data per sample, the per-sample call our one pass avoids).

ops: the kernels on a nuScenes-size frame (the real nuScenes frame of tests/data, 10 jittered copies ≈ 300k
points; voxel 0.075 × 0.075 × 0.2 m, range ±54 m): voxelize_hard against spconv's PointToVoxel in the same run
(time, and peak memory from the kernel's high-water mark), points_in_boxes (300k points × 100 boxes), nms_bev
(1000 boxes), sparse_local_max (100k voxels). On CUDA too when a GPU is there.

model: one nuScenes-size frame (the same ≈ 300k points) through a detector config in eval mode, time per stage
(voxelize, backbone, head, decode in both modes), the peak memory of the whole inference and where the frame's
time goes (kernel maps, gather/scatter, matrix multiplies, BatchNorm, ReLU, other; cProfile), on the CPU once
with each sparse convolution engine (spconv's CPU path, ours) and their ratio; on CUDA also ms/frame in fp32
and under fp16 autocast. Then one training iteration (forward + backward, 2 frames of the synthetic world) of
--train-config on both engines from the same weights: time, peak memory, losses, split.

sparse: each sparse convolution layer type of the backbone on the voxel sets it meets on one nuScenes-size frame
(strides 1, 2, 8 and the bird's-eye view), forward and forward + backward, spconv's CPU path beside ours, kernel
maps included.

track: tracker frames per second on a scene of 200 moving boxes per frame: the default, CenterPoint's motion, Hungarian.

focal: detectors trained by tools/train.py (the first is the reference, e.g. tiny against tiny-focal at the same
seed and schedule) side by side: the devkit metrics of each run's last validation (mAP, NDS, AP per class), the
mean time per training iteration from its log, voxels per backbone layer on validation frames (mean per frame,
trained weights), and the time of one training step (forward + backward) on the same batches in this run, as a
ratio to the first; with focal blocks, also with their importance loss switched on.

seg: segmentors trained by tools/train.py side by side: the devkit's LidarSegEval numbers of each run's last
validation (mIoU, IoU per class), parameters, training iterations and the mean logged time per iteration, and
the time of one prediction per validation frame in this run.

eval: the nuScenes evaluation of a full-val-size case built in a temporary folder (tables of 150 val scenes × 40
key frames, about 30 annotated objects per frame; a detection submission of 300 boxes per sample, a tracking
submission with switches, fragments and false tracks): our fast evaluation beside the devkit's DetectionEval /
TrackingEval in the same run, on one core, from the submission file to the two metric files (the loading of the
devkit's tables is not timed), with every number of the two compared.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

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


VOXEL = [0.075, 0.075, 0.2]
RANGE = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]


def _frame(copies: int = 10):
    """About 300k nuScenes points: the real frame of tests/data and jittered copies, as 10 stacked sweeps."""
    import numpy as np

    root = Path(__file__).resolve().parents[1] / "tests" / "data" / "nuscenes_frame"
    raw = np.fromfile(next(root.glob("*.pcd.bin")), dtype=np.float32).reshape(-1, 5)
    rng = np.random.default_rng(0)
    parts = [raw + np.concatenate([rng.normal(0, 0.05, (len(raw), 3)), np.zeros((len(raw), 2))], 1).astype(
        np.float32) for _ in range(copies)]
    return np.concatenate(parts)


def _median_ms(fn, repeat: int, sync=lambda: None) -> float:
    import time

    import numpy as np

    fn()  # warm up (numba compilation, CUDA context)
    sync()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def _peak_mib(fn) -> float:
    """Growth of the resident set (MiB) at the peak of one ``fn()`` call, from the kernel's high-water mark
    (reset first through /proc/self/clear_refs; Linux only, NaN elsewhere)."""
    import gc

    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field))

    try:
        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = status("VmRSS:")
        result = fn()
        peak = status("VmHWM:")
    except OSError:
        return float("nan")
    del result
    return (peak - before) / 1024


def bench_ops(repeat: int) -> None:
    import warnings

    import numpy as np
    import torch

    warnings.filterwarnings("ignore", category=FutureWarning)
    from spconv.pytorch.utils import PointToVoxel

    from perception3d.ops import nms_bev, points_in_boxes, sparse_local_max, voxelize_hard

    points = torch.from_numpy(_frame())
    rng = np.random.default_rng(0)
    boxes = np.zeros((1000, 9), dtype=np.float32)
    boxes[:, :2] = rng.uniform(-50, 50, (1000, 2))
    boxes[:, 2] = rng.uniform(-2, 0, 1000)
    boxes[:, 3:6] = rng.uniform(0.5, 5, (1000, 3))
    boxes[:, 6] = rng.uniform(-np.pi, np.pi, 1000)
    scores = torch.from_numpy(rng.random(1000).astype(np.float32))
    boxes = torch.from_numpy(boxes)
    coords = torch.from_numpy(np.unique(np.concatenate([np.zeros((110000, 1), np.int64),
                                                        rng.integers(0, 1440, (110000, 2))], 1), axis=0)[:100000])
    heat = torch.from_numpy(rng.random((len(coords), 10)).astype(np.float32))

    # memory first, before the timing loops leave freed memory in the process for later calls to reuse
    voxelize_hard(points[:100], VOXEL, RANGE, 10, 100)  # numba compilation outside the measurement
    mem_ours = _peak_mib(lambda: voxelize_hard(points, VOXEL, RANGE, 10, 160000))
    mem_spconv = _peak_mib(lambda: PointToVoxel(VOXEL, RANGE, 5, 160000, 10)(points))
    print(f"kernels, {len(points):,} points (voxel {VOXEL} m, range ±54 m), {repeat} runs, median:")
    ours = _median_ms(lambda: voxelize_hard(points, VOXEL, RANGE, 10, 160000), repeat)
    generator = PointToVoxel(VOXEL, RANGE, 5, 160000, 10)
    call = _median_ms(lambda: generator(points), repeat)
    whole = _median_ms(lambda: PointToVoxel(VOXEL, RANGE, 5, 160000, 10)(points), repeat)
    print(f"  voxelize_hard (CPU):                 {ours:8.1f} ms   peak memory +{mem_ours:6.0f} MiB")
    print(f"  spconv PointToVoxel, built + called: {whole:8.1f} ms   peak memory +{mem_spconv:6.0f} MiB   "
          f"ratio ours/spconv {ours / whole:.2f}x time, {mem_ours / max(mem_spconv, 1e-9):.2f}x memory")
    print(f"  spconv PointToVoxel, call only:      {call:8.1f} ms   (its 332 MB grid built once beforehand)   "
          f"ratio {ours / call:.2f}x")
    print(f"  points_in_boxes {len(points):,} × 100:   {_median_ms(lambda: points_in_boxes(points, boxes[:100]), repeat):8.1f} ms")
    print(f"  nms_bev 1000 boxes:                  {_median_ms(lambda: nms_bev(boxes, scores, 0.2), repeat):8.1f} ms")
    print(f"  sparse_local_max {len(coords):,} voxels × 10: "
          f"{_median_ms(lambda: sparse_local_max(coords, heat, 3), repeat):8.1f} ms")
    if torch.cuda.is_available():
        sync = torch.cuda.synchronize
        p, b, s, c, h = points.cuda(), boxes.cuda(), scores.cuda(), coords.cuda(), heat.cuda()
        gen = PointToVoxel(VOXEL, RANGE, 5, 160000, 10, device=torch.device("cuda"))
        print(f"on {torch.cuda.get_device_name(0)}:")
        ours = _median_ms(lambda: voxelize_hard(p, VOXEL, RANGE, 10, 160000), repeat, sync)
        ref = _median_ms(lambda: gen(p), repeat, sync)
        print(f"  voxelize_hard: {ours:.2f} ms, spconv PointToVoxel: {ref:.2f} ms, ratio {ours / ref:.2f}x")
        print(f"  points_in_boxes: {_median_ms(lambda: points_in_boxes(p, b[:100]), repeat, sync):.2f} ms")
        print(f"  nms_bev: {_median_ms(lambda: nms_bev(b, s, 0.2), repeat, sync):.2f} ms")
        print(f"  sparse_local_max: {_median_ms(lambda: sparse_local_max(c, h, 3), repeat, sync):.2f} ms")
    else:
        print("no CUDA GPU here: CUDA kernels not measured")


# where a sparse network's time goes, as cProfile sees it: (label, substrings of "file:function" or builtin names)
SPLIT = [
    ("kernel maps (ours: build_kernel_map and its numba kernels; spconv: get_indice_pairs)",
     ("build_kernel_map", "check_indices", "_voxel_keys", "_insert_all", "_submanifold_map", "_strided_candidates",
      "_number_outputs", "_transpose_map", "_decode_keys", "_hash_table", "get_indice_pairs")),
    ("gather / scatter (ours: _gather_rows, _add_rows and cutting slabs; spconv: indice_conv)",
     ("_gather_rows", "_add_rows", "index_select", "indice_conv", "cut_slabs", "_pairs_by_offset")),
    ("matrix multiplies", ("torch.mm", "addmm", "linear", "matmul")),
    ("BatchNorm", ("batch_norm",)),
    ("ReLU", ("relu",)),
]


def _time_split(fn) -> dict:
    """Seconds of one ``fn()`` per SPLIT category (cProfile's own time of each function, summed), and "other"."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.runcall(fn)
    stats = pstats.Stats(profile).stats
    split = {label: 0.0 for label, _ in SPLIT}
    split["other"] = 0.0
    for (file, _, name), (_, _, own, _, _) in stats.items():
        where = f"{file}:{name}"
        split[next((label for label, keys in SPLIT if any(k in where for k in keys)), "other")] += own
    return split


def _engines(model):
    """Yields ("perception3d" | "spconv", model) with every sparse convolution on that engine."""
    from perception3d.models.sparse import set_sparse_engine

    for engine in ("spconv", "perception3d"):
        set_sparse_engine(model, engine)
        yield engine, model
    set_sparse_engine(model, "auto")


def _fresh_peak_mib(config: str, engine: str) -> float:
    """Peak memory growth (MiB) of one inference of ``config`` on one nuScenes-size frame with ``engine``, in a
    new process after one warm-up inference (numba loads its compiled kernels, spconv has none to load; in this
    process, memory freed by earlier runs would be reused and hide the peak)."""
    import subprocess

    code = ("import sys, torch, warnings; warnings.filterwarnings('ignore'); sys.path.insert(0, sys.argv[1]); "
            "import benchmark as b; from mmengine.config import Config; "
            "from mmengine.registry import init_default_scope; from perception3d.registry import MODELS; "
            "from perception3d.models.sparse import set_sparse_engine; init_default_scope('perception3d'); "
            "m = MODELS.build(Config.fromfile(sys.argv[2]).model).eval(); set_sparse_engine(m, sys.argv[3]); "
            "d = m.data_preprocessor({'inputs': {'points': [torch.from_numpy(b._frame())]}, 'data_samples': None}); "
            "f = lambda: m(**d, mode='predict'); torch.set_grad_enabled(False); f(); "
            "print('PEAK', b._peak_mib(f))")
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), config, engine],
                         capture_output=True, text=True, check=True).stdout
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("PEAK")))


def _paired_ms(fns: dict, repeat: int) -> dict:
    """Median ms of each of ``fns`` ({name: fn}), called in turn round after round (after one warm-up call
    each), so that a machine whose speed drifts during the run slows every one of them alike."""
    import numpy as np

    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for r in range(repeat):
        for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            started = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - started)
    return {name: 1000 * float(np.median(t)) for name, t in times.items()}


def _sgemm_peak() -> float:
    """This machine's float32 matrix multiply rate in GFLOP/s (4096³ torch.mm, best of 3), the ceiling of any
    engine built on the BLAS."""
    import torch

    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    torch.mm(a, b)
    best = min(_median_ms(lambda: torch.mm(a, b), 1) for _ in range(3))
    return 2 * 4096 ** 3 / best / 1e6


def _conv_arithmetic(model, run) -> tuple:
    """(ms spent inside the sparse convolutions, GFLOP they must compute: Σ over layers of the (input, output,
    offset) pairs × C_in × C_out × 2) of one ``run()``."""
    import torch

    from perception3d.models.sparse import _EngineConv
    from perception3d.ops.sparse_conv import build_kernel_map

    spent, flops, hooks, started = [0.0], [0.0], [], {}

    def before(module, args):
        started[module] = time.perf_counter()

    def after(module, args, out):
        spent[0] += time.perf_counter() - started.pop(module)
        x = args[0]
        if module.conv1x1:
            pairs = len(x.indices)
        else:  # the map the layer used (an inverse layer's key holds the strided map it inverts: the same pairs)
            kmap = out.indice_dict.get(("perception3d", module.indice_key)) if module.indice_key else None
            if kmap is None:
                kmap = build_kernel_map(x.indices, x.spatial_shape, x.batch_size, module.kernel_size,
                                        module.stride, module.padding, module.dilation, bool(module.subm))
            pairs = int((kmap.out_map < len(kmap.in_indices)).sum())
        flops[0] += 2.0 * pairs * module.in_channels * module.out_channels

    for m in model.modules():
        if isinstance(m, _EngineConv):
            hooks += [m.register_forward_pre_hook(before), m.register_forward_hook(after)]
    with torch.no_grad():
        run()
    for h in hooks:
        h.remove()
    return 1000 * spent[0], flops[0] / 1e9


def bench_sparse(config: str, repeat: int) -> None:
    """Each layer type of our models at nuScenes size on both engines (forward, forward + backward): the voxel
    sets each layer of ``config``'s backbone meets on one nuScenes-size frame."""
    import warnings

    import spconv.pytorch as spconv
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    warnings.filterwarnings("ignore", category=FutureWarning)
    from perception3d.models import sparse
    from perception3d.registry import MODELS

    init_default_scope("perception3d")
    model = MODELS.build(Config.fromfile(config).model).eval()
    backbone = model.backbone
    layers = {  # name → a layer of the backbone; its input voxels are recorded on one frame
        "SubMConv3d k3, stride 1 (conv_input)": backbone.conv_input[0],
        "SparseConv3d k3 s2 p1, stride 1 → 2": backbone.stages[1][0][0],
        "SubMConv3d k3, stride 2": backbone.stages[1][1].conv1,
        "SparseConv3d k3 s2 p1, stride 4 → 8": backbone.stages[3][0][0],
        "SubMConv3d k3, stride 8": backbone.stages[3][1].conv1,
        "SparseConv2d k3 s1 p1, BEV (conv_out)": backbone.conv_out[0],
        "SubMConv2d k3, BEV (shared_conv)": backbone.shared_conv[0],
    }
    inputs = {}
    hooks = [layer.register_forward_pre_hook(lambda m, args, name=name: inputs.setdefault(name, args[0]))
             for name, layer in layers.items()]
    points = torch.from_numpy(_frame())
    with torch.no_grad():
        model(**model.data_preprocessor({"inputs": {"points": [points]}, "data_samples": None}), mode="predict")
    for h in hooks:
        h.remove()
    print(f"{Path(config).name}'s backbone layers on one nuScenes-size frame ({len(points):,} points), CPU "
          f"({torch.get_num_threads()} threads), median of {repeat}; kernel maps built in every call:")
    print(f"  {'layer (channels in → out, voxels in)':<58} {'spconv fwd':>11} {'ours fwd':>9} {'ratio':>6} "
          f"{'spconv f+b':>11} {'ours f+b':>9} {'ratio':>6}")
    for name, layer in layers.items():
        x = inputs[name]
        indices, shape = x.indices, list(x.spatial_shape)
        torch.manual_seed(0)
        features = torch.randn(len(indices), layer.in_channels)
        times = {}
        for engine in ("spconv", "perception3d"):
            sparse.set_sparse_engine(layer, engine)

            def forward():
                with torch.no_grad():
                    return layer(spconv.SparseConvTensor(features, indices, shape, x.batch_size))

            def train():
                f = features.clone().requires_grad_(True)
                out = layer(spconv.SparseConvTensor(f, indices, shape, x.batch_size))
                out.features.sum().backward()

            times[engine] = (_median_ms(forward, repeat), _median_ms(train, repeat))
        (sf, sb), (of, ob) = times["spconv"], times["perception3d"]
        label = f"{name} ({layer.in_channels} → {layer.out_channels}, {len(indices):,})"
        print(f"  {label:<58} {sf:8.1f} ms {of:6.1f} ms {sf / of:5.2f}x {sb:8.1f} ms {ob:6.1f} ms {sb / ob:5.2f}x")


def bench_model(config: str, repeat: int, train_config: Optional[str], data_root: str) -> None:
    import warnings

    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    warnings.filterwarnings("ignore", category=FutureWarning)
    from perception3d.registry import MODELS

    init_default_scope("perception3d")
    cfg = Config.fromfile(config)
    points = torch.from_numpy(_frame())
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        torch.manual_seed(0)
        model = MODELS.build(cfg.model).to(device).eval()
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        batch = {"inputs": {"points": [points]}, "data_samples": None}
        head = model.head

        @torch.no_grad()
        def whole(mode="nms"):
            head.decode_mode = mode
            return model(**model.data_preprocessor(batch), mode="predict")

        data = model.data_preprocessor(batch)
        voxels = data["inputs"]["voxels"]
        with torch.no_grad():
            bev = model.extract_feat(voxels)
            outs = head(bev)
        where = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
        print(f"{Path(config).name} on {where}: {len(points):,} points → {len(voxels.coords):,} voxels → "
              f"{len(bev.indices):,} BEV voxels, eval mode, median of {repeat}:")
        engines = _engines(model) if device == "cpu" else [("spconv", model)]
        results = {}
        for engine, model in engines:
            peak = _fresh_peak_mib(config, engine) if device == "cpu" else float("nan")
            stages = {
                "voxelize": lambda: model.data_preprocessor(batch),
                "backbone": lambda: model.extract_feat(voxels),
                "head": lambda: head(bev),
            }
            times = {}
            with torch.no_grad():
                for name, fn in stages.items():
                    times[name] = _median_ms(fn, repeat, sync)
                for mode in ("nms", "local_max"):
                    head.decode_mode = mode
                    times[f"decode ({mode})"] = _median_ms(lambda: head.decode(bev.indices, outs, 1), repeat, sync)
            total = sum(v for k, v in times.items() if k != "decode (local_max)")
            print(f" {engine} engine:")
            for name, ms in times.items():
                print(f"  {name:<20} {ms:9.1f} ms   {100 * ms / total:5.1f} % of the frame (with NMS decoding)")
            whole_ms = _median_ms(whole, repeat, sync)
            print(f"  whole frame          {whole_ms:9.1f} ms   (stages summed: {total:.1f} ms); "
                  f"decode local_max / nms: {times['decode (local_max)'] / times['decode (nms)']:.2f}x")
            if device == "cpu":
                print(f"  peak memory of one inference (a new process, after one warm-up): +{peak:.0f} MiB")
                split = _time_split(whole)
                print("  where the whole frame's time goes (cProfile, one frame): " + ", ".join(
                    f"{label.split(' (')[0]} {1000 * sec:.0f} ms" for label, sec in split.items()))
            results[engine] = (whole_ms, times["backbone"], peak)
        if device == "cpu":
            from perception3d.models.sparse import set_sparse_engine

            def on(engine):
                def run():
                    set_sparse_engine(model, engine)
                    return whole()
                return run

            def backbone_on(engine):
                def run():
                    set_sparse_engine(model, engine)
                    with torch.no_grad():
                        return model.extract_feat(voxels)
                return run

            paired = _paired_ms({"spconv": on("spconv"), "perception3d": on("perception3d"),
                                 "spconv backbone": backbone_on("spconv"),
                                 "perception3d backbone": backbone_on("perception3d")}, 2 * repeat)
            sp, op = results["spconv"][2], results["perception3d"][2]
            sw, ow = paired["spconv"], paired["perception3d"]
            sb, ob = paired["spconv backbone"], paired["perception3d backbone"]
            print(f" ours against spconv's CPU path, timed in turn ({2 * repeat} each): whole frame {sw:.0f} ms → "
                  f"{ow:.0f} ms, {sw / ow:.2f}x faster; backbone {sb:.0f} ms → {ob:.0f} ms, {sb / ob:.2f}x faster; "
                  f"peak memory {op / sp:.2f}x")
            conv_ms, gflop = _conv_arithmetic(model, on("perception3d"))
            peak_rate = _sgemm_peak()
            floor = 1000 * gflop / peak_rate
            rest = ow - conv_ms
            print(f" the arithmetic floor: the sparse convolutions must compute {gflop:.1f} GFLOP (pairs × C_in × "
                  f"C_out × 2); at this machine's best float32 matrix multiply rate ({peak_rate:.0f} GFLOP/s, "
                  f"4096³ torch.mm, this run) that is >= {floor:.0f} ms, beside {rest:.0f} ms of the frame outside "
                  f"them (ours: {conv_ms:.0f} ms inside): an exact float32 engine can make the frame at most "
                  f"{sw / (rest + floor):.2f}x faster than spconv's {sw:.0f} ms")
            set_sparse_engine(model, "auto")
        else:
            with torch.autocast("cuda", dtype=torch.float16):
                half_ms = _median_ms(whole, repeat, sync)
            print(f"  fp32 {whole_ms:.1f} ms/frame, fp16 autocast {half_ms:.1f} ms/frame "
                  f"({whole_ms / half_ms:.2f}x faster); peak GPU memory "
                  f"{torch.cuda.max_memory_allocated() / 2 ** 20:.0f} MiB")
    if devices == ["cpu"]:
        print("no CUDA GPU here: GPU speed not measured")
    if train_config:
        _bench_train_step(train_config, data_root, repeat)


def _bench_train_step(config: str, data_root: str, repeat: int) -> None:
    """One training iteration (forward + backward, 2 frames of the synthetic world) on both engines."""
    import copy

    import numpy as np
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope

    from perception3d.engine import load_config
    from perception3d.registry import DATASETS, MODELS

    import perception3d.datasets  # noqa: F401  (registers the datasets and transforms)

    cfg = load_config(config)
    cfg.train_dataloader.dataset.data_root = _world(data_root)
    with DefaultScope.overwrite_default_scope("perception3d"):
        train = DATASETS.build(cfg.train_dataloader.dataset)
        np.random.seed(0)
        torch.manual_seed(0)
        batches = [pseudo_collate([train[2 * i], train[2 * i + 1]]) for i in range(repeat)]
        model = MODELS.build(cfg.model).train()
    from perception3d.models.sparse import set_sparse_engine

    def step(batch, engine):
        set_sparse_engine(model, engine)
        losses = model(**model.data_preprocessor(copy.deepcopy(batch), True), mode="loss")
        loss = sum(v for key, v in losses.items() if "loss" in key)
        loss.backward()
        model.zero_grad()
        return float(loss.detach())

    # no optimizer step: every call sees the same weights (BatchNorm's running statistics do not enter a
    # training-mode forward), so both engines' losses on the same batches must agree
    print(f"{Path(config).name}: one training iteration (forward + backward, 2 frames), {repeat} batches:")
    results = {}
    for engine in ("spconv", "perception3d"):
        step(batches[0], engine)  # warm-up
        peak = _peak_mib(lambda: step(batches[0], engine))
        losses = [step(batch, engine) for batch in batches]
        split = _time_split(lambda: step(batches[0], engine))
        results[engine] = peak
        print(f" {engine} engine: peak memory +{peak:.0f} MiB, losses {', '.join(f'{v:.5f}' for v in losses)}")
        print("  split (cProfile, one iteration): " + ", ".join(
            f"{label.split(' (')[0]} {1000 * sec:.0f} ms" for label, sec in split.items()))
    times = _paired_ms({engine: (lambda e=engine: [step(b, e) for b in batches])
                        for engine in ("spconv", "perception3d")}, 3)
    st, ot = times["spconv"] / len(batches), times["perception3d"] / len(batches)
    print(f" ours against spconv's CPU path, timed in turn: {st:.0f} ms → {ot:.0f} ms per iteration, "
          f"{st / ot:.2f}x faster; peak memory {results['perception3d'] / results['spconv']:.2f}x")
    set_sparse_engine(model, "auto")


def bench_track(boxes_per_frame: int, frames: int) -> None:
    """Tracker frames per second on one scene of ``boxes_per_frame`` objects of the seven tracking classes moving at
    constant velocity (a detection missed now and then, centres jittered by 0.1 m): the default tracker, CenterPoint's
    motion rule and Hungarian matching."""
    import numpy as np

    from perception3d.tracking import TRACKING_CLASSES, CenterPointTracker, TrackingFrame

    rng = np.random.default_rng(0)
    names = [TRACKING_CLASSES[i] for i in rng.integers(0, len(TRACKING_CLASSES), boxes_per_frame)]
    start = np.column_stack([rng.uniform(-50, 50, (boxes_per_frame, 2)), np.zeros(boxes_per_frame)])
    velocity = rng.normal(0, 3, (boxes_per_frame, 2))
    scene = []
    for i in range(frames):
        boxes = np.zeros((boxes_per_frame, 9))
        boxes[:, :3] = start
        boxes[:, :2] += velocity * 0.5 * i + rng.normal(0, 0.1, (boxes_per_frame, 2))
        boxes[:, 3:6] = (4.0, 2.0, 1.6)
        boxes[:, 7:9] = velocity
        seen = rng.random(boxes_per_frame) > 0.05
        scene.append(TrackingFrame(f"f{i}", "scene", 500_000 * i, boxes[seen], rng.random(int(seen.sum())),
                                   [n for n, s in zip(names, seen) if s]))
    settings = {"default (greedy, Kalman)": {}, "CenterPoint's motion": {"motion": None},
                "Hungarian": {"matcher": "hungarian"}}
    reference = None
    for label, kwargs in settings.items():
        tracker = CenterPointTracker(**kwargs)
        tracker.update(scene[0])  # compiles the numba kernels (cached on disk after the first run)
        best = float("inf")
        for _ in range(5):  # the best of five runs over the scene: the least disturbed by other work
            tracker.reset()
            t0 = time.perf_counter()
            for frame in scene:
                tracker.update(frame)
            best = min(best, time.perf_counter() - t0)
        fps = frames / best
        reference = reference or fps
        print(f"{label:25s}: {fps:8.0f} frames/s ({best / frames * 1e3:.3f} ms per frame of {boxes_per_frame} "
              f"boxes; {fps / reference:.2f}x the default)")


def bench_eval(task: str, scenes: int, frames: int, boxes: int) -> None:
    import io
    import json
    import os

    from nuscenes import NuScenes

    from perception3d.evaluation.backends import (evaluate_detection_file, evaluate_tracking_file,
                                                  metric_differences)
    from perception3d.evaluation.fasteval.bench_case import (detection_submission, tracking_submission,
                                                             write_eval_tables)

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, for both sides
    root = Path(tempfile.mkdtemp(prefix="p3d-bench-eval-"))
    version = write_eval_tables(str(root), scenes, frames)
    nusc = NuScenes(version, dataroot=str(root), verbose=False)
    print(f"case: {len(nusc.sample)} samples of {scenes} val scenes, {len(nusc.sample_annotation)} annotations "
          f"(tables in {root}); one core. Times from the parsed submission (json.load of the file, the same call "
          f"on both sides, is timed on its own)")
    for name in (["det", "track"] if task == "both" else [task]):
        submission = detection_submission(nusc, "val", boxes) if name == "det" else tracking_submission(nusc, "val")
        path = root / f"{name}_submission.json"
        path.write_text(json.dumps(submission))
        n_boxes = sum(map(len, submission["results"].values()))
        t0 = time.perf_counter()
        with open(path) as f:
            submission = json.load(f)
        parse = time.perf_counter() - t0
        evaluate = evaluate_detection_file if name == "det" else evaluate_tracking_file
        times = {}
        for backend in ("fast", "devkit"):
            with contextlib.redirect_stdout(io.StringIO()), _preloaded(nusc, path, submission):
                t0 = time.perf_counter()
                evaluate(str(path), nusc, "val", str(root / f"{name}_{backend}"), backend=backend, verbose=False,
                         submission=submission)
                times[backend] = time.perf_counter() - t0
        problems = [d for f in ("metrics_summary.json", "metrics_details.json")
                    for d in metric_differences(json.loads((root / f"{name}_fast" / f).read_text()),
                                                json.loads((root / f"{name}_devkit" / f).read_text()))]
        what = "detection" if name == "det" else "tracking"
        print(f"{what:9s}: {n_boxes} boxes; devkit {times['devkit']:8.2f} s, fast {times['fast']:7.2f} s: "
              f"{times['devkit'] / times['fast']:.1f}x faster (from the file, json.load {parse:.2f} s added to "
              f"both: {(times['devkit'] + parse) / (times['fast'] + parse):.1f}x); every number equal to 1e-9: "
              f"{'yes' if not problems else 'NO (' + problems[0] + ')'}")


def _run_record(work_dir: Path, metric: str = "NuScenes/NDS") -> dict:
    """A tools/train.py work dir → its dumped config, last checkpoint, mean logged time per training iteration
    (over every run of the dir: a resumed training logs in a new one) and the metrics of its last validation
    (vis_data/scalars.json, the record holding ``metric``)."""
    import json

    configs = sorted(p for p in work_dir.glob("*.py"))
    runs = sorted(work_dir.glob("*/vis_data/scalars.json"))
    pointer = work_dir / "last_checkpoint"
    if not configs or not runs or not pointer.is_file():
        raise SystemExit(f"{work_dir}: not a finished tools/train.py work dir (needs its config .py, "
                         f"*/vis_data/scalars.json and last_checkpoint)")
    lines = [json.loads(line) for run in runs for line in run.read_text().splitlines() if line.strip()]
    times = [r["time"] for r in lines if "loss" in r and "time" in r]
    metrics = [r for r in lines if metric in r]
    if not metrics:
        raise SystemExit(f"{work_dir}: no validation metrics yet (has the training reached its last epoch?)")
    return {"config": str(configs[0]), "checkpoint": pointer.read_text().strip(), "iters": len(times),
            "last_iter": max((r.get("iter", 0) for r in lines if "loss" in r), default=0),
            "time": sum(times) / max(len(times), 1), "metrics": metrics[-1]}


def _voxel_counts(model, batches) -> dict:
    """Mean voxels per frame at the backbone's input, after each stage and before/after each focal block."""
    import torch

    backbone, counts, hooks = model.backbone, {}, []

    def record(name):
        def hook(module, inputs, output):
            tensor = output[0] if isinstance(output, tuple) else output
            counts.setdefault(name, []).append(len(tensor.indices))
        return hook

    hooks.append(backbone.conv_input.register_forward_hook(record("input")))
    for s, stage in enumerate(backbone.stages, start=1):
        hooks.append(stage.register_forward_hook(record(f"stage {s}")))
    for s, block in backbone.focal.items():
        hooks.append(block.register_forward_hook(record(f"stage {s} + focal")))
    model.eval()
    with torch.no_grad():
        for batch in batches:
            model(**model.data_preprocessor(batch), mode="predict")
    for h in hooks:
        h.remove()
    return {name: sum(v) / len(v) for name, v in counts.items()}


def bench_focal(work_dirs: List[str], frames: int, repeat: int, out: Optional[str]) -> None:
    import copy
    import time

    import numpy as np
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope

    from perception3d.apis import init_model
    from perception3d.engine import load_config
    from perception3d.registry import DATASETS

    import perception3d.datasets  # noqa: F401  (registers the datasets and transforms)

    records = [_run_record(Path(w)) for w in work_dirs]
    cfg = load_config(records[0]["config"])
    with DefaultScope.overwrite_default_scope("perception3d"):
        val = DATASETS.build(cfg.val_dataloader.dataset)
        train = DATASETS.build(cfg.train_dataloader.dataset)
    val_batches = [pseudo_collate([val[i]]) for i in range(min(frames, len(val)))]
    np.random.seed(0)
    torch.manual_seed(0)
    train_batches = [pseudo_collate([train[2 * i], train[2 * i + 1]]) for i in range(repeat)]
    models = {}
    for work_dir, record in zip(work_dirs, records):
        model = init_model(record["config"], record["checkpoint"])
        models[Path(work_dir).name] = model
        if model.backbone.focal and not any(b.loss_weight > 0 for b in model.backbone.focal.values()):
            with_loss = copy.deepcopy(model)  # the same weights with the importance loss switched on
            for block in with_loss.backbone.focal.values():  # the detector gave them the voxel geometry
                block.loss_weight = 1.0
            models[Path(work_dir).name + " (+ importance loss)"] = with_loss
    step_times = {}
    for name, model in models.items():
        model.train()
        times = []
        for k, batch in enumerate([train_batches[0]] + train_batches):  # the first warms up
            started = time.perf_counter()
            losses = model(**model.data_preprocessor(copy.deepcopy(batch), True), mode="loss")
            sum(v for key, v in losses.items() if "loss" in key).backward()
            model.zero_grad()
            if k:
                times.append(time.perf_counter() - started)
        step_times[name] = float(np.median(times))
    counts = {name: _voxel_counts(model, val_batches) for name, model in models.items() if "+" not in name}

    names = [Path(w).name for w in work_dirs]
    classes = [k.split("AP_")[1] for k in records[0]["metrics"] if k.startswith("NuScenes/AP_")]
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, label in [("NuScenes/mAP", "mAP"), ("NuScenes/NDS", "NDS")] + \
            [(f"NuScenes/AP_{c}", f"AP {c}") for c in classes]:
        lines.append(f"| {label} | " + " | ".join(f"{r['metrics'][key]:.4f}" for r in records) + " |")
    lines.append("| s per training iteration (log mean) | " +
                 " | ".join(f"{r['time']:.2f} ({r['iters'] * 20} it)" for r in records) + " |")
    reference = step_times[names[0]]
    lines.append("| training step, same batches, this run | " + " | ".join(
        f"{step_times[n]:.2f} s ({step_times[n] / reference:.2f}x)" for n in names) + " |")
    for name, t in step_times.items():
        if "+" in name:
            lines.append(f"| training step with the importance loss ({name.split(' (')[0]}) | " + " | ".join(
                f"{t:.2f} s ({t / reference:.2f}x)" if n == name.split(" (")[0] else "" for n in names) + " |")
    layers = list(dict.fromkeys(k for c in counts.values() for k in c))
    layers.sort(key=lambda k: (k != "input", k))
    for layer in layers:
        lines.append(f"| voxels per frame, {layer} | " + " | ".join(
            f"{counts[n][layer]:,.0f}" if layer in counts[n] else "" for n in names) + " |")
    report = "\n".join(lines)
    print(f"{len(val_batches)} validation frames (voxels), {repeat} training batches of 2 (step time, median):")
    print(report)
    if out:
        Path(out).write_text(report + "\n")


def bench_seg(work_dirs: List[str], frames: int, out: Optional[str]) -> None:
    """Trained segmentors side by side: the devkit's LidarSegEval numbers of each run's last validation (mIoU,
    IoU per class), parameters, iterations and mean time per training iteration from the log, and the time of
    one prediction on ``frames`` validation frames (the test pipeline's points) in this run."""
    import torch

    from perception3d.apis import init_model
    from perception3d.datasets import SEG_CLASSES
    from perception3d.registry import DATASETS

    runs = [_run_record(Path(w), "LidarSeg/mIoU") for w in work_dirs]
    rows = {"mIoU": [], "parameters (M)": [], "training iterations": [], "s per training iteration (log)": [],
            "s per frame, prediction": []}
    rows.update({f"IoU {name}": [] for name in SEG_CLASSES})
    for run in runs:
        model = init_model(run["config"], run["checkpoint"])
        dataset = DATASETS.build(dict(model.cfg.val_dataloader.dataset, test_mode=True))
        items = [dataset[i] for i in range(0, len(dataset), max(1, len(dataset) // frames))][:frames]
        with torch.no_grad():
            model({"points": [items[0]["inputs"]["points"]]}, mode="predict")  # warm-up
            start = time.perf_counter()
            for item in items:
                model({"points": [item["inputs"]["points"]]}, mode="predict")
            per_frame = (time.perf_counter() - start) / len(items)
        m = run["metrics"]
        rows["mIoU"].append(f"{m['LidarSeg/mIoU']:.4f}")
        rows["parameters (M)"].append(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}")
        rows["training iterations"].append(str(run["last_iter"]))
        rows["s per training iteration (log)"].append(f"{run['time']:.2f}")
        rows["s per frame, prediction"].append(f"{per_frame:.2f}")
        for name in SEG_CLASSES:
            rows[f"IoU {name}"].append(f"{m[f'LidarSeg/IoU_{name}']:.4f}")
    names = [Path(w).name for w in work_dirs]
    table = ["| | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    table += [f"| {key} | " + " | ".join(values) + " |" for key, values in rows.items()]
    print("\n".join(table))
    if out:
        Path(out).write_text("\n".join(table) + "\n")


@contextlib.contextmanager
def _preloaded(nusc, path: Path, submission: dict):
    """The devkit gets what the fast side gets: the loaded tables (TrackingEval loads them itself) and the
    parsed submission (its load_prediction reads the file with json.load)."""
    import json

    import nuscenes.eval.common.loaders as loaders
    import nuscenes.eval.tracking.evaluate as tracking_evaluate

    load_tables, load_json = tracking_evaluate.NuScenes, loaders.json
    tracking_evaluate.NuScenes = lambda *args, **kwargs: nusc
    loaders.json = type("parsed", (), {"load": staticmethod(
        lambda f: submission if Path(f.name) == path else json.load(f))})
    try:
        yield
    finally:
        tracking_evaluate.NuScenes, loaders.json = load_tables, load_json


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    data = sub.add_parser("data", help="data loading and info creation speed")
    data.add_argument("--data-root", default="data/synthetic")
    data.add_argument("--frames", type=int, default=60)
    ops = sub.add_parser("ops", help="kernel speed and memory against spconv")
    ops.add_argument("--repeat", type=int, default=5)
    model = sub.add_parser("model", help="detector time per stage and memory on one nuScenes-size frame, on both "
                                         "sparse engines; a training iteration of --train-config")
    model.add_argument("--config", default="configs/voxelnext/voxelnext_voxel0075_nus.py")
    model.add_argument("--repeat", type=int, default=3)
    model.add_argument("--train-config", default="configs/voxelnext/voxelnext_tiny_synthetic.py",
                       help="config whose training iteration is timed on both engines ('' to skip)")
    model.add_argument("--data-root", default="data/synthetic", help="world the training frames come from")
    sparse_ = sub.add_parser("sparse", help="each sparse convolution layer type at nuScenes size, ours and spconv's")
    sparse_.add_argument("--config", default="configs/voxelnext/voxelnext_voxel0075_nus.py")
    sparse_.add_argument("--repeat", type=int, default=5)
    track = sub.add_parser("track", help="tracker frames per second")
    track.add_argument("--boxes", type=int, default=200)
    track.add_argument("--frames", type=int, default=200)
    ev = sub.add_parser("eval", help="nuScenes evaluation time against the devkit's")
    ev.add_argument("--task", choices=["det", "track", "both"], default="both")
    ev.add_argument("--scenes", type=int, default=150, help="val scenes (150: the whole val split)")
    ev.add_argument("--frames", type=int, default=40, help="key frames per scene")
    ev.add_argument("--boxes", type=int, default=300, help="detection boxes per sample")
    focal = sub.add_parser("focal", help="trained detectors side by side: metrics, voxels per layer, step time")
    focal.add_argument("work_dirs", nargs="+", help="tools/train.py work dirs; the first is the reference")
    focal.add_argument("--frames", type=int, default=10, help="validation frames for the voxel counts")
    focal.add_argument("--repeat", type=int, default=3, help="training batches timed per model")
    focal.add_argument("--out", help="also write the table (markdown) here")
    seg = sub.add_parser("seg", help="trained segmentors side by side: devkit mIoU, IoU per class, speed")
    seg.add_argument("work_dirs", nargs="+", help="tools/train.py work dirs of segmentation configs")
    seg.add_argument("--frames", type=int, default=20, help="validation frames timed per model")
    seg.add_argument("--out", help="also write the table (markdown) here")
    args = parser.parse_args(argv)
    if args.what == "seg":
        bench_seg(args.work_dirs, args.frames, args.out)
    elif args.what == "focal":
        bench_focal(args.work_dirs, args.frames, args.repeat, args.out)
    elif args.what == "eval":
        bench_eval(args.task, args.scenes, args.frames, args.boxes)
    elif args.what == "data":
        bench_data(args.data_root, args.frames)
    elif args.what == "ops":
        bench_ops(args.repeat)
    elif args.what == "sparse":
        bench_sparse(args.config, args.repeat)
    elif args.what == "track":
        bench_track(args.boxes, args.frames)
    else:
        if not Path(args.config).is_file():
            parser.error(f"--config: no such file: {args.config}")
        bench_model(args.config, args.repeat, args.train_config, args.data_root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
