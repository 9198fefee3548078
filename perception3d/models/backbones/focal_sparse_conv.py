"""Focal sparse convolution (Focals Conv, Chen et al., CVPR 2022): each voxel predicts its own importance and that
of its kernel neighbours; the important voxels dilate into the neighbours they find important, the others stay as
they are, and a submanifold convolution runs over the new voxel set.

Mirrors OpenPCDet's ``FocalSparseConv`` (``pcdet/models/backbones_3d/focal_sparse_conv/focal_sparse_conv.py`` and
``focal_sparse_utils.py``: ``split_voxels``, ``check_repeat``, ``combine_out``, ``FocalLoss``), with the nuScenes
settings of the authors' CenterPoint code (``CenterPoint/det3d/models/backbones/scn_focal.py``: ``MASK_MULTI``
True; ``configs/nusc/.../*_focal_multimodal.py``: ``TOPK`` True, ``SKIP_LOSS`` True). Where ours differs on purpose:

- Cells are told apart by their exact (batch, z, y, x). The reference merges voxels by the key
  ``z·max(y)·max(x) + y·max(x) + x`` over the voxels present, which gives two different cells the same key
  (``(y, max(x))`` and ``(y + 1, 0)``) and merges them.
- Ties in the top-k by importance go to the voxel listed first (a stable sort); the reference's CUDA sort leaves
  them in any order.

Kept as the reference has it, though it looks accidental: a dilated voxel must have every index >= 1 (the
reference tests ``> 0``), so the first layer, row and column of the grid never receive one.
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import spconv.pytorch as spconv
import torch
from torch import nn

from ..sparse import BACKBONE_NORM, SubMConv3d

KERNEL_SIZES = (3, 5)


def kernel_offsets(kernel_size: int) -> torch.Tensor:
    """int64 (k³ − 1, 3) (dz, dy, dx) offsets of a k³ kernel without its centre, in the reference's order (dz
    slowest, dx fastest): channel j of the importance convolution is the importance of offset j."""
    if kernel_size not in KERNEL_SIZES:
        raise ValueError(f"focal kernel_size must be one of {KERNEL_SIZES}, got {kernel_size!r}")
    r = torch.arange(-(kernel_size // 2), kernel_size // 2 + 1)
    grid = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), dim=-1).reshape(-1, 3)
    return grid[(grid != 0).any(dim=1)]


def _cell_keys(indices: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    """int64 (N,) key of each (batch, z, y, x) row, distinct for distinct cells of ``spatial_shape``."""
    nz, ny, nx = (int(s) for s in spatial_shape)
    i = indices.long()
    return ((i[:, 0] * nz + i[:, 1]) * ny + i[:, 2]) * nx + i[:, 3]


def _important(voxel_importance: torch.Tensor, batch: torch.Tensor, batch_size: int, topk: bool,
               threshold: float) -> torch.Tensor:
    """bool (N,): the important voxels. topk: in each sample the first int(n · threshold) by falling importance
    (ties: the voxel listed first); else importance > threshold (split_voxels)."""
    if not topk:
        return voxel_importance > threshold
    order = torch.sort(voxel_importance.detach(), descending=True, stable=True).indices
    order = order[torch.sort(batch[order], stable=True).indices]  # by sample, falling importance inside each
    counts = torch.bincount(batch, minlength=batch_size)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(order), device=order.device) - starts[batch[order]]
    important = torch.zeros_like(batch, dtype=torch.bool)
    important[order] = rank < (counts.double() * threshold).long()[batch[order]]
    return important


def _merge(keys: torch.Tensor, features: torch.Tensor, weights: Optional[torch.Tensor] = None):
    """Rows sharing a key merged (check_repeat): features summed, ``weights`` averaged. → (unique sorted keys,
    (U, C) features, (U,) mean weights or None, (N,) row → unique index)."""
    unique, inverse, counts = torch.unique(keys, return_inverse=True, return_counts=True)
    summed = features.new_zeros((len(unique), features.shape[1])).index_add(0, inverse, features)
    mean = None
    if weights is not None:
        mean = weights.new_zeros(len(unique)).index_add(0, inverse, weights) / counts.to(weights.dtype)
    return unique, summed, mean, inverse


def focal_voxel_set(indices: torch.Tensor, features: torch.Tensor, importance: torch.Tensor,
                    spatial_shape: Sequence[int], batch_size: int, kernel_size: int = 3, topk: bool = True,
                    threshold: float = 0.5, mask_multi: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """The voxels and features a focal convolution convolves (split_voxels + combine_out of the reference).

    indices: int (N, 4) batch, z, y, x, distinct. features: (N, C). importance: (N, k³) after the sigmoid; column
    −1 is each voxel's importance, column j < k³ − 1 that of ``kernel_offsets(k)[j]``.

    1. ``mask_multi``: every voxel's features × its importance.
    2. The important voxels (``_important``) each add the cells at their offsets of importance >= ``threshold``
       that lie inside the grid with every index >= 1, with zero features and that offset's importance as weight
       (the voxel itself weighs 1). Important voxels and added cells on one cell merge: features summed, weights
       averaged; then features × weight.
    3. The other voxels join unchanged; a cell held by both sums their features.

    → indices int32 (M, 4) sorted by cell, features (M, C). Differentiable in ``features`` and ``importance``.
    """
    device = features.device
    batch = indices[:, 0].long()
    voxel_imp, offset_imp = importance[:, -1], importance[:, :-1]
    if mask_multi:
        features = features * voxel_imp.unsqueeze(-1)
    fore = _important(voxel_imp, batch, batch_size, topk, threshold)
    offsets = kernel_offsets(kernel_size).to(device)
    fore_rows = torch.nonzero(fore).squeeze(1)
    chosen = offset_imp[fore_rows] >= threshold  # (F, k³ − 1)
    voxel, offset = torch.nonzero(chosen, as_tuple=True)
    cells = indices[fore_rows[voxel], 1:].long() + offsets[offset]
    shape = torch.as_tensor([int(s) for s in spatial_shape], device=device)
    inside = ((cells > 0) & (cells < shape)).all(dim=1)  # the reference's `> 0`: index 0 never receives
    new_indices = torch.cat([batch[fore_rows[voxel]][inside].unsqueeze(1), cells[inside]], dim=1)
    new_weights = offset_imp[fore_rows[voxel[inside]], offset[inside]]

    fore_keys = torch.cat([_cell_keys(indices[fore_rows], spatial_shape), _cell_keys(new_indices, spatial_shape)])
    fore_features = torch.cat([features[fore_rows], features.new_zeros((len(new_indices), features.shape[1]))])
    fore_weights = torch.cat([importance.new_ones(len(fore_rows)), new_weights])
    keys, fore_features, weights, _ = _merge(fore_keys, fore_features, fore_weights)
    fore_features = fore_features * weights.unsqueeze(-1)

    back_rows = torch.nonzero(~fore).squeeze(1)
    keys, out_features, _, _ = _merge(torch.cat([keys, _cell_keys(indices[back_rows], spatial_shape)]),
                                      torch.cat([fore_features, features[back_rows]]))
    nz, ny, nx = (int(s) for s in spatial_shape)
    out_indices = torch.stack([keys // (nz * ny * nx), keys // (ny * nx) % nz, keys // nx % ny, keys % nx], dim=1)
    return out_indices.int(), out_features


def focal_loss(voxel_importance: torch.Tensor, foreground: torch.Tensor, gamma: float = 2.0,
               eps: float = 1e-7) -> torch.Tensor:
    """The reference's FocalLoss on [1 − m, m] (its two "classes" are the importance m and its complement, passed
    through a softmax as it does), clamped to [eps, 1 − eps], averaged over N × 2 entries. voxel_importance: (N,)
    after the sigmoid; foreground: bool (N,)."""
    p = torch.softmax(torch.stack([1 - voxel_importance, voxel_importance], dim=1), dim=1).clamp(eps, 1 - eps)
    y = nn.functional.one_hot(foreground.long(), 2).to(p.dtype)
    return (-y * torch.log(p) * (1 - p) ** gamma).mean()


class FocalOutput(NamedTuple):
    """What a focal block gives: the convolved tensor, and its importance loss (None when not computed)."""

    tensor: spconv.SparseConvTensor
    loss: Optional[torch.Tensor]


class FocalSparseConv(spconv.SparseModule):
    """One focal block: importance SubMConv3d 3³ (k³ outputs, no bias; optionally after an "enlarge" SubMConv3d +
    BN + ReLU to ``enlarge_channels``) → ``focal_voxel_set`` → SubMConv3d k³ (no bias) + BN + ReLU.

    channels: in = out. voxel_stride: the stage's stride in voxels (1, 2, 4, …), for the importance targets.
    voxel_size (x, y, z) m and point_cloud_range [x0, y0, z0, x1, y1, z1]: the voxelizer's, needed only for the
    importance loss (``loss_weight`` > 0), whose targets are "the voxel's point index·stride·size + range min lies
    in a ground-truth box" (the reference's ``voxels_3d`` and ``points_in_boxes_gpu``).
    """

    def __init__(self, channels: int, voxel_stride: int, key: str, kernel_size: int = 3, topk: bool = True,
                 threshold: float = 0.5, mask_multi: bool = True, enlarge_channels: Optional[int] = None,
                 loss_weight: float = 0.0, voxel_size: Optional[Sequence[float]] = None,
                 point_cloud_range: Optional[Sequence[float]] = None):
        super().__init__()
        kernel_offsets(kernel_size)  # checks the size
        if not 0 < threshold < 1:
            raise ValueError(f"focal threshold must lie in (0, 1), got {threshold!r}")
        if loss_weight < 0:
            raise ValueError(f"focal loss_weight must be >= 0, got {loss_weight!r}")
        if loss_weight > 0 and (voxel_size is None or point_cloud_range is None):
            raise ValueError("the focal importance loss needs voxel_size and point_cloud_range (the voxelizer's)")
        self.kernel_size, self.topk, self.threshold, self.mask_multi = kernel_size, topk, threshold, mask_multi
        self.voxel_stride, self.loss_weight = voxel_stride, float(loss_weight)
        self.enlarge = None
        imp_in = channels
        if enlarge_channels:
            self.enlarge = spconv.SparseSequential(
                SubMConv3d(channels, enlarge_channels, 3, padding=1, bias=False, indice_key=f"{key}_enlarge"),
                nn.BatchNorm1d(enlarge_channels, **BACKBONE_NORM), nn.ReLU())
            imp_in = enlarge_channels
        self.conv_imp = SubMConv3d(imp_in, kernel_size ** 3, 3, padding=1, bias=False, indice_key=f"{key}_imp")
        self.conv = SubMConv3d(channels, channels, kernel_size, padding=kernel_size // 2, bias=False,
                               indice_key=key)
        self.bn = nn.BatchNorm1d(channels, **BACKBONE_NORM)
        self.relu = nn.ReLU()
        self.voxel_size = None if voxel_size is None else [float(v) for v in voxel_size]
        self.point_cloud_range = None if point_cloud_range is None else [float(v) for v in point_cloud_range]

    def voxel_points(self, indices: torch.Tensor) -> torch.Tensor:
        """(N, 3) x, y, z (m) of each voxel's corner, index · stride · voxel size + range min (the reference's
        ``voxels_3d``)."""
        size = torch.as_tensor(self.voxel_size, device=indices.device)
        low = torch.as_tensor(self.point_cloud_range[:3], device=indices.device)
        return indices[:, [3, 2, 1]].float() * self.voxel_stride * size + low

    def importance_targets(self, indices: torch.Tensor, gt_boxes: List[torch.Tensor]) -> torch.Tensor:
        """bool (N,): the voxel's point (``voxel_points``) lies in a ground-truth box of its sample (boxes (B_i, 9),
        our ``points_in_boxes``)."""
        from ...ops.points_in_boxes import points_in_boxes

        points = self.voxel_points(indices)
        target = torch.zeros(len(indices), dtype=torch.bool, device=indices.device)
        for b, boxes in enumerate(gt_boxes):
            rows = torch.nonzero(indices[:, 0] == b).squeeze(1)
            if len(rows) and len(boxes):
                target[rows] = points_in_boxes(points[rows].detach(), boxes.detach().to(points.dtype)) >= 0
        return target

    def forward(self, x: spconv.SparseConvTensor, gt_boxes: Optional[List[torch.Tensor]] = None) -> FocalOutput:
        """x: the stage's sparse tensor; gt_boxes: one (B_i, 9) tensor per sample, for the importance loss in
        training. → FocalOutput(tensor on the new voxel set, weighted loss or None)."""
        logits = self.conv_imp(self.enlarge(x) if self.enlarge is not None else x).features
        importance = torch.sigmoid(logits)
        indices, features = focal_voxel_set(x.indices, x.features, importance, x.spatial_shape, x.batch_size,
                                            self.kernel_size, self.topk, self.threshold, self.mask_multi)
        out = spconv.SparseConvTensor(features, indices, x.spatial_shape, x.batch_size)
        out = self.conv(out)
        out = out.replace_feature(self.relu(self.bn(out.features)))
        loss = None
        if self.training and self.loss_weight > 0 and gt_boxes is not None:
            target = self.importance_targets(x.indices, gt_boxes)
            loss = self.loss_weight * focal_loss(importance[:, -1], target)
        return FocalOutput(out, loss)
