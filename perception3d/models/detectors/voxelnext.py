"""VoxelNeXt as an mmengine model: a data preprocessor that voxelizes the batch, then backbone and sparse head."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseDataPreprocessor, BaseModel

from ...registry import MODELS
from ..heads import Detections
from ..heads.targets import CODE_SIZE
from ..sparse import set_sparse_engine
from ..voxelizers import VoxelBatch


@MODELS.register_module()
class VoxelDataPreprocessor(BaseDataPreprocessor):
    """Moves a collated batch to the model's device and voxelizes its clouds.

    In: ``{"inputs": {"points": [float (N_i, C) tensors]}, "data_samples": [SampleTargets, ...]}`` (mmengine's
    ``pseudo_collate`` of :class:`~perception3d.datasets.transforms.formatting.Pack` outputs).
    Out: the same, with ``inputs["voxels"]`` a :class:`VoxelBatch`. ``voxelizer`` is a Voxelizer config; its
    voxel cap follows the model's train/eval mode.
    """

    def __init__(self, voxelizer: dict):
        super().__init__()
        self.voxelizer = MODELS.build(voxelizer)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data["inputs"]
        points = inputs.get("points") if isinstance(inputs, dict) else None
        if not points:
            raise ValueError("VoxelDataPreprocessor expects inputs={'points': [tensor, ...]} with one cloud per sample")
        inputs = dict(inputs, voxels=self.voxelizer(list(points)))
        return {"inputs": inputs, "data_samples": data.get("data_samples")}


@MODELS.register_module()
class VoxelNeXt(BaseModel):
    """Fully sparse detector (Chen et al., CVPR 2023): voxels → sparse ResNet → class-grouped sparse head.

    ``forward(inputs, data_samples, mode)``: "loss" → dict of scalar losses (``gt_boxes``/``gt_labels`` of each
    sample); "predict" → one :class:`Detections` per sample, boxes (N, 9) in the sample's (augmented) LiDAR
    frame; "tensor" → the head's raw outputs per class group. A batch without a voxel (every point outside
    ``point_cloud_range``) predicts no boxes and trains no step (warned); a sample without one is left out of the
    loss (warned). ``sparse_engine``: "auto" (ours on the CPU, spconv on CUDA), "perception3d" or "spconv"
    (:mod:`perception3d.models.sparse`).
    """

    def __init__(self, backbone: dict, head: dict, data_preprocessor: dict, init_cfg: Optional[dict] = None,
                 sparse_engine: str = "auto"):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        voxelizer = self.data_preprocessor.voxelizer
        geometry = dict(voxel_size=voxelizer.voxel_size, point_cloud_range=voxelizer.point_cloud_range)
        self.backbone = MODELS.build(dict(backbone, **geometry) if backbone.get("focal") else backbone)
        self.head = MODELS.build(dict(head, voxel_size=voxelizer.voxel_size,
                                      point_cloud_range=voxelizer.point_cloud_range, stride=self.backbone.stride))
        set_sparse_engine(self, sparse_engine)

    def extract_feat(self, voxels: VoxelBatch):
        """VoxelBatch → sparse BEV features at the backbone's stride."""
        return self.backbone(voxels)

    def train_step(self, data, optim_wrapper) -> Dict[str, torch.Tensor]:
        """mmengine's train step (one process), skipped with a warning when the batch holds no voxel."""
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            if not len(data["inputs"]["voxels"].coords):
                print_log("a training batch has no point inside point_cloud_range: step skipped", logger="current",
                          level=30)
                return {}
            losses = self._run_forward(data, mode="loss")
        parsed_losses, log_vars = self.parse_losses(losses)
        optim_wrapper.update_params(parsed_losses)
        return log_vars

    def forward(self, inputs: dict, data_samples: Optional[Sequence] = None,
                mode: str = "tensor") -> Union[Dict[str, torch.Tensor], List[Detections], list]:
        voxels = inputs["voxels"]
        if mode not in ("loss", "predict", "tensor"):
            raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")
        if mode == "loss" and data_samples is None:
            raise ValueError("mode='loss' needs data_samples with gt_boxes and gt_labels")
        if not len(voxels.coords):  # spconv cannot convolve an empty tensor
            return self._without_voxels(voxels.batch_size, mode)
        if mode == "loss":
            empty = voxels.batch_size - len(torch.unique(voxels.coords[:, 0]))
            if empty:
                print_log(f"{empty} training sample(s) without a point inside point_cloud_range left out of the "
                          f"loss", logger="current", level=30)
            device = voxels.features.device
            gt_boxes = [s.gt_boxes.to(device) for s in data_samples]
            bev, backbone_losses = self.backbone.forward_with_losses(voxels, gt_boxes)
            return {**self.head.loss(bev, gt_boxes, [s.gt_labels.to(device) for s in data_samples]),
                    **backbone_losses}
        bev = self.extract_feat(voxels)
        if mode == "predict":
            return self.head.predict(bev)
        return self.head(bev)

    def _without_voxels(self, batch_size: int, mode: str):
        """What ``forward`` gives for a batch without a voxel: no boxes per sample ("predict"), no head rows
        ("tensor"), or zero losses that reach every parameter with zero gradients ("loss": under DDP every
        process must still take part in the backward pass)."""
        print_log("a batch has no point inside point_cloud_range: no voxel, no boxes", logger="current", level=30)
        anchor = next(self.parameters())
        if mode == "predict":
            return [Detections(anchor.new_zeros((0, 9)), anchor.new_zeros(0), anchor.new_zeros(0, dtype=torch.long),
                               anchor.new_zeros((0, 2), dtype=torch.int32), anchor.new_zeros((0, 2)))
                    for _ in range(batch_size)]
        if mode == "tensor":
            return [{"hm": anchor.new_zeros((0, len(group))), "code": anchor.new_zeros((0, CODE_SIZE))}
                    for group in self.head.groups]
        zero = sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.0
        return {"loss_heatmap": zero, "loss_bbox": zero.clone()}
