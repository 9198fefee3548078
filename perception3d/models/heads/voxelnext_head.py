"""VoxelNeXt's fully sparse head: per class group, branches over the occupied BEV voxels predict a heatmap and
a box code; decoding picks boxes by top-K + rotated NMS, or NMS-free by the sparse local maximum."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import spconv.pytorch as spconv
import torch
from torch import nn

from ...datasets.classes import CLASSES
from ...ops import nms_bev, sparse_local_max
from ...registry import MODELS
from ..sparse import TORCH_NORM, SubMConv2d, norm_act
from .targets import CODE_SIZE, assign_targets, decode_boxes, focal_loss

NUSCENES_GROUPS = (("car",), ("truck", "construction_vehicle"), ("bus", "trailer"), ("barrier",),
                   ("motorcycle", "bicycle"), ("pedestrian", "traffic_cone"))
BRANCHES = (("center", 2), ("center_z", 1), ("dim", 3), ("rot", 2), ("vel", 2))


@dataclass
class Detections:
    """Boxes of one sample: ``boxes`` float (N, 9) in our convention, ``scores`` (N,), ``labels`` int64 (N,),
    ``voxels`` int (N, 2): the (y, x) BEV cell at the head's stride each box was decoded from, ``voxel_xy``
    float (N, 2): that cell's centre (x, y) in the same frame as the boxes (m), which tracking associates."""

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    voxels: torch.Tensor
    voxel_xy: torch.Tensor


