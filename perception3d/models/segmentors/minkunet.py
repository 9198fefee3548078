"""MinkUNet (Choy et al., "4D Spatio-Temporal ConvNets", CVPR 2019) for LiDAR semantic segmentation, in the
layout SPVNAS and mmdetection3d use, on spconv: points → voxels (mean of their points) → sparse U-Net → a
linear classifier per voxel → the logits of each point's voxel.

Reference: mmdetection3d (v1.4, open-mmlab/mmdetection3d@fe25f7a):
``mmdet3d/models/backbones/minkunet_backbone.py`` (``MinkUNetBackbone``, spconv branch ``sparseconv_backend=
'spconv'``), ``mmdet3d/models/layers/sparse_block.py`` and ``torchsparse_block.py`` (the residual blocks),
``mmdet3d/models/decode_heads/minkunet_head.py`` (``MinkUNetHead``), ``mmdet3d/models/segmentors/minkunet.py``,
the ``voxel_type='minkunet'`` branch of ``Det3DDataPreprocessor.voxelize``
(``mmdet3d/models/data_preprocessors/data_preprocessor.py``) and ``configs/_base_/models/minkunet.py``
(MinkUNet18-W32: the defaults below).

Shapes: the network is ``conv_input`` (2 × SubMConv 3³, stride 1) → ``num_stages`` encoder stages (each a
kernel-2 stride-2 SparseConv, then residual blocks; strides 2, 4, 8, 16) → as many decoder stages (each a
kernel-2 SparseInverseConv back to the stride of the matching encoder input, the skip features concatenated
after the upsampled ones, then residual blocks) → per-voxel features at stride 1.

Written for this project, not copied; see the module's comments for where it deliberately differs.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
import spconv.pytorch as spconv
import torch
from torch import nn

from ...ops import scatter_mean
from ...registry import MODELS
from ..sparse import TORCH_NORM, SparseConv3d, SparseInverseConv3d, SubMConv3d

BLOCK_TYPES = ("basic", "bottleneck")


def conv_bn_relu(conv: spconv.SparseModule, channels: int) -> spconv.SparseSequential:
    """``conv`` (built without bias) + BatchNorm1d (torch's defaults: eps 1e-5, momentum 0.1, as mmdet3d's
    ``BN1d`` / ``TorchSparseBN``) + ReLU: mmdet3d's ``make_sparse_convmodule`` / ``TorchSparseConvModule``."""
    return spconv.SparseSequential(conv, nn.BatchNorm1d(channels, **TORCH_NORM), nn.ReLU())


