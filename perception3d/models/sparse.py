"""spconv conventions in one place: the convolution algorithm follows the tensor's device, and building
blocks with BatchNorm + ReLU as VoxelNeXt uses them (OpenPCDet's ``spconv_backbone_voxelnext.py``).

Convolutions here have no bias: every one is followed by a BatchNorm, which subtracts the batch mean in training
(a bias there gets no gradient) and absorbs a bias into its running mean in eval mode. Where OpenPCDet's layers
have a bias before a BatchNorm, ``tools/convert_checkpoint.py`` folds it into that running mean exactly; spconv's
CPU path refuses biased convolutions in eval mode ("bias and act don't support cpu")."""
from __future__ import annotations

import spconv.pytorch as spconv
import torch
from spconv.core import ConvAlgo
from torch import nn

# spconv's own default for kernels of <= 32 taps on CUDA; its CPU build only has the native algorithm
CUDA_ALGO = ConvAlgo.MaskImplicitGemm


def use_algo_for(module: nn.Module, device: torch.device) -> None:
    """Sets every spconv convolution of ``module`` to the algorithm ``device`` supports: ``ConvAlgo.Native`` on
    the CPU (the default asserts "Torch not compiled with CUDA"), implicit GEMM on CUDA. Weights keep their layout
    (spconv stores KRSC for every algorithm), so a model moves between devices freely."""
    algo = ConvAlgo.Native if device.type == "cpu" else CUDA_ALGO
    for m in module.modules():
        if isinstance(m, spconv.conv.SparseConvolution) and m.algo != algo:
            m.algo = algo


# OpenPCDet's backbone norm_fn: partial(nn.BatchNorm1d, eps=1e-3, momentum=0.01)
BACKBONE_NORM = dict(eps=1e-3, momentum=0.01)
# the BEV shared_conv and the head branches use nn.BatchNorm1d's defaults
TORCH_NORM = dict(eps=1e-5, momentum=0.1)


def norm_act(channels: int, norm: dict = BACKBONE_NORM) -> list:
    """BatchNorm1d (``norm``: eps, momentum) and ReLU, applied to a sparse tensor's features."""
    return [nn.BatchNorm1d(channels, **norm), nn.ReLU()]


def subm_block(cin: int, cout: int, key: str, dims: int = 3, kernel: int = 3,
               norm: dict = BACKBONE_NORM) -> spconv.SparseSequential:
    """SubMConv (no bias) + BN + ReLU."""
    conv = spconv.SubMConv3d if dims == 3 else spconv.SubMConv2d
    return spconv.SparseSequential(conv(cin, cout, kernel, padding=kernel // 2, bias=False, indice_key=key),
                                   *norm_act(cout, norm))


def down_block(cin: int, cout: int, key: str, dims: int = 3, stride: int = 2) -> spconv.SparseSequential:
    """SparseConv k3 (stride ``stride``, padding 1, no bias) + BN + ReLU."""
    conv = spconv.SparseConv3d if dims == 3 else spconv.SparseConv2d
    return spconv.SparseSequential(conv(cin, cout, 3, stride=stride, padding=1, bias=False, indice_key=key),
                                   *norm_act(cout))


class SparseBasicBlock(spconv.SparseModule):
    """Two SubMConv3d 3³ with BN, ReLU between, the input added before the last ReLU (ResNet basic block).
    OpenPCDet's has ``bias=True`` on both convolutions (``bias = norm_fn is not None``); see the module doc."""

    def __init__(self, channels: int, key: str):
        super().__init__()
        self.conv1 = spconv.SubMConv3d(channels, channels, 3, padding=1, bias=False, indice_key=key)
        self.bn1 = nn.BatchNorm1d(channels, **BACKBONE_NORM)
        self.conv2 = spconv.SubMConv3d(channels, channels, 3, padding=1, bias=False, indice_key=key)
        self.bn2 = nn.BatchNorm1d(channels, **BACKBONE_NORM)
        self.relu = nn.ReLU()

    def forward(self, x: spconv.SparseConvTensor) -> spconv.SparseConvTensor:
        identity = x.features
        out = self.conv1(x)
        out = out.replace_feature(self.relu(self.bn1(out.features)))
        out = self.conv2(out)
        return out.replace_feature(self.relu(self.bn2(out.features) + identity))
