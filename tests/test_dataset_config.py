"""The base dataset config: one data_root, built the way mmengine's Runner builds it, on the synthetic world."""
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from perception3d.datasets import CLASSES
from perception3d.utils.config import set_data_root

CONFIG = Path(__file__).parents[1] / "configs" / "_base_" / "datasets" / "nuscenes_lidar_10sweeps.py"


def _config(root):
    cfg = Config.fromfile(str(CONFIG))
    assert set_data_root(cfg, root) == 6  # the top-level name, the train, val and test datasets, both evaluators
    return cfg


def test_runner_builds_loaders_that_yield_packed_batches(synthetic_root):
    cfg = _config(synthetic_root)
    init_default_scope("perception3d")
    cfg.train_dataloader.num_workers = 2
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batch = next(iter(loader))
    assert len(batch["inputs"]["points"]) == 4 and len(batch["data_samples"]) == 4
    r = np.array(cfg.point_cloud_range)
    for points, targets in zip(batch["inputs"]["points"], batch["data_samples"]):
        assert points.dtype == torch.float32 and points.shape[1] == 5 and len(points) > 100_000
        assert ((points[:, :3].numpy() >= r[:3]) & (points[:, :3].numpy() < r[3:])).all()
        assert set(points[:, 4].unique().tolist()) > {0.0}  # sweeps carry their time lag
        assert len(targets.gt_boxes) == len(targets.gt_labels) > 0
        assert targets.gt_labels.max() < len(CLASSES)
    val = Runner.build_dataloader(cfg.val_dataloader, seed=0)
    assert len(val.dataset) == 40 and val.dataset.test_mode  # the one mini_val scene of the session's world


def test_dataloader_workers_draw_different_augmentations(synthetic_root):
    """Transforms forked into workers must not replay one random stream: the same frame, loaded by two
    workers and twice by each, gets four different global transforms; the same seed reproduces them."""
    cfg = _config(synthetic_root)
    init_default_scope("perception3d")
    from perception3d.registry import DATASETS

    dataset = DATASETS.build(cfg.train_dataloader.dataset.dataset)

    def draw(seed):
        torch.manual_seed(seed)
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, sampler=[0, 0, 0, 0], num_workers=2,
                                             collate_fn=lambda item: item["data_samples"].aug_matrix)
        return list(loader)

    matrices = draw(0)
    for i in range(4):
        for j in range(i):
            assert not np.allclose(matrices[i], matrices[j])
    assert all(np.array_equal(a, b) for a, b in zip(matrices, draw(0)))


def test_seeded_sampler_makes_augmentation_a_function_of_seed_epoch_and_index(synthetic_root):
    """The config's training sampler: the same epoch gives the same batches whatever the number of workers (a
    resumed run replays an epoch exactly); another epoch reshuffles and draws new augmentations."""
    cfg = _config(synthetic_root)
    init_default_scope("perception3d")
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.persistent_workers = False

    def epoch(n, workers, batches=3):
        cfg.train_dataloader.num_workers = workers
        loader = Runner.build_dataloader(cfg.train_dataloader, seed=7)
        loader.sampler.set_epoch(n)
        out = []
        for batch, _ in zip(loader, range(batches)):
            out += [(s.token, s.aug_matrix, p[:100].clone()) for s, p in zip(batch["data_samples"],
                                                                          batch["inputs"]["points"])]
        return out

    first, again, other = epoch(3, workers=0), epoch(3, workers=2), epoch(4, workers=2)
    for a, b in zip(first, again):
        assert a[0] == b[0] and np.array_equal(a[1], b[1]) and torch.equal(a[2], b[2])
    assert [a[0] for a in first] != [c[0] for c in other]
    assert not any(np.allclose(a[1], c[1]) for a in first for c in other)


def test_ten_sweeps_are_the_devkits_ten_and_test_time_shuffling_repeats(synthetic_root, nusc):
    """'10 sweeps' is the key frame and 9 earlier ones, as the devkit's nsweeps=10 (and OpenPCDet's MAX_SWEEPS
    10) count them: the earlier sweeps as the devkit moves them (ego square removed), the key frame whole as
    OpenPCDet loads it. The test pipeline shuffles the points (as OpenPCDet does at test time), the same way for
    a sample every time it is loaded."""
    from nuscenes.utils.data_classes import LidarPointCloud
    from scipy.spatial import cKDTree

    from perception3d.registry import DATASETS

    cfg = _config(synthetic_root)
    init_default_scope("perception3d")
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    index = 17
    info = dataset.get_data_info(index)
    points = dataset[index]["inputs"]["points"].numpy()
    cloud, times = LidarPointCloud.from_file_multisweep(nusc, nusc.get("sample", info["token"]), "LIDAR_TOP",
                                                        "LIDAR_TOP", nsweeps=10, min_distance=1.0)
    key = np.fromfile(Path(synthetic_root) / info["lidar_path"], dtype=np.float32).reshape(-1, 5)[:, :4]
    expected = np.concatenate([np.pad(key, ((0, 0), (0, 1))),
                               np.concatenate([cloud.points[:4].T, times.T], 1)[times[0] > 0]])
    r = np.array(cfg.point_cloud_range)
    expected = expected[((expected[:, :3] >= r[:3]) & (expected[:, :3] < r[3:])).all(1)]
    assert len(np.unique(times)) == 10 and points.shape == expected.shape
    assert ((np.abs(points[:, :2]) < 1).all(1) & (points[:, 4] == 0)).sum() > 1000  # the key frame's ego square
    ours_tree, expected_tree = cKDTree(points), cKDTree(expected)
    assert ours_tree.query(expected)[0].max() < 2e-3 and expected_tree.query(points)[0].max() < 2e-3
    assert np.abs(points[:1000] - expected[:1000]).max() > 1  # shuffled
    assert np.array_equal(dataset[index]["inputs"]["points"].numpy(), points)
    assert not np.array_equal(dataset[index + 1]["inputs"]["points"].numpy()[:100], points[:100])
