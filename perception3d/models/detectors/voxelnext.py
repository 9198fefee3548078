"""VoxelNeXt as an mmengine model: a data preprocessor that voxelizes the batch, then backbone and sparse head."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor, BaseModel

from ...registry import MODELS
from ..heads import Detections
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
    frame; "tensor" → the head's raw outputs per class group.
    """

    def __init__(self, backbone: dict, head: dict, data_preprocessor: dict, init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        voxelizer = self.data_preprocessor.voxelizer
        self.backbone = MODELS.build(backbone)
        self.head = MODELS.build(dict(head, voxel_size=voxelizer.voxel_size,
                                      point_cloud_range=voxelizer.point_cloud_range, stride=self.backbone.stride))

    def extract_feat(self, voxels: VoxelBatch):
        """VoxelBatch → sparse BEV features at the backbone's stride."""
        return self.backbone(voxels)

    def forward(self, inputs: dict, data_samples: Optional[Sequence] = None,
                mode: str = "tensor") -> Union[Dict[str, torch.Tensor], List[Detections], list]:
        bev = self.extract_feat(inputs["voxels"])
        if mode == "loss":
            if data_samples is None:
                raise ValueError("mode='loss' needs data_samples with gt_boxes and gt_labels")
            device = bev.features.device
            return self.head.loss(bev, [s.gt_boxes.to(device) for s in data_samples],
                                  [s.gt_labels.to(device) for s in data_samples])
        if mode == "predict":
            return self.head.predict(bev)
        if mode == "tensor":
            return self.head(bev)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")