class SparseBranches(nn.Module):
    """Every branch of every class group, as OpenPCDet's ``SeparateHead`` (NUM_HM_CONV / num_conv 2): a hidden
    layer 128 → 128 (kernel ``kernel``) + BatchNorm1d (torch's defaults) + ReLU, then a 1×1 layer with bias to
    the branch's outputs.

    The hidden layers of all branches read the same input, so they run as one layer with ``channels ×
    branches`` outputs, each branch owning its slice: the same maths and parameters as separate layers. A 1×1
    submanifold convolution is a per-voxel linear map, so with ``kernel`` 1 the hidden layer is ``nn.Linear``
    with a bias (OpenPCDet's USE_BIAS_BEFORE_NORM), as is every output layer: identical maths, independent of
    how a spconv version lays out a 1×1 weight, and no biased spconv layer (spconv's CPU path refuses bias in
    eval mode). With ``kernel`` 3 the hidden layer is a SubMConv2d without bias (see ``models/sparse.py``).
    Branches listed in ``regression`` are initialised with kaiming normal weights and zero biases; the others
    keep the layers' defaults (what spconv and torch give), and ``bias_init`` sets each output layer's bias.
    """

    def __init__(self, channels: int, outputs: Sequence[int], kernel: int, bias_init: Sequence[float],
                 regression: Sequence[bool]):
        super().__init__()
        width = channels * len(outputs)
        self.channels = channels
        if kernel == 1:
            self.hidden = nn.Linear(channels, width)
        else:
            self.hidden = SubMConv2d(channels, width, kernel, padding=kernel // 2, bias=False, indice_key="head")
        self.norm_act = nn.Sequential(*norm_act(width, TORCH_NORM))
        self.out = nn.ModuleList(nn.Linear(channels, n) for n in outputs)
        for b, (layer, bias, kaiming) in enumerate(zip(self.out, bias_init, regression)):
            if kaiming:
                rows = slice(b * channels, (b + 1) * channels)
                nn.init.kaiming_normal_(self.hidden.weight.data[rows])
                if isinstance(self.hidden, nn.Linear):
                    nn.init.constant_(self.hidden.bias.data[rows], 0.0)
                nn.init.kaiming_normal_(layer.weight.data)
            nn.init.constant_(layer.bias, bias)

    def forward(self, x: spconv.SparseConvTensor) -> List[torch.Tensor]:
        """(M, channels) sparse features → one (M, outputs[i]) tensor per branch."""
        hidden = self.hidden(x.features) if isinstance(self.hidden, nn.Linear) else self.hidden(x).features
        hidden = self.norm_act(hidden).split(self.channels, dim=1)
        return [layer(h) for layer, h in zip(self.out, hidden)]


@MODELS.register_module()
class VoxelNeXtHead(nn.Module):
    """Class-grouped sparse head over a stride-``stride`` BEV SparseConvTensor, as OpenPCDet's
    ``VoxelNeXtHead`` (``pcdet/models/dense_heads/voxelnext_head.py``).

    Args:
        in_channels: BEV feature width. voxel_size, point_cloud_range: of the voxelizer (m).
        class_groups: class names per group (nuScenes' six by default); classes: the dataset's class order.
        head_kernel: kernel of each branch's hidden layer (KERNEL_SIZE_HEAD; VoxelNeXt: 1 or 3).
        min_overlap, min_radius, max_objects: GAUSSIAN_OVERLAP, MIN_RADIUS, NUM_MAX_OBJS of the targets.
        loc_weight, code_weights: the box loss's weight and per-code weights, over center (2), center_z, dim
            (3), rot (2), vel (2) (LOSS_WEIGHTS; VoxelNeXt's yaml: heading 0.2, velocity 1).
        decode: "nms" (top-K over voxels × classes, centre range, score threshold, rotated NMS per group) or
            "local_max" (keep a candidate only where its score is the local maximum among occupied voxels: no
            NMS). max_objects is also the top-K (MAX_OBJ_PER_SAMPLE); post_center_range (x, y, z min, then
            max, m) bounds decoded centres (POST_CENTER_LIMIT_RANGE; default: the point cloud range).
    """

    def __init__(self, in_channels: int, voxel_size: Sequence[float], point_cloud_range: Sequence[float],
                 stride: int = 8, class_groups: Sequence[Sequence[str]] = NUSCENES_GROUPS,
                 classes: Sequence[str] = CLASSES, head_kernel: int = 3, min_overlap: float = 0.1,
                 min_radius: int = 2, loc_weight: float = 0.25,
                 code_weights: Sequence[float] = (1, 1, 1, 1, 1, 1, 0.2, 0.2, 1, 1),
                 decode: str = "nms", max_objects: int = 500, score_thresh: float = 0.1, nms_iou: float = 0.2,
                 nms_pre_max: int = 1000, nms_post_max: int = 83, local_max_kernels: Sequence[int] = (3,) * 6,
                 post_center_range: Optional[Sequence[float]] = None):
        super().__init__()
        unknown = {c for g in class_groups for c in g} - set(classes)
        if unknown:
            raise ValueError(f"class_groups name classes not in classes: {sorted(unknown)}")
        if decode not in ("nms", "local_max"):
            raise ValueError(f"decode must be 'nms' or 'local_max', got {decode!r}")
        if len(local_max_kernels) != len(class_groups):
            raise ValueError(f"local_max_kernels needs one kernel size per class group ({len(class_groups)})")
        if len(code_weights) != CODE_SIZE:
            raise ValueError(f"code_weights needs {CODE_SIZE} weights (center 2, center_z, dim 3, rot 2, vel 2), "
                             f"got {len(code_weights)}")
        if post_center_range is not None and len(post_center_range) != 6:
            raise ValueError(f"post_center_range must be [x_min, y_min, z_min, x_max, y_max, z_max], "
                             f"got {post_center_range}")
        self.groups = [[list(classes).index(c) for c in g] for g in class_groups]
        self.cell = (voxel_size[0] * stride, voxel_size[1] * stride)
        self.origin = (point_cloud_range[0], point_cloud_range[1])
        self.post_center_range = list(point_cloud_range if post_center_range is None else post_center_range)
        self.min_overlap, self.min_radius, self.loc_weight = min_overlap, min_radius, loc_weight
        self.register_buffer("code_weights", torch.tensor(code_weights, dtype=torch.float32), persistent=False)
        self.decode_mode, self.max_objects, self.score_thresh = decode, max_objects, score_thresh
        self.nms_iou, self.nms_pre_max, self.nms_post_max = nms_iou, nms_pre_max, nms_post_max
        self.local_max_kernels = list(local_max_kernels)
        # per group: hm (one channel per class, bias -2.19), then the box branches of BRANCHES
        outputs, bias, regression = [], [], []
        for group in self.groups:
            outputs += [len(group)] + [size for _, size in BRANCHES]
            bias += [-2.19] + [0.0] * len(BRANCHES)
            regression += [False] + [True] * len(BRANCHES)
        self.branches = SparseBranches(in_channels, outputs, head_kernel, bias, regression)

    def forward(self, x: spconv.SparseConvTensor) -> List[Dict[str, torch.Tensor]]:
        """Per group: ``hm`` logits (M, K) and ``code`` (M, 10) at the M voxels of ``x`` (centre offset in cells,
        z, log size, cos, sin, vx, vy)."""
        per_branch = self.branches(x)
        n = 1 + len(BRANCHES)
        return [{"hm": per_branch[g * n], "code": torch.cat(per_branch[g * n + 1:(g + 1) * n], dim=1)}
                for g in range(len(self.groups))]

    def loss(self, x: spconv.SparseConvTensor, gt_boxes: Sequence[torch.Tensor],
             gt_labels: Sequence[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Focal heatmap loss (per positive) and weighted L1 box loss (per object), summed over the groups."""
        outs = self(x)
        loss_cls = x.features.new_zeros(())
        loss_box = x.features.new_zeros(())
        for group, out in zip(self.groups, outs):
            t = assign_targets(x.indices, gt_boxes, gt_labels, group, self.cell, self.origin, x.spatial_shape,
                               self.min_overlap, self.min_radius, self.max_objects)
            loss_cls = loss_cls + focal_loss(out["hm"], t.heatmap)
            if len(t.positive):
                err = (out["code"][t.positive] - t.regression).abs() * self.code_weights
                loss_box = loss_box + err.sum() / len(t.positive)
        return {"loss_heatmap": loss_cls, "loss_bbox": self.loc_weight * loss_box}

    @torch.no_grad()
    def predict(self, x: spconv.SparseConvTensor) -> List[Detections]:
        """Boxes per sample of the batch, by the configured decoding."""
        return self.decode(x.indices, self(x), x.batch_size)

    @torch.no_grad()
    def decode(self, indices: torch.Tensor, outs: List[Dict[str, torch.Tensor]], batch_size: int) -> List[Detections]:
        """The head's outputs at the voxels ``indices`` (M, 3: batch, y, x) → one Detections per sample."""
        results = []
        for b in range(batch_size):
            rows = torch.nonzero(indices[:, 0] == b).squeeze(1)
            found = [self._decode_group(indices[rows], out["hm"][rows].sigmoid(), out["code"][rows], group, g)
                     for g, (group, out) in enumerate(zip(self.groups, outs))]
            results.append(Detections(*(torch.cat(parts) for parts in zip(*found))))
        return results

    def _top_k(self, prob: torch.Tensor):
        """OpenPCDet's ``_topk_1d`` (nuscenes=True): the best ``max_objects`` voxels of each class, then the best
        ``max_objects`` of those → scores, voxel rows, channels (its class index is ``// K``, wrong when a sample
        has fewer than K voxels; here ``// min(K, M)``)."""
        per_class = min(self.max_objects, prob.shape[0])
        top_scores, top_voxels = torch.topk(prob.t(), per_class)  # (K_classes, per_class)
        scores, flat = torch.topk(top_scores.reshape(-1), min(self.max_objects, top_scores.numel()))
        return scores, top_voxels.reshape(-1)[flat], flat // per_class

    def _decode_group(self, indices, prob, code, group, g):
        if self.decode_mode == "local_max":
            prob = prob * sparse_local_max(indices, prob, self.local_max_kernels[g])
        if len(prob):
            scores, voxel, channel = self._top_k(prob)
        else:
            scores, voxel, channel = prob.new_zeros(0), indices.new_zeros(0).long(), indices.new_zeros(0).long()
        boxes = decode_boxes(code[voxel].float(), indices[voxel], self.cell, self.origin)
        limit = torch.tensor(self.post_center_range, device=boxes.device, dtype=boxes.dtype)
        keep = ((boxes[:, :3] >= limit[:3]) & (boxes[:, :3] <= limit[3:])).all(dim=1) & (scores > self.score_thresh)
        boxes, scores, channel, voxel = boxes[keep], scores[keep], channel[keep], voxel[keep]
        if self.decode_mode == "nms" and len(boxes):
            kept = nms_bev(boxes, scores, self.nms_iou, self.nms_pre_max, self.nms_post_max)
            boxes, scores, channel, voxel = boxes[kept], scores[kept], channel[kept], voxel[kept]
        labels = torch.tensor(group, device=boxes.device)[channel]
        cells = indices[voxel][:, 1:]
        centres = torch.stack([(cells[:, 1] + 0.5) * self.cell[0] + self.origin[0],
                               (cells[:, 0] + 0.5) * self.cell[1] + self.origin[1]], 1).to(boxes.dtype)
        return boxes, scores, labels, cells, centres
