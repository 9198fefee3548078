"""Pooling point features into their voxels (dynamic voxel encoders): mean and max, with gradients.

Built on torch's own scatter kernels (index_add_, scatter_reduce), which run on the CPU and on CUDA alike;
only the bookkeeping for points outside the grid (index -1) and the max's argmax are ours.
"""
from __future__ import annotations

from typing import Tuple

import torch

from ._checks import same_device


def _check(features: torch.Tensor, index: torch.Tensor, num_voxels: int) -> None:
    if not isinstance(features, torch.Tensor) or features.dim() != 2 or not features.is_floating_point():
        raise ValueError(f"features must be a float tensor (N, C), got "
                         f"{getattr(features, 'shape', type(features).__name__)}")
    if not isinstance(index, torch.Tensor) or index.shape != features.shape[:1] or index.dtype != torch.int64:
        raise ValueError(f"index must be an int64 tensor (N,) matching features {tuple(features.shape)}, got "
                         f"{getattr(index, 'dtype', type(index).__name__)} {tuple(getattr(index, 'shape', ()))}")
    if num_voxels < 0:
        raise ValueError(f"num_voxels must be >= 0, got {num_voxels}")
    same_device(features=features, index=index)


def scatter_mean(features: torch.Tensor, index: torch.Tensor, num_voxels: int) -> torch.Tensor:
    """(N, C) point features, int64 (N,) voxel index (-1: point dropped) → (M, C) mean per voxel (0 if empty).

    Differentiable in ``features``: each point receives its voxel's gradient divided by the voxel's count.
    """
    _check(features, index, num_voxels)
    valid = index >= 0
    idx, feats = index[valid], features[valid]
    sums = features.new_zeros((num_voxels, features.shape[1])).index_add_(0, idx, feats)
    counts = torch.zeros(num_voxels, dtype=features.dtype, device=features.device)
    counts.index_add_(0, idx, torch.ones_like(idx, dtype=features.dtype))
    return sums / counts.clamp(min=1).unsqueeze(1)


class _ScatterMax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, index, num_voxels):
        n, c = features.shape
        valid = index >= 0
        idx = index[valid].unsqueeze(1).expand(-1, c)
        feats = features[valid]
        out = features.new_full((num_voxels, c), float("-inf"))
        out.scatter_reduce_(0, idx, feats, reduce="amax", include_self=True)
        # argmax: the first point (lowest index) holding each voxel's maximum, per channel
        rows = torch.nonzero(valid).squeeze(1).unsqueeze(1).expand(-1, c)
        candidate = torch.where(feats == out.gather(0, idx), rows, torch.full_like(rows, n))
        argmax = torch.full((num_voxels, c), n, dtype=torch.int64, device=features.device)
        argmax.scatter_reduce_(0, idx, candidate, reduce="amin", include_self=True)
        empty = argmax == n
        out[empty] = 0.0
        ctx.save_for_backward(argmax)
        ctx.n = n
        ctx.mark_non_differentiable(argmax)
        return out, argmax

    @staticmethod
    def backward(ctx, grad_out, grad_argmax):
        (argmax,) = ctx.saved_tensors
        grad = grad_out.new_zeros((ctx.n + 1, grad_out.shape[1]))  # row n collects the empty voxels' gradient
        grad.scatter_add_(0, argmax, grad_out)
        return grad[: ctx.n], None, None


def scatter_max(features: torch.Tensor, index: torch.Tensor, num_voxels: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(N, C) point features, int64 (N,) voxel index (-1: point dropped) → (M, C) per-voxel maximum per channel
    (0 for an empty voxel) and int64 (M, C) argmax (the first point reaching it; N for an empty voxel).

    Differentiable in ``features``: the gradient of each maximum flows to its argmax point only.
    """
    _check(features, index, num_voxels)
    return _ScatterMax.apply(features, index, num_voxels)