class Shortcut(nn.Module):
    """The projection shortcut of a residual block whose width changes: a 1×1×1 convolution without bias + BN
    (mmdet3d: ``residual_branch`` = SubMConv3d kernel 1 + BN1d, or torchsparse's ``downsample``). A 1×1×1
    submanifold convolution is a per-voxel linear map, so it runs as ``nn.Linear`` without bias on the
    features: the same maths and parameter count, without spconv's rulebook machinery."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.linear = nn.Linear(cin, cout, bias=False)
        self.bn = nn.BatchNorm1d(cout, **TORCH_NORM)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(features))


class BasicBlock(spconv.SparseModule):
    """ResNet basic block on the voxels of one stride: SubMConv 3³ (cin → cout) + BN + ReLU, SubMConv 3³
    (cout → cout) + BN, plus the input (through :class:`Shortcut` when cin != cout), then ReLU.
    mmdet3d: ``SparseBasicBlock`` (sparse_block.py) / ``TorchSparseBasicBlock`` (torchsparse_block.py)."""

    def __init__(self, cin: int, cout: int, key: str):
        super().__init__()
        self.conv1 = SubMConv3d(cin, cout, 3, padding=1, bias=False, indice_key=key)
        self.bn1 = nn.BatchNorm1d(cout, **TORCH_NORM)
        self.conv2 = SubMConv3d(cout, cout, 3, padding=1, bias=False, indice_key=key)
        self.bn2 = nn.BatchNorm1d(cout, **TORCH_NORM)
        self.shortcut = Shortcut(cin, cout) if cin != cout else None
        self.relu = nn.ReLU()

    def forward(self, x: spconv.SparseConvTensor) -> spconv.SparseConvTensor:
        identity = x.features if self.shortcut is None else self.shortcut(x.features)
        out = self.conv1(x)
        out = out.replace_feature(self.relu(self.bn1(out.features)))
        out = self.conv2(out)
        return out.replace_feature(self.relu(self.bn2(out.features) + identity))


class Bottleneck(spconv.SparseModule):
    """Bottleneck block without expansion, as mmdet3d's ``TorchSparseBottleneck`` (torchsparse_block.py):
    1×1×1 (cin → cout) + BN + ReLU, SubMConv 3³ (cout → cout) + BN + ReLU, 1×1×1 (cout → cout) + BN, plus the
    input (through :class:`Shortcut` when cin != cout), then ReLU. The 1×1×1 layers are ``nn.Linear`` without
    bias (see :class:`Shortcut`). mmdet3d's spconv branch uses mmdet's ``Bottleneck`` instead, whose 4×
    expansion makes its outputs 4 × cout wide and cannot chain in this U-Net; we follow the torchsparse one."""

    def __init__(self, cin: int, cout: int, key: str):
        super().__init__()
        self.linear1 = nn.Linear(cin, cout, bias=False)
        self.bn1 = nn.BatchNorm1d(cout, **TORCH_NORM)
        self.conv2 = SubMConv3d(cout, cout, 3, padding=1, bias=False, indice_key=key)
        self.bn2 = nn.BatchNorm1d(cout, **TORCH_NORM)
        self.linear3 = nn.Linear(cout, cout, bias=False)
        self.bn3 = nn.BatchNorm1d(cout, **TORCH_NORM)
        self.shortcut = Shortcut(cin, cout) if cin != cout else None
        self.relu = nn.ReLU()

    def forward(self, x: spconv.SparseConvTensor) -> spconv.SparseConvTensor:
        identity = x.features if self.shortcut is None else self.shortcut(x.features)
        out = self.conv2(x.replace_feature(self.relu(self.bn1(self.linear1(x.features)))))
        features = self.bn3(self.linear3(self.relu(self.bn2(out.features))))
        return out.replace_feature(self.relu(features + identity))


def _positive_ints(value, name: str) -> Tuple[int, ...]:
    values = tuple(value) if isinstance(value, (list, tuple)) else ()
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in values):
        raise ValueError(f"{name} must be a non-empty sequence of integers >= 1, got {value!r}")
    return tuple(int(v) for v in values)


@MODELS.register_module()
class MinkUNet(nn.Module):
    """MinkUNet semantic segmentation: a batch of point clouds → one row of class logits per point.

    Args:
        in_channels: columns of every input point, all of them features (x, y, z in m first, then e.g.
            intensity); mmdet3d's ``in_channels=4`` (x, y, z, intensity).
        num_classes: logits per point (``MinkUNetHead.num_classes``).
        voxel_size: (x, y, z) edge of a voxel in m; mmdet3d's SemanticKITTI recipe 0.05, its nuScenes one 0.1.
        base_channels: width of ``conv_input`` (mmdet3d ``base_channels=32``).
        encoder_channels, decoder_channels: width of each encoder / decoder stage, one per stage (mmdet3d
            ``[32, 64, 128, 256]`` / ``[256, 128, 96, 96]``); the classifier reads ``decoder_channels[-1]``.
        encoder_blocks, decoder_blocks: residual blocks per stage, >= 1 (MinkUNet18: ``[2, 2, 2, 2]`` both;
            MinkUNet34: encoder ``[2, 3, 4, 6]``).
        block_type: "basic" (:class:`BasicBlock`) or "bottleneck" (:class:`Bottleneck`).

    There is no point-cloud range: as mmdet3d's ``voxel_type='minkunet'`` quantization, every point goes to
    the cell ``floor(xyz / voxel_size)`` of an unbounded grid, so every point gets logits.
    """

    def __init__(self, in_channels: int, num_classes: int, voxel_size: Sequence[float], base_channels: int = 32,
                 encoder_channels: Sequence[int] = (32, 64, 128, 256),
                 decoder_channels: Sequence[int] = (256, 128, 96, 96),
                 encoder_blocks: Sequence[int] = (2, 2, 2, 2), decoder_blocks: Sequence[int] = (2, 2, 2, 2),
                 block_type: str = "basic"):
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, (int, np.integer)) or in_channels < 3:
            raise ValueError(f"in_channels must be an integer >= 3 (x, y, z, then features), got {in_channels!r}")
        (num_classes,) = _positive_ints([num_classes], "num_classes")
        (base_channels,) = _positive_ints([base_channels], "base_channels")
        vs = np.asarray(voxel_size, dtype=np.float64) if isinstance(voxel_size, (list, tuple)) else np.zeros(0)
        if vs.shape != (3,) or not np.isfinite(vs).all() or not (vs > 0).all():
            raise ValueError(f"voxel_size must be 3 positive numbers (x, y, z in m), got {voxel_size!r}")
        encoder_channels = _positive_ints(encoder_channels, "encoder_channels")
        decoder_channels = _positive_ints(decoder_channels, "decoder_channels")
        encoder_blocks = _positive_ints(encoder_blocks, "encoder_blocks")
        decoder_blocks = _positive_ints(decoder_blocks, "decoder_blocks")
        lengths = {"encoder_channels": len(encoder_channels), "decoder_channels": len(decoder_channels),
                   "encoder_blocks": len(encoder_blocks), "decoder_blocks": len(decoder_blocks)}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"encoder_channels, decoder_channels, encoder_blocks and decoder_blocks need one entry "
                             f"per stage, got lengths {lengths}")
        if block_type not in BLOCK_TYPES:
            raise ValueError(f"block_type must be one of {BLOCK_TYPES}, got {block_type!r}")
        block = BasicBlock if block_type == "basic" else Bottleneck

        self.in_channels, self.num_classes = int(in_channels), num_classes
        self.voxel_size = [float(v) for v in vs]
        self.num_stages = stages = len(encoder_channels)

        # minkunet_backbone.py ``conv_input``: two SubMConv3d 3³ (in → base → base) + BN + ReLU, key 'subm0'
        self.conv_input = spconv.SparseSequential(
            conv_bn_relu(SubMConv3d(in_channels, base_channels, 3, padding=1, bias=False, indice_key="subm0"),
                         base_channels),
            conv_bn_relu(SubMConv3d(base_channels, base_channels, 3, padding=1, bias=False, indice_key="subm0"),
                         base_channels))

        # ``encoder``: stage i halves the resolution with a SparseConv3d kernel 2 stride 2 that keeps the width
        # (``encoder_conv(encoder_channels[i], encoder_channels[i], kernel_size=2, stride=2)``, key
        # 'spconv{i+1}'), then its blocks; the first block changes the width (key 'subm{i+1}')
        enc = (base_channels,) + encoder_channels
        self.encoder = nn.ModuleList()
        for i in range(stages):
            down = conv_bn_relu(SparseConv3d(enc[i], enc[i], 2, stride=2, bias=False, indice_key=f"spconv{i + 1}"),
                                enc[i])
            blocks = [block(enc[i] if j == 0 else enc[i + 1], enc[i + 1], f"subm{i + 1}")
                      for j in range(encoder_blocks[i])]
            self.encoder.append(spconv.SparseSequential(down, *blocks))

        # ``decoder``: stage i undoes encoder stage (stages - i) with a SparseInverseConv3d kernel 2 on that
        # stage's rulebook (key 'spconv{stages-i}'; mmdet3d's ``decoder_conv(..., transposed=True)``), the skip
        # (the encoder's input at that stride, enc[stages-1-i] wide) is concatenated after the upsampled
        # features, then blocks (the first one narrows dec[i+1] + skip → dec[i+1]; key 'subm{stages-1-i}')
        dec = (enc[-1],) + decoder_channels
        self.decoder_up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for i in range(stages):
            skip = enc[stages - 1 - i]
            self.decoder_up.append(conv_bn_relu(SparseInverseConv3d(
                dec[i], dec[i + 1], 2, bias=False, indice_key=f"spconv{stages - i}"), dec[i + 1]))
            self.decoder.append(spconv.SparseSequential(*[
                block(dec[i + 1] + skip if j == 0 else dec[i + 1], dec[i + 1], f"subm{stages - 1 - i}")
                for j in range(decoder_blocks[i])]))

        # minkunet_head.py ``build_conv_seg``: nn.Linear(channels, num_classes), no dropout (the configs'
        # ``dropout_ratio=0``), initialised N(0, 0.01²) with zero bias (decode_head.py ``init_weights``)
        self.classifier = nn.Linear(dec[-1], num_classes)
        nn.init.normal_(self.classifier.weight, mean=0.0, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    # ------------------------------------------------------------------------------------------------ voxels
    def _check_points(self, points) -> None:
        if not isinstance(points, (list, tuple)) or not points:
            raise ValueError(f"MinkUNet expects a non-empty list of (N_i, {self.in_channels}) point tensors, got "
                             f"{type(points).__name__}")
        for i, cloud in enumerate(points):
            if not isinstance(cloud, torch.Tensor) or cloud.dim() != 2 or not cloud.is_floating_point():
                raise ValueError(f"points[{i}] must be a float tensor (N, {self.in_channels}), got "
                                 f"{getattr(cloud, 'dtype', type(cloud).__name__)} "
                                 f"{tuple(getattr(cloud, 'shape', ()))}")
            if cloud.shape[1] != self.in_channels:
                raise ValueError(f"MinkUNet expects in_channels={self.in_channels} point columns, got "
                                 f"{cloud.shape[1]} (points[{i}] has shape {tuple(cloud.shape)})")
            if not torch.isfinite(cloud[:, :3]).all():
                raise ValueError(f"points[{i}] has non-finite x, y, z coordinates")

    def voxelize(self, points: List[torch.Tensor]) -> Tuple[spconv.SparseConvTensor, torch.Tensor]:
        """Points → a SparseConvTensor of the batch's occupied voxels and each point's voxel.

        A point (x, y, z) m goes to the cell ``floor(xyz / voxel_size)`` (mmdet3d rounds, ``round(xyz /
        voxel_size)``: the same grid shifted by half a voxel). Each cloud's cells are shifted by its minimum
        cell rounded down to a multiple of 2^num_stages (mmdet3d shifts by the minimum itself), so the cells
        start near 0 and the stride-2 layers pair the same cells whatever the cloud's extent; spconv's grid is
        the batch's largest extent rounded up to a multiple of 2^num_stages (a kernel-2 stride-2 layer drops
        the last row of an odd-sized grid). A voxel's features are the mean of its points' ``in_channels``
        columns (mmdet3d keeps one point per voxel: :func:`np.unique`'s first, which depends on the order of
        the points). ``ops.voxelize_dynamic`` is not used: it needs a fixed range and drops the points outside.
        The spconv grid is a hash of the occupied cells, so a far point costs one voxel, not a larger grid.

        Returns the SparseConvTensor (features float (M, in_channels), indices int32 (M, 4) as batch, z, y,
        x) and ``point_voxel`` int64 (sum N_i,): the row of each point's voxel in it, the clouds' points in
        order.
        """
        step = 2 ** self.num_stages
        device = points[0].device
        dtype = self.classifier.weight.dtype
        features, indices, point_voxel, extents = [], [], [], []
        offset = 0
        for b, cloud in enumerate(points):
            if len(cloud) == 0:
                continue
            vs = cloud.new_tensor(self.voxel_size)
            cells = torch.floor(cloud[:, :3].detach() / vs).long()
            origin = torch.div(cells.min(dim=0).values, step, rounding_mode="floor") * step
            cells -= origin
            extent = cells.max(dim=0).values + 1  # x, y, z
            if float(np.prod(extent.tolist(), dtype=np.float64)) >= 2 ** 62 or int(extent.max()) >= 2 ** 30:
                raise ValueError(f"points[{b}] spans {extent.tolist()} voxels of voxel_size {self.voxel_size} "
                                 f"m (x, y, z): too many cells to index")
            key = (cells[:, 2] * extent[1] + cells[:, 1]) * extent[0] + cells[:, 0]
            unique, inverse = torch.unique(key, return_inverse=True)
            z, rest = unique // (extent[1] * extent[0]), unique % (extent[1] * extent[0])
            zyx = torch.stack([z, rest // extent[0], rest % extent[0]], dim=1)
            features.append(scatter_mean(cloud, inverse, len(unique)).to(dtype))
            indices.append(torch.cat([zyx.new_full((len(zyx), 1), b), zyx], dim=1).int())
            point_voxel.append(inverse + offset)
            extents.append(extent.flip(0))  # z, y, x
            offset += len(unique)
        if not features:
            return None, torch.zeros(0, dtype=torch.long, device=device)
        shape = torch.stack(extents).max(dim=0).values
        shape = ((shape + step - 1) // step * step).tolist()
        x = spconv.SparseConvTensor(torch.cat(features), torch.cat(indices), shape, len(points))
        return x, torch.cat(point_voxel)

    # ----------------------------------------------------------------------------------------------- network
    def extract_features(self, x: spconv.SparseConvTensor) -> torch.Tensor:
        """The U-Net: SparseConvTensor (M voxels, in_channels) → float (M, decoder_channels[-1]) features of
        the same voxels in the same order (minkunet_backbone.py ``forward``)."""
        x = self.conv_input(x)
        skips = [x]
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        for i, (up, blocks) in enumerate(zip(self.decoder_up, self.decoder)):
            x = up(x)
            skip = skips[self.num_stages - 1 - i]
            x = blocks(x.replace_feature(torch.cat([x.features, skip.features], dim=1)))
        return x.features

    def forward(self, points: List[torch.Tensor]) -> List[torch.Tensor]:
        """``points``: one float (N_i, in_channels) tensor per sample, columns x, y, z (m, LiDAR frame) then
        features, all of them the network's input → one float (N_i, num_classes) tensor of logits per sample,
        one row per input point in the input order (the logits of the point's voxel)."""
        self._check_points(points)
        x, point_voxel = self.voxelize(points)
        counts = [len(cloud) for cloud in points]
        if x is None:
            return [cloud.new_zeros((n, self.num_classes), dtype=self.classifier.weight.dtype)
                    for cloud, n in zip(points, counts)]
        # as minkunet_head.py: the classifier runs per voxel, then every point takes its voxel's logits
        # (``seg_logit[data_sample.point2voxel_map]`` in ``MinkUNetHead.predict``)
        voxel_logits = self.classifier(self.extract_features(x))
        return list(voxel_logits[point_voxel].split(counts))
