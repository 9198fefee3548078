"""Shared fixtures: one small synthetic world (3 scenes: 2 mini_train + 1 mini_val) per test session."""
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REAL_FRAME = Path(__file__).parent / "data" / "nuscenes_frame"


def _lane(item) -> int | None:
    marker = item.get_closest_marker("first")
    return None if marker is None else marker.kwargs.get("lane", 0)


def pytest_collection_modifyitems(items):
    """Tests marked ``first(lane=k)`` start first, each lane on its own worker.

    pytest-xdist's work stealing (``--dist worksteal``, scripts/run_tests.sh) hands worker k the k-th contiguous
    chunk of the collection, as ``WorkStealingScheduling.schedule`` cuts it, and an idle worker later steals from
    the *end* of another's queue. So a long test runs where its chunk puts it: the three long trainings, first in
    the list, all ran on one worker one after another (1446 s of a 1460 s run). Each lane's tests go to the head
    of chunk ``lane % workers``; without xdist, they simply run first."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    lanes = [[item for item in items if _lane(item) is not None and _lane(item) % workers == k]
             for k in range(workers)]
    rest = [item for item in items if _lane(item) is None]
    ordered, left = [], len(items)
    for k in range(workers):  # the chunk sizes of xdist's first distribution: len(pending) // nodes_remaining
        size = left // (workers - k)
        take = min(len(rest), max(0, size - len(lanes[k])))
        chunk, rest = lanes[k] + rest[:take], rest[take:]
        ordered += chunk
        left -= len(chunk)
    items[:] = ordered + rest


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> str:
    """Data root of the session's synthetic world, with infos and GT database, built once for all pytest-xdist
    workers (the first to need it builds it, the others wait on a file lock). Set P3D_TEST_WORLD to reuse one."""
    from filelock import FileLock

    from perception3d.datasets.create_infos import create_infos
    from perception3d.datasets.synthetic import create_synthetic_world

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, above each worker's own
    root = Path(os.environ.get("P3D_TEST_WORLD") or shared / "synthetic")
    with FileLock(str(root) + ".lock"):
        world = create_synthetic_world(str(root), "v1.0-mini", n_scenes=3, seed=0, progress=False)
        if not world["reused"] or not (root / "nuscenes_dbinfos_train.pkl").exists():
            create_infos(str(root), "v1.0-mini", max_sweeps=10, progress=False)
    return str(root)


@pytest.fixture(scope="session")
def seg_root(tmp_path_factory) -> str:
    """A synthetic world holding both mini_val scenes (the devkit's LidarSegEval scores a whole split) and four
    mini_train scenes, with infos; built once per test session (P3D_TEST_SEG_WORLD to reuse one)."""
    from filelock import FileLock

    from perception3d.datasets.create_infos import create_infos
    from perception3d.datasets.synthetic import create_synthetic_world

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    root = Path(os.environ.get("P3D_TEST_SEG_WORLD") or shared / "synthetic_seg")
    with FileLock(str(root) + ".lock"):
        world = create_synthetic_world(str(root), "v1.0-mini", n_scenes=6, n_val=2, seed=0, progress=False)
        if not world["reused"] or not (root / "nuscenes_infos_val.pkl").exists():
            create_infos(str(root), "v1.0-mini", max_sweeps=2, progress=False)
    return str(root)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """The tiny config's freshly initialised weights (seed 0), saved as tools/train.py saves a checkpoint."""
    import torch

    from perception3d.apis import init_model

    torch.manual_seed(0)
    model = init_model(str(Path(__file__).resolve().parents[1] / "configs" / "voxelnext" /
                           "voxelnext_tiny_synthetic.py"))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return path


@pytest.fixture(scope="session")
def nusc(synthetic_root):
    from nuscenes import NuScenes

    return NuScenes("v1.0-mini", dataroot=synthetic_root, verbose=False)


@pytest.fixture
def rng():
    """A fresh random generator per test; its seed is printed, so a failure shows how to replay the inputs."""
    seed = int(np.random.SeedSequence().entropy % 2 ** 32)
    print(f"seed {seed}")
    return np.random.default_rng(seed)


@pytest.fixture(autouse=True)
def mmengine_logs_to_this_tests_output(request):
    """Each test starts with a logger of its own as mmengine's current one (``print_log(..., logger="current")``),
    at INFO, on the process's standard output (file descriptor 1, which capfd and pytest's own capture read).
    Otherwise the current logger is the last one an earlier test in the worker made: a runner's at ERROR hides
    the warnings a later test looks for, and a logger keeps the stream it was created with, so one made inside a
    test that captures output (capsys) goes on writing into that test's finished buffer. Older loggers' console
    handlers are pointed at standard output too, with the new one's."""
    from mmengine.logging import MMLogger

    MMLogger.get_instance(f"pytest:{request.node.nodeid}", log_level="INFO")  # now the current one
    for logger in list(MMLogger._instance_dict.values()):
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler:
                handler.stream = sys.__stdout__  # not setStream: it flushes the old, maybe closed, stream
    yield
