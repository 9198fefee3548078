"""VoxelNeXt's fully sparse 3D ResNet (Chen et al., CVPR 2023): six stages to stride 32, stages 5 and 6 joined
to stride 8, heights summed into a sparse bird's-eye view. Nothing is ever made dense."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import spconv.pytorch as spconv
import torch
from torch import nn

from ...registry import MODELS
from ..sparse import TORCH_NORM, SparseBasicBlock, down_block, subm_block
from ..voxelizers import VoxelBatch
from .focal_sparse_conv import FocalSparseConv

FOCAL_KEYS = {"stages", "kernel_size", "topk", "threshold", "mask_multi", "enlarge_channels", "loss_weight"}


def join_to_stride8(x4: spconv.SparseConvTensor, x5: spconv.SparseConvTensor,
                    x6: spconv.SparseConvTensor) -> spconv.SparseConvTensor:
    """Stages 5 (stride 16) and 6 (stride 32) moved onto stage 4's stride-8 grid by scaling their indices (×2, ×4)
    and appended to it as more voxels (duplicates allowed: the height compression sums them)."""
    i5, i6 = x5.indices.clone(), x6.indices.clone()
    i5[:, 1:] *= 2
    i6[:, 1:] *= 4
    return spconv.SparseConvTensor(torch.cat([x4.features, x5.features, x6.features]),
                                   torch.cat([x4.indices, i5, i6]), x4.spatial_shape, x4.batch_size)


def height_compression(x: spconv.SparseConvTensor) -> spconv.SparseConvTensor:
    """Sums the features of all voxels sharing (batch, y, x) → a 2D sparse tensor of shape (y, x)."""
    bev = x.indices[:, [0, 2, 3]]
    unique, inverse = torch.unique(bev, dim=0, return_inverse=True)
    features = x.features.new_zeros((len(unique), x.features.shape[1])).index_add_(0, inverse, x.features)
    return spconv.SparseConvTensor(features, unique.int(), list(x.spatial_shape[1:]), x.batch_size)


@MODELS.register_module()
class VoxelNeXtBackbone(nn.Module):
    """Sparse ResNet of VoxelNeXt: (M, C_in) voxels on a (z, y, x) grid → sparse BEV features at stride 8.

    Mirrors OpenPCDet's ``VoxelResBackBone8xVoxelNeXt`` (``pcdet/models/backbones_3d/spconv_backbone_voxelnext.py``):
    conv_input SubMConv3d 3³ (C_in → channels[0]); stage 1 (``conv1``): ``blocks[0]`` SparseBasicBlocks
    (VoxelNeXt: 2); stages 2–6 (``conv2``–``conv6``): SparseConv3d k3 s2 p1 then ``blocks[s]`` blocks; stages 5,
    6 joined to stage 4; height compression (sum); ``conv_out`` SparseConv2d 3×3 and ``shared_conv`` SubMConv2d
    3×3 to ``out_channels``. BN + ReLU after every conv: eps 1e-3, momentum 0.01 (OpenPCDet's ``norm_fn``)
    except ``shared_conv``'s, which keeps BatchNorm1d's defaults as OpenPCDet's does. The sparse grid is the
    voxel grid plus one layer in z (``self.sparse_shape = grid_size[::-1] + [1, 0, 0]``): 40 z cells give
    strided stages of 41 → 21 → 11 → 6 → 3 → 2 layers.

    ``focal``: Focals Conv blocks (:class:`FocalSparseConv`) at the end of the given stages, as OpenPCDet's
    ``VoxelBackBone8xFocal`` puts them at the end of conv1–conv3 (voxel strides 1, 2, 4): a dict with ``stages``
    (1-based, e.g. (1, 2, 3)) and FocalSparseConv's ``kernel_size`` (3 or 5), ``topk``, ``threshold``,
    ``mask_multi``, ``enlarge_channels`` and ``loss_weight`` (the importance loss; it needs ``voxel_size`` and
    ``point_cloud_range``, which the detector passes from its voxelizer).
    """

    def __init__(self, in_channels: int, channels: Sequence[int] = (16, 32, 64, 128, 128, 128),
                 out_channels: int = 128, blocks: Sequence[int] = (2, 2, 2, 2, 2, 2), focal: Optional[dict] = None,
                 voxel_size: Optional[Sequence[float]] = None, point_cloud_range: Optional[Sequence[float]] = None):
        super().__init__()
        if len(channels) != 6 or channels[3] != channels[4] or channels[4] != channels[5]:
            raise ValueError(f"channels must be 6 stage widths with stages 4, 5, 6 equal (they are joined), "
                             f"got {list(channels)}")
        if len(blocks) != 6 or min(blocks) < 0:
            raise ValueError(f"blocks must be 6 counts >= 0 of SparseBasicBlocks per stage, got {list(blocks)}")
        self.conv_input = subm_block(in_channels, channels[0], "subm1")
        stages = [spconv.SparseSequential(*[SparseBasicBlock(channels[0], "res1") for _ in range(blocks[0])])]
        for s in range(1, 6):
            key = f"res{s + 1}"
            stages.append(spconv.SparseSequential(down_block(channels[s - 1], channels[s], f"spconv{s + 1}"),
                                                  *[SparseBasicBlock(channels[s], key) for _ in range(blocks[s])]))
        self.stages = nn.ModuleList(stages)
        self.focal = nn.ModuleDict(self._focal_blocks(focal, channels, voxel_size, point_cloud_range))
        self.conv_out = down_block(channels[3], out_channels, "spconv_bev", dims=2, stride=1)
        self.shared_conv = subm_block(out_channels, out_channels, "subm_bev", dims=2, norm=TORCH_NORM)
        self.out_channels = out_channels
        self.stride = 8

    @staticmethod
    def _focal_blocks(focal: Optional[dict], channels: Sequence[int], voxel_size, point_cloud_range) -> dict:
        """``focal`` config → {stage number as str: FocalSparseConv}, with a clear error for a bad one."""
        if not focal:
            return {}
        unknown = set(focal) - FOCAL_KEYS
        if unknown:
            raise ValueError(f"backbone focal: unknown keys {sorted(unknown)} (known: {sorted(FOCAL_KEYS)})")
        settings = dict(focal)
        stages = settings.pop("stages", (1, 2, 3))
        bad = [s for s in stages if not isinstance(s, int) or not 1 <= s <= 6]
        if bad or len(set(stages)) != len(stages):
            raise ValueError(f"backbone focal stages must be distinct stage numbers 1-6 (the backbone has six "
                             f"stages), got {list(stages)}")
        return {str(s): FocalSparseConv(channels[s - 1], 2 ** (s - 1), f"focal{s}", voxel_size=voxel_size,
                                        point_cloud_range=point_cloud_range, **settings) for s in sorted(stages)}

    def forward(self, voxels: VoxelBatch) -> spconv.SparseConvTensor:
        """VoxelBatch → 2D SparseConvTensor (features (K, out_channels), indices int32 (K, 3) batch, y, x) on the
        stride-8 BEV grid."""
        return self.forward_with_losses(voxels)[0]

    def forward_with_losses(self, voxels: VoxelBatch, gt_boxes: Optional[List[torch.Tensor]] = None
                            ) -> Tuple[spconv.SparseConvTensor, Dict[str, torch.Tensor]]:
        """``forward`` and the backbone's own losses: {"loss_focal": the focal blocks' importance losses summed}
        when they are switched on and ``gt_boxes`` (one (B_i, 9) tensor per sample) are given in training, else
        {}."""
        nz, ny, nx = voxels.spatial_shape
        x = spconv.SparseConvTensor(voxels.features, voxels.coords.int(), [nz + 1, ny, nx], voxels.batch_size)
        x = self.conv_input(x)
        outs, focal_losses = [], []
        for s, stage in enumerate(self.stages, start=1):
            x = stage(x)
            if str(s) in self.focal:
                x, loss = self.focal[str(s)](x, gt_boxes)
                if loss is not None:
                    focal_losses.append(loss)
            outs.append(x)
        bev = height_compression(join_to_stride8(outs[3], outs[4], outs[5]))
        losses = {"loss_focal": sum(focal_losses)} if focal_losses else {}
        return self.shared_conv(self.conv_out(bev)), losses
