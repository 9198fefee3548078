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
                   min_overlap: float = 0.1, min_radius: int = 2) -> HeadTargets:
    """Targets of one class group.

    Args:
        voxel_indices: int (M, 3) batch, y, x of the occupied BEV voxels.
        gt_boxes, gt_labels: per sample, (G, 9) boxes in our convention and int64 (G,) global class indices.
        group: global class indices of the group (heatmap channel k is ``group[k]``).
        cell_size: (x, y) m of one BEV voxel (voxel size × stride). origin: (x_min, y_min) m of the grid.
    The positive of a box is the occupied voxel of its sample nearest its centre; the heatmap is, per voxel and
    class, the max over boxes of exp(-d² / 2σ²) for voxels within the box's radius r (cells, CenterNet radius,
    at least ``min_radius``) of its centre, σ = (2r + 1) / 6, and 1 at each positive.
    """
    device = voxel_indices.device
    m, k = len(voxel_indices), len(group)
    cx = (voxel_indices[:, 2].double() + 0.5) * cell_size[0] + origin[0]
    cy = (voxel_indices[:, 1].double() + 0.5) * cell_size[1] + origin[1]
    heatmap = torch.zeros((m, k), dtype=torch.float32, device=device)
    positives, labels, codes = [], [], []
    lookup = {int(c): i for i, c in enumerate(group)}
    for b, (boxes, classes) in enumerate(zip(gt_boxes, gt_labels)):
        rows = torch.nonzero(voxel_indices[:, 0] == b).squeeze(1)
        if len(rows) == 0:
            continue
        for box, cls in zip(boxes.double(), classes.tolist()):
            if cls not in lookup:
                continue
            channel = lookup[cls]
            gx, gy = (box[0] - origin[0]) / cell_size[0], (box[1] - origin[1]) / cell_size[1]  # in cells
            dx_cells = (cx[rows] - box[0]) / cell_size[0]
            dy_cells = (cy[rows] - box[1]) / cell_size[1]
            dist2 = dx_cells ** 2 + dy_cells ** 2
            nearest = rows[torch.argmin(dist2)]
            radius = gaussian_radius(box[4] / cell_size[1], box[3] / cell_size[0], min_overlap)
            radius = max(int(radius), min_radius)
            sigma = (2 * radius + 1) / 6.0
            near = dist2 <= radius ** 2
            heat = torch.exp(-dist2[near] / (2 * sigma ** 2)).float()
            heatmap[rows[near], channel] = torch.maximum(heatmap[rows[near], channel], heat)
            heatmap[nearest, channel] = 1.0
            ix, iy = voxel_indices[nearest, 2].double(), voxel_indices[nearest, 1].double()
            codes.append(torch.stack([gx - (ix + 0.5), gy - (iy + 0.5), box[2], torch.log(box[3]), torch.log(box[4]),
                                      torch.log(box[5]), torch.cos(box[6]), torch.sin(box[6]), box[7], box[8]]))
            positives.append(nearest)
            labels.append(channel)
    if positives:
        return HeadTargets(heatmap, torch.stack(positives), torch.tensor(labels, device=device),
                           torch.stack(codes).float())
    return HeadTargets(heatmap, torch.zeros(0, dtype=torch.int64, device=device),
                       torch.zeros(0, dtype=torch.int64, device=device),
                       torch.zeros((0, CODE_SIZE), dtype=torch.float32, device=device))


def decode_boxes(codes: torch.Tensor, voxel_indices: torch.Tensor, cell_size: Sequence[float],
                 origin: Sequence[float]) -> torch.Tensor:
    """Inverse of the regression code: (P, 10) codes at voxels (P, 3) batch, y, x → (P, 9) boxes."""
    ix, iy = voxel_indices[:, 2].to(codes.dtype), voxel_indices[:, 1].to(codes.dtype)
    x = (ix + 0.5 + codes[:, 0]) * cell_size[0] + origin[0]
    y = (iy + 0.5 + codes[:, 1]) * cell_size[1] + origin[1]
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


