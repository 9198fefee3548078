"""The VoxelNeXt detector built from its configs, on CPU with real spconv: a nuScenes-size frame through the full
config, gradients of the tiny config, and real learning (overfitting synthetic frames) in both decoding modes."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from test_models import nuscenes_size_frame

from perception3d.datasets.classes import CLASSES
from perception3d.datasets.transforms.formatting import SampleTargets
from perception3d.datasets.transforms.random_state import seeded_sample
from perception3d.models.heads.targets import assign_targets
from perception3d.ops import bev_iou
from perception3d.registry import DATASETS, MODELS

CONFIGS = Path(__file__).parents[1] / "configs" / "voxelnext"
FRAME = json.loads((Path(__file__).parent / "data" / "nuscenes_frame" / "frame.json").read_text())


def build_model(name: str, options: dict = None):
    init_default_scope("perception3d")
    cfg = Config.fromfile(str(CONFIGS / name))
    cfg.merge_from_dict(options or {})
    return cfg, MODELS.build(cfg.model)


def real_frame_batch(rng):
    """About 300k points (the real frame and jittered copies) with the frame's real boxes of the ten classes."""
    known = [i for i, n in enumerate(FRAME["names"]) if n in CLASSES]
    boxes = torch.tensor(FRAME["boxes"], dtype=torch.float32)[known]
    labels = torch.tensor([CLASSES.index(FRAME["names"][i]) for i in known])
    targets = SampleTargets(FRAME["sample_token"], "scene of the real frame", 0, boxes, labels, np.array(FRAME["lidar2ego"]),
                            np.array(FRAME["ego2global"]), np.eye(4))
    return {"inputs": {"points": [nuscenes_size_frame(rng)]}, "data_samples": [targets]}


def test_full_config_runs_a_nuscenes_size_frame_on_cpu_for_loss_and_eval_mode_prediction():
    torch.manual_seed(0)
    _, model = build_model("voxelnext_voxel0075_nus.py")
    batch = real_frame_batch(np.random.default_rng(0))
    assert len(batch["inputs"]["points"][0]) > 300_000
    data = model.data_preprocessor(batch, True)
    voxels = data["inputs"]["voxels"]
    assert voxels.spatial_shape == (40, 1440, 1440) and 100_000 < len(voxels.coords) <= 120_000
    with torch.no_grad():
        losses = model(**data, mode="loss")
    assert set(losses) == {"loss_heatmap", "loss_bbox"} and all(torch.isfinite(v) and v > 0 for v in losses.values())
    model.eval()  # spconv's CPU path refuses biased convolutions in eval mode: the head has none
    data = model.data_preprocessor(batch, False)
    assert len(data["inputs"]["voxels"].coords) > 120_000  # the test-time cap is 160k
    (det,) = model(**data, mode="predict")
    assert det.boxes.shape[1] == 9 and len(det.boxes) == len(det.scores) == len(det.labels)
    assert len(det.boxes) <= 6 * 83 and (det.scores > 0.1).all() and torch.isfinite(det.boxes).all()


@pytest.mark.parametrize("name,options,loss_names", [
    ("voxelnext_tiny_synthetic.py", None, {"loss_heatmap", "loss_bbox"}),
    ("voxelnext_focal_tiny_synthetic.py", {"model.backbone.focal.loss_weight": 1.0},
     {"loss_heatmap", "loss_bbox", "loss_focal"})])
