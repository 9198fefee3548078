"""Training targets of a fully sparse center head (VoxelNeXt): positives, Gaussian heatmaps and box regression,
all over the occupied BEV voxels, never a dense map."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

# box regression code: offset x, y (cells), z (m), log dx, dy, dz, cos yaw, sin yaw, vx, vy (m/s)
CODE_SIZE = 10


def gaussian_radius(height: torch.Tensor, width: torch.Tensor, min_overlap: float = 0.1) -> torch.Tensor:
    """CenterNet's radius (in the units of height, width) within which a shifted box keeps IoU >= min_overlap
    with the true one: the smallest root of its three cases (Law & Deng, CornerNet)."""
    a1, b1 = 1.0, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + torch.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2 = 4.0, 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + torch.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + torch.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


@dataclass
class HeadTargets:
    """Targets of one class group over the M voxels of a batch.

    ``heatmap`` (M, K) in [0, 1]; ``positive`` int64 (P,) voxel of each assigned box; ``labels`` int64 (P,)
    class within the group; ``regression`` (P, 10) code of each box at its voxel.
    """

    heatmap: torch.Tensor
    positive: torch.Tensor
    labels: torch.Tensor
    regression: torch.Tensor


def assign_targets(voxel_indices: torch.Tensor, gt_boxes: Sequence[torch.Tensor], gt_labels: Sequence[torch.Tensor],
                   group: Sequence[int], cell_size: Sequence[float], origin: Sequence[float],
                   grid: Sequence[int], min_overlap: float = 0.1, min_radius: int = 2,
                   max_objects: int = 500) -> HeadTargets:
    """Targets of one class group, as OpenPCDet's ``VoxelNeXtHead.assign_target_of_single_head``
    (``pcdet/models/dense_heads/voxelnext_head.py``, GAUSSIAN_TYPE ['nearst', 'gt_center']).

    Args:
        voxel_indices: int (M, 3) batch, y, x of the occupied BEV voxels.
        gt_boxes, gt_labels: per sample, (G, 9) boxes in our convention and int64 (G,) global class indices.
        group: global class indices of the group (heatmap channel k is ``group[k]``).
        cell_size: (x, y) m of one BEV voxel (voxel size × stride). origin: (x_min, y_min) m of the grid.
        grid: (ny, nx) cells of the BEV grid.
        max_objects: boxes of the group per sample beyond this many are ignored (NUM_MAX_OBJS).
    Voxel (i, j) sits at the point (i, j) in cell units (its corner, not its centre). A box's centre in cells,
    clamped to [0, n − 0.5], is regressed from its positive: the occupied voxel of its sample nearest to it (the
    first in voxel order on ties). The heatmap is, per voxel and class, the max over boxes of two untruncated
    Gaussians exp(−d² / 2σ²), d in cells from the box centre and from its positive, σ = (2r + 1) / 6 with r the
    CenterNet radius (cells, truncated to an integer, at least ``min_radius``). Boxes with a zero length or
    width are skipped. All in float32, in OpenPCDet's order of operations.
    """
    device = voxel_indices.device
    m, k = len(voxel_indices), len(group)
    heatmap = torch.zeros((m, k), dtype=torch.float32, device=device)
    positives, labels, codes = [], [], []
    group_t = torch.tensor(list(group), device=device)
    for b, (boxes, classes) in enumerate(zip(gt_boxes, gt_labels)):
        rows = torch.nonzero(voxel_indices[:, 0] == b).squeeze(1)
        members = torch.nonzero(torch.isin(classes.to(device), group_t)).squeeze(1)[:max_objects]
        if len(rows) == 0 or len(members) == 0:
            continue
        boxes = boxes.to(device=device, dtype=torch.float32)[members]
        channels = (classes.to(device)[members, None] == group_t[None]).int().argmax(dim=1)
        spatial = voxel_indices[rows][:, [2, 1]].float()  # (x, y) in cells
        cx = ((boxes[:, 0] - origin[0]) / cell_size[0]).clamp(0, grid[1] - 0.5)
        cy = ((boxes[:, 1] - origin[1]) / cell_size[1]).clamp(0, grid[0] - 0.5)
        centre = torch.stack([cx, cy], 1)
        dx, dy = boxes[:, 3] / cell_size[0], boxes[:, 4] / cell_size[1]
        radius = gaussian_radius(dx, dy, min_overlap).int().clamp(min=min_radius)
        valid = (dx > 0) & (dy > 0)
        dist_centre = ((spatial[None] - centre[:, None]) ** 2).sum(-1)  # (G, M_b)
        nearest = dist_centre.argmin(dim=1)
        dist_nearest = ((spatial[None] - spatial[nearest][:, None]) ** 2).sum(-1)
        sigma = (2 * radius.float() + 1) / 6
        two_sigma2 = (2 * sigma * sigma)[:, None]
        heat = torch.maximum(torch.exp(-dist_centre / two_sigma2), torch.exp(-dist_nearest / two_sigma2))
        for c in range(k):
            mine = valid & (channels == c)
            if mine.any():
                heatmap[rows, c] = torch.maximum(heatmap[rows, c], heat[mine].max(dim=0).values)
        v = torch.nonzero(valid).squeeze(1)
        box = boxes[v]
        codes.append(torch.cat([centre[v] - spatial[nearest[v]], box[:, 2:3], box[:, 3:6].log(),
                                torch.cos(box[:, 6:7]), torch.sin(box[:, 6:7]), box[:, 7:9]], 1))
        positives.append(rows[nearest[v]])
        labels.append(channels[v].long())
    if positives:
        return HeadTargets(heatmap, torch.cat(positives), torch.cat(labels), torch.cat(codes))
    return HeadTargets(heatmap, torch.zeros(0, dtype=torch.int64, device=device),
                       torch.zeros(0, dtype=torch.int64, device=device),
                       torch.zeros((0, CODE_SIZE), dtype=torch.float32, device=device))


def decode_boxes(codes: torch.Tensor, voxel_indices: torch.Tensor, cell_size: Sequence[float],
                 origin: Sequence[float]) -> torch.Tensor:
    """Inverse of the regression code: (P, 10) codes at voxels (P, 3) batch, y, x → (P, 9) boxes. Voxel (i, j)
    sits at (i, j) cells, as in OpenPCDet's ``decode_bbox_from_voxels_nuscenes``."""
    ix, iy = voxel_indices[:, 2].to(codes.dtype), voxel_indices[:, 1].to(codes.dtype)
    x = (ix + codes[:, 0]) * cell_size[0] + origin[0]
    y = (iy + codes[:, 1]) * cell_size[1] + origin[1]
    yaw = torch.atan2(codes[:, 7], codes[:, 6])
    return torch.stack([x, y, codes[:, 2], *torch.exp(codes[:, 3:6]).unbind(1), yaw, codes[:, 8], codes[:, 9]], 1)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's focal loss over (M, K) logits and heatmap targets, normalised by the number of positives
    (target == 1)."""
    prob = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    pos_loss = torch.log(prob) * (1 - prob) ** alpha * pos
    neg_loss = torch.log(1 - prob) * prob ** alpha * (1 - target) ** beta * (1 - pos)
    return -(pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1.0)


