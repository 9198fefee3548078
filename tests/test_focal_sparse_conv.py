"""Focal sparse convolution (Focals Conv) on real spconv, CPU: the new voxel set and features of one block against a
loop over voxels and offsets written here, gradients into the importance convolution, the importance targets
against the devkit's points_in_box, the focal backbone on the real nuScenes frame, and bad configs."""
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import spconv.pytorch as spconv
import torch

from perception3d.models import VoxelNeXtBackbone, Voxelizer
from perception3d.models.backbones.focal_sparse_conv import FocalSparseConv, focal_loss, focal_voxel_set

FRAME_DIR = Path(__file__).parent / "data" / "nuscenes_frame"
NUS_VOXEL, NUS_RANGE = [0.075, 0.075, 0.2], [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]


def brute_force_focal(indices, features, importance, shape, batch_size, kernel, topk, threshold, mask_multi):
    """The focal block's voxel set, one voxel and one offset at a time: {(b, z, y, x): features}."""
    n = len(indices)
    feats = [features[i] * (importance[i, -1] if mask_multi else 1.0) for i in range(n)]
    important = set()
    for b in range(batch_size):
        rows = [i for i in range(n) if indices[i][0] == b]
        if topk:  # the first int(n · threshold) by falling importance, ties to the voxel listed first
            important |= set(sorted(rows, key=lambda i: (-importance[i, -1], i))[:int(len(rows) * threshold)])
        else:
            important |= {i for i in rows if importance[i, -1] > threshold}
    r = range(-(kernel // 2), kernel // 2 + 1)
    offsets = [o for o in itertools.product(r, r, r) if o != (0, 0, 0)]  # dz slowest, dx fastest
    cells = {}  # cell → [summed features, weights]
    for i in sorted(important):
        b, z, y, x = (int(v) for v in indices[i])
        entry = cells.setdefault((b, z, y, x), [np.zeros(features.shape[1]), []])
        entry[0] = entry[0] + feats[i]
        entry[1].append(1.0)
        for j, (dz, dy, dx) in enumerate(offsets):
            cell = (z + dz, y + dy, x + dx)
            if importance[i, j] >= threshold and all(0 < c < s for c, s in zip(cell, shape)):
                cells.setdefault((b,) + cell, [np.zeros(features.shape[1]), []])[1].append(importance[i, j])
    out = {cell: summed * np.mean(weights) for cell, (summed, weights) in cells.items()}
    for i in range(n):
        if i not in important:
            cell = tuple(int(v) for v in indices[i])
            out[cell] = out.get(cell, 0.0) + feats[i]
    return out


def random_voxels(rng, shape, batch_size=2, n=60, channels=3):
    idx = np.unique(np.concatenate([rng.integers(0, batch_size, (n, 1))] +
                                   [rng.integers(0, s, (n, 1)) for s in shape], 1), axis=0)
    idx = idx[rng.permutation(len(idx))]
    return idx, rng.normal(size=(len(idx), channels))


@pytest.mark.parametrize("kernel,topk,mask_multi", [(3, True, True), (3, False, True), (5, True, False),
                                                    (5, False, False)])
def test_focal_voxel_set_equals_a_voxel_by_voxel_loop(kernel, topk, mask_multi):
    """Hand-set importances from a few values (ties in the top-k, offsets exactly at the 0.5 threshold), voxels
    next to each other and at the grid's first and last cells: every cell and every feature equal."""
    rng = np.random.default_rng(kernel * 10 + topk * 2 + mask_multi)
    shape = (4, 6, 7)
    idx, feats = random_voxels(rng, shape)
    idx[0, 1:] = (0, 0, 0)
    idx[1, 1:] = (shape[0] - 1, shape[1] - 1, shape[2] - 1)
    idx = np.unique(idx, axis=0)[rng.permutation(len(np.unique(idx, axis=0)))]
    feats = rng.normal(size=(len(idx), 3))
    importance = rng.choice([0.2, 0.5, 0.7, 0.9], size=(len(idx), kernel ** 3))
    importance[:, -1] = rng.choice([0.3, 0.5, 0.6, 0.6, 0.8], size=len(idx))  # ties
    got_idx, got = focal_voxel_set(torch.from_numpy(idx).int(), torch.from_numpy(feats), torch.from_numpy(importance),
                                   shape, 2, kernel, topk, 0.5, mask_multi)
    expected = brute_force_focal(idx, feats, importance, shape, 2, kernel, topk, 0.5, mask_multi)
    got_cells = [tuple(c) for c in got_idx.tolist()]
    assert len(set(got_cells)) == len(got_cells) and set(got_cells) == set(expected)
    assert len(expected) > len(idx), "important voxels should dilate"
    for cell, f in zip(got_cells, got.numpy()):
        assert np.allclose(f, expected[cell], rtol=0, atol=1e-12), cell


def test_gradients_reach_the_importance_convolution():
    """The voxel importance through the features it multiplies (and the loss), the offset importances through
    the cells where a dilated voxel meets an important one (their weights are averaged)."""
    rng = np.random.default_rng(4)
    shape = (6, 10, 10)
    idx = np.unique(np.concatenate([np.zeros((150, 1), int), rng.integers(1, 6, (150, 3))], 1), axis=0)
    x = spconv.SparseConvTensor(torch.from_numpy(rng.normal(size=(len(idx), 4)).astype(np.float32)),
                                torch.from_numpy(idx).int(), list(shape), 1)
    block = FocalSparseConv(4, 1, "focal_t", loss_weight=1.0, voxel_size=[0.5, 0.5, 0.5],
                            point_cloud_range=[0, 0, 0, 5, 5, 3])
    for m in block.modules():
        if isinstance(m, spconv.conv.SparseConvolution):
            m.algo = spconv.ConvAlgo.Native
    out, loss = block(x, [torch.tensor([[1.5, 1.5, 1.0, 2.0, 2.0, 2.0, 0.3, 0.0, 0.0]])])
    assert loss is not None and loss > 0
    (out.features ** 2).mean().backward()
    grad = block.conv_imp.weight.grad  # spconv's layout: (out, k, k, k, in)
    assert grad.shape[0] == 27
    per_channel = grad.abs().reshape(27, -1).sum(1)
    assert per_channel[-1] > 0 and (per_channel[:-1] > 0).any()
    block.zero_grad()
    out, loss = block(x, [torch.tensor([[1.5, 1.5, 1.0, 2.0, 2.0, 2.0, 0.3, 0.0, 0.0]])])
    loss.backward()
    assert block.conv_imp.weight.grad.abs().sum() > 0


def test_importance_targets_equal_the_devkits_points_in_box():
    """A voxel is foreground when its point (index · stride · size + range min, x y z) lies in a box: on the real
    frame's 69 boxes at strides 1, 2 and 4, against nuscenes.utils.geometry_utils.points_in_box."""
    from nuscenes.utils.data_classes import Box
    from nuscenes.utils.geometry_utils import points_in_box
    from pyquaternion import Quaternion

    frame = json.loads((FRAME_DIR / "frame.json").read_text())
    boxes = np.asarray(frame["boxes"], dtype=np.float32)
    points = torch.from_numpy(np.fromfile(next(FRAME_DIR.glob("*.pcd.bin")), np.float32).reshape(-1, 5))
    batch = Voxelizer(NUS_VOXEL, NUS_RANGE)(points=[points])
    for stride in (1, 2, 4):
        block = FocalSparseConv(5, stride, "t", loss_weight=1.0, voxel_size=NUS_VOXEL, point_cloud_range=NUS_RANGE)
        coords = torch.unique(torch.cat([batch.coords[:, :1], batch.coords[:, 1:] // stride], 1), dim=0)
        target = block.importance_targets(coords, [torch.from_numpy(boxes)]).numpy()
        xyz = coords[:, [3, 2, 1]].double().numpy() * stride * np.asarray(NUS_VOXEL) + np.asarray(NUS_RANGE[:3])
        expected = np.zeros(len(coords), dtype=bool)
        for b in boxes:
            box = Box(b[:3].tolist(), [b[4], b[3], b[5]], Quaternion(axis=[0, 0, 1], angle=float(b[6])))
            expected |= points_in_box(box, xyz.T)
        assert expected.sum() > 20, "some voxels should lie in boxes"
        assert (target == expected).mean() > 0.999 and np.abs(target.astype(int) - expected).sum() <= 2


def test_focal_loss_equals_the_references_formula_by_hand():
    m = torch.tensor([0.9, 0.2, 0.6])
    fg = torch.tensor([True, False, False])
    p_fg = torch.exp(m) / (torch.exp(m) + torch.exp(1 - m))  # softmax([1 - m, m])[1]
    per_voxel = torch.where(fg, -torch.log(p_fg) * (1 - p_fg) ** 2, -torch.log(1 - p_fg) * p_fg ** 2)
    assert torch.allclose(focal_loss(m, fg), per_voxel.sum() / 6)


def test_focal_backbone_runs_forward_and_backward_on_the_real_frame():
    """The recipe's backbone with focal blocks at stages 1-3 and the importance loss on: the real frame's
    voxels, every parameter gets a gradient, and stages 1-3 hold more voxels than without focal blocks."""
    frame = json.loads((FRAME_DIR / "frame.json").read_text())
    points = torch.from_numpy(np.fromfile(next(FRAME_DIR.glob("*.pcd.bin")), np.float32).reshape(-1, 5))
    batch = Voxelizer(NUS_VOXEL, NUS_RANGE)(points=[points])
    torch.manual_seed(0)
    focal = VoxelNeXtBackbone(in_channels=5, focal=dict(stages=(1, 2, 3), loss_weight=1.0),
                              voxel_size=NUS_VOXEL, point_cloud_range=NUS_RANGE)
    bev, losses = focal.forward_with_losses(batch, [torch.tensor(frame["boxes"], dtype=torch.float32)])
    assert set(losses) == {"loss_focal"} and torch.isfinite(losses["loss_focal"])
    ((bev.features ** 2).mean() + losses["loss_focal"]).backward()
    missing = [name for name, p in focal.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    assert bev.spatial_shape == [180, 180] and torch.isfinite(bev.features).all()
    focal.eval()
    with torch.no_grad():
        again, none = focal.forward_with_losses(batch, [torch.tensor(frame["boxes"], dtype=torch.float32)])
    assert none == {} and torch.isfinite(again.features).all()


@pytest.mark.parametrize("focal,message", [(dict(stages=(1, 7)), "stage numbers 1-6"),
                                           (dict(stages=(1, 2, 3), kernel_size=4), "kernel_size must be one of"),
                                           (dict(stages=(1,), threshold=1.5), "threshold must lie in"),
                                           (dict(stages=(1,), topk_ratio=0.5), "unknown keys"),
                                           (dict(stages=(1,), loss_weight=1.0), "needs voxel_size")])
def test_bad_focal_configs_are_refused_with_the_reason(focal, message):
    with pytest.raises(ValueError, match=message):
        VoxelNeXtBackbone(in_channels=5, focal=focal)