def test_tiny_config_backward_reaches_every_parameter(synthetic_root, name, options, loss_names):
    """The tiny config, and its focal twin with the importance loss on (reported beside the head's losses)."""
    torch.manual_seed(0)
    cfg, model = build_model(name, options)
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=synthetic_root))
    batch = pseudo_collate([dataset[0], dataset[len(dataset) // 2]])
    data = model.data_preprocessor(batch, True)
    assert len(data["inputs"]["voxels"].coords) <= 2 * 30_000
    losses = model(**data, mode="loss")
    assert set(losses) == loss_names and all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    # a bias can sum to an exact zero over a few positives (L1 signs cancel): it must be reached; every other
    # parameter (convolution and BatchNorm weights) must move
    missing = [n for n, p in model.named_parameters()
               if p.grad is None or (not n.endswith(".bias") and not p.grad.abs().sum() > 0)]
    assert not missing, missing


def test_preprocessor_and_model_name_what_is_wrong():
    _, model = build_model("voxelnext_tiny_synthetic.py")
    with pytest.raises(ValueError, match="points"):
        model.data_preprocessor({"inputs": {}, "data_samples": []})
    data = model.data_preprocessor({"inputs": {"points": [torch.rand(100, 5) * 10]}, "data_samples": None})
    with pytest.raises(ValueError, match="data_samples"):
        model(**data, mode="loss")
    with pytest.raises(ValueError, match="mode"):
        model(**data, mode="train")


def precise_batch_norm(model, data):
    """Replaces BatchNorm's running averages (momentum 0.01: far from converged after a short run) by the exact
    statistics of ``data``, as detectron2's PreciseBN does, so eval mode sees what training saw."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        model(**data, mode="tensor")
    model.eval()


def representable(bev_indices, grid, sample, groups, cell, origin, kernels):
    """Per GT box: can VoxelNeXt's decoding return it at all? Its positive voxel (the occupied voxel nearest its
    centre) must not be another same-class box's positive (nms) or lie within ``kernels[g] // 2`` cells of one
    (local_max: the sparse maximum keeps one per window)."""
    ok = {"nms": torch.ones(len(sample.gt_boxes), dtype=torch.bool),
          "local_max": torch.ones(len(sample.gt_boxes), dtype=torch.bool)}
    for group, kernel in zip(groups, kernels):
        members = torch.nonzero(torch.isin(sample.gt_labels, torch.tensor(group))).squeeze(1)
        t = assign_targets(bev_indices, [sample.gt_boxes], [sample.gt_labels], group, cell, origin, grid)
        cells = bev_indices[t.positive][:, 1:].long()
        gap = (cells[:, None] - cells[None]).abs().max(dim=2).values
        same = (t.labels[:, None] == t.labels[None]) & ~torch.eye(len(members), dtype=torch.bool)
        ok["nms"][members] &= ~(same & (gap == 0)).any(dim=1)
        ok["local_max"][members] &= ~(same & (gap <= kernel // 2)).any(dim=1)
    return ok


def test_tiny_config_overfits_a_synthetic_frame_and_decodes_every_box_in_both_modes(synthetic_root):
    torch.manual_seed(0)
    cfg, model = build_model("voxelnext_tiny_synthetic.py")
    pipeline = cfg.test_pipeline[:-1] + [dict(type="ObjectRangeFilter", point_cloud_range=cfg.point_cloud_range),
                                         dict(type="Pack")]
    dataset = DATASETS.build(dict(type="NuScenesDataset", data_root=synthetic_root, ann_file="nuscenes_infos_train.pkl",
                                  pipeline=pipeline))
    with seeded_sample((0,)):  # the test pipeline's PointShuffle: the same point order in every run
        batch = pseudo_collate([dataset[0]])
    (sample,) = batch["data_samples"]
    assert len(sample.gt_boxes) > 30 and len(set(sample.gt_labels.tolist())) >= 5
    # kaiming-initialised regression branches (OpenPCDet's) start farther off: 80 steps left two cones at IoU < 0.5
    steps = 120
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=steps, pct_start=0.2)
    data = model.data_preprocessor(batch, True)
    history = []
    for _ in range(steps):
        loss = sum(model(**data, mode="loss").values())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10)
        optimizer.step()
        schedule.step()
        history.append(loss.item())
    assert history[-1] < history[0] / 10, history[::10]

    precise_batch_norm(model, data)
    data = model.data_preprocessor(batch, False)
    head = model.head
    with torch.no_grad():
        bev = model.extract_feat(data["inputs"]["voxels"])
    can = representable(bev.indices, bev.spatial_shape, sample, head.groups, head.cell, head.origin,
                        head.local_max_kernels)
    for mode in ("nms", "local_max"):
        head.decode_mode = mode
        (det,) = model(**data, mode="predict")
        iou = bev_iou(sample.gt_boxes, det.boxes) * (sample.gt_labels[:, None] == det.labels[None])
        best = iou.max(dim=1).values if len(det.boxes) else torch.zeros(len(sample.gt_boxes))
        # VoxelNeXt cannot return two boxes from one voxel: only a few boxes of a crowd may be out of reach (at the
        # tiny config's 1.6 m cells about 10 % of this frame's: pedestrians standing a metre apart)
        assert can[mode].float().mean() > 0.85, (mode, int((~can[mode]).sum()))
        missed = [(CLASSES[int(c)], round(float(b), 2)) for c, b, ok in zip(sample.gt_labels, best, can[mode])
                  if ok and b <= 0.5]
        assert not missed, (mode, missed)


@pytest.mark.parametrize("epochs", [None, 3])
def test_one_cycle_schedule_follows_the_recipe(epochs):
    """lr 1e-4 → 1e-3 at 40 % of training → 1e-8; Adam's beta1 0.95 → 0.85 → 0.95, as OpenPCDet's adam_onecycle;
    the same shape over 3 epochs with tools/train.py --epochs 3."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS

    from perception3d.engine import set_epochs

    cfg, _ = build_model("voxelnext_voxel0075_nus.py")
    if epochs:
        set_epochs(cfg, epochs)
        assert cfg.train_cfg.max_epochs == cfg.train_cfg.val_interval == epochs
    wrapper = build_optim_wrapper(torch.nn.Linear(2, 2), cfg.optim_wrapper)
    assert wrapper.clip_grad_kwargs == {"max_norm": 10, "norm_type": 2}
    epoch_length = 50 if epochs else 10  # iterations enough for the cosine to reach its ends within 1e-4
    schedulers = []
    for spec in cfg.param_scheduler:  # as mmengine's Runner converts epoch-based schedulers to iterations
        args = {k: v for k, v in spec.items() if k not in ("type", "by_epoch", "convert_to_iter_based")}
        kind = PARAM_SCHEDULERS.get(spec["type"])
        schedulers.append(kind.build_iter_from_epoch(wrapper.optimizer, epoch_length=epoch_length, **args))
    lr, beta1 = [], []
    for _ in range(cfg.train_cfg.max_epochs * epoch_length):
        group = wrapper.optimizer.param_groups[0]
        lr.append(group["lr"])
        beta1.append(group["betas"][0])
        wrapper.optimizer.step()
        for s in schedulers:
            s.step()
    peak = int(0.4 * len(lr)) - 1
    assert np.isclose(lr[0], 1e-4) and np.argmax(lr) == peak and np.isclose(lr[peak], 1e-3)
    assert np.isclose(lr[-1], 1e-8, rtol=0.1) and group["weight_decay"] == 0.01
    assert np.isclose(beta1[0], 0.95) and np.argmin(beta1) == peak and np.isclose(beta1[peak], 0.85, atol=1e-4)
    assert np.isclose(beta1[-1], 0.95, atol=1e-4)
