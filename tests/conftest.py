"""Shared fixtures: one small synthetic world (3 scenes: 2 mini_train + 1 mini_val) per test session."""
import os
from pathlib import Path

import numpy as np
import pytest

REAL_FRAME = Path(__file__).parent / "data" / "nuscenes_frame"


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> str:
    """Data root of the session's synthetic world, with infos and GT database. Set P3D_TEST_WORLD to reuse one."""
    from perception3d.datasets.create_infos import create_infos
    from perception3d.datasets.synthetic import create_synthetic_world

    root = os.environ.get("P3D_TEST_WORLD") or str(tmp_path_factory.mktemp("synthetic"))
    create_synthetic_world(root, "v1.0-mini", n_scenes=3, seed=0, progress=False)
    if not (Path(root) / "nuscenes_dbinfos_train.pkl").exists():
        create_infos(root, "v1.0-mini", max_sweeps=10, progress=False)
    return root


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
