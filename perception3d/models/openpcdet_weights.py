"""OpenPCDet's VoxelNeXt weights onto our VoxelNeXt: the parameter map behind ``tools/convert_checkpoint.py``.

OpenPCDet's names (``pcdet/models/backbones_3d/spconv_backbone_voxelnext.py``,
``pcdet/models/dense_heads/voxelnext_head.py``, and ``Detector3DTemplate``'s ``global_step`` buffer) → ours:

- ``backbone_3d.conv_input`` → ``backbone.conv_input``; ``backbone_3d.conv{s}`` → ``backbone.stages.{s-1}``
  (the same indices inside: ``0.0`` / ``0.1`` the strided convolution and its BatchNorm, then the
  SparseBasicBlocks); ``conv_out`` and ``shared_conv`` keep their names.
- A bias right before a BatchNorm (every SparseBasicBlock convolution, ``shared_conv``, and the head's hidden
  layers when their kernel is 3) is folded into that BatchNorm's running mean: BN(x + b) with mean μ equals
  BN(x) with mean μ − b, in eval and in training alike.
- ``dense_head.heads_list.{g}.{branch}``, ``branch`` in center, center_z, dim, rot, vel, hm → slot
  ``6 g + j`` of ``head.branches`` (j: hm, then the box branches in HEAD_ORDER): rows ``128 slot …`` of
  the shared hidden layer and of its BatchNorm, and ``head.branches.out.{slot}``.
- spconv weights: spconv ≥ 2.2 stores (out, k…, in), older versions (k…, in, out); both are read. A kernel-1
  convolution in spconv 2.x is computed as ``features @ weight.view(in, out)`` whatever the layout (spconv issue
  #450), so its matrix is that reshape of the stored tensor, which becomes an ``nn.Linear`` weight transposed.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from .heads.voxelnext_head import BRANCHES

OPENPCDET_HEAD_ORDER = ("hm",) + tuple(name for name, _ in BRANCHES)  # our slot order within a group
_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


class ConversionError(ValueError):
    """The source state dict is not a VoxelNeXt of this model's shape; the message says what does not fit."""


def _spconv_weight(raw: torch.Tensor, expected: Tuple[int, ...], key: str) -> torch.Tensor:
    """A spconv weight in spconv ≥ 2.2's (out, k…, in) layout, from either layout."""
    if tuple(raw.shape) == tuple(expected):
        return raw
    old = tuple(expected[1:-1]) + (expected[-1], expected[0])  # (k…, in, out)
    if tuple(raw.shape) == old:
        return raw.permute(raw.dim() - 1, *range(raw.dim() - 1)).contiguous()
    raise ConversionError(f"{key}: shape {tuple(raw.shape)}, expected {tuple(expected)} (spconv >= 2.2) or "
                          f"{old} (older spconv)")


def _matrix_1x1(raw: torch.Tensor, cin: int, cout: int, key: str) -> torch.Tensor:
    """The (in, out) matrix a kernel-1 spconv convolution applies, from its stored weight."""
    if sorted(raw.shape) != sorted([1] * (raw.dim() - 2) + [cin, cout]):
        raise ConversionError(f"{key}: shape {tuple(raw.shape)} is not a kernel-1 convolution {cin} -> {cout}")
    return raw.reshape(cin, cout)


class _Source:
    """The source state dict, each key taken at most once; what is never taken is reported."""

    def __init__(self, state: Dict[str, torch.Tensor]):
        self.state, self.taken = state, set()

    def __contains__(self, key: str) -> bool:
        return key in self.state

    def take(self, key: str) -> torch.Tensor:
        if key not in self.state:
            raise ConversionError(f"missing from the checkpoint: {key}")
        self.taken.add(key)
        return self.state[key]

    def left(self) -> List[str]:
        return [k for k in self.state if k not in self.taken]


def _norm(src: _Source, dst: dict, ours: str, theirs: str, fold_bias: Optional[str] = None) -> None:
    for name in _BN_KEYS:
        dst[f"{ours}.{name}"] = src.take(f"{theirs}.{name}")
    if fold_bias is not None:
        dst[f"{ours}.running_mean"] = dst[f"{ours}.running_mean"] - src.take(fold_bias)


def _backbone(src: _Source, expected: dict, dst: dict) -> None:
    for ours_prefix in sorted({k.rsplit(".", 1)[0] for k in expected if k.startswith("backbone.")}):
        theirs = re.sub(r"^backbone\.stages\.(\d+)\.", lambda m: f"backbone_3d.conv{int(m.group(1)) + 1}.",
                        ours_prefix)
        theirs = theirs.replace("backbone.", "backbone_3d.", 1)
        if f"{ours_prefix}.running_mean" in expected:  # a BatchNorm: which convolution feeds it?
            if ours_prefix.endswith((".bn1", ".bn2")):
                conv = theirs[:-3] + "conv" + theirs[-1]
            else:
                conv = theirs.rsplit(".", 1)[0] + ".0"
            bias = f"{conv}.bias" if f"{conv}.bias" in src else None
            _norm(src, dst, ours_prefix, theirs, fold_bias=bias)
        elif f"{ours_prefix}.weight" in expected:
            key = f"{theirs}.weight"
            dst[f"{ours_prefix}.weight"] = _spconv_weight(src.take(key), expected[f"{ours_prefix}.weight"].shape, key)


def _head(src: _Source, expected: dict, dst: dict, head) -> None:
    width = head.branches.channels
    kernel_1 = isinstance(head.branches.hidden, nn.Linear)
    hidden_w = torch.empty_like(expected["head.branches.hidden.weight"])
    hidden_b = torch.empty(hidden_w.shape[0]) if kernel_1 else None
    norm = {name: torch.empty_like(expected[f"head.branches.norm_act.0.{name}"]) for name in _BN_KEYS[:4]}
    steps = set()
    for g in range(len(head.groups)):
        for j, branch in enumerate(OPENPCDET_HEAD_ORDER):
            slot = g * len(OPENPCDET_HEAD_ORDER) + j
            rows = slice(slot * width, (slot + 1) * width)
            base = f"dense_head.heads_list.{g}.{branch}"
            key = f"{base}.0.0.weight"
            if kernel_1:
                hidden_w[rows] = _matrix_1x1(src.take(key), width, width, key).t()
                hidden_b[rows] = src.take(f"{base}.0.0.bias") if f"{base}.0.0.bias" in src else 0.0
            else:
                hidden_w[rows] = _spconv_weight(src.take(key), hidden_w[rows].shape, key)
            for name in _BN_KEYS[:4]:
                norm[name][rows] = src.take(f"{base}.0.1.{name}")
            if not kernel_1 and f"{base}.0.0.bias" in src:
                norm["running_mean"][rows] -= src.take(f"{base}.0.0.bias")
            steps.add(int(src.take(f"{base}.0.1.num_batches_tracked")))
            out = expected[f"head.branches.out.{slot}.weight"]
            key = f"{base}.1.weight"
            dst[f"head.branches.out.{slot}.weight"] = _matrix_1x1(src.take(key), width, out.shape[0], key).t()
            dst[f"head.branches.out.{slot}.bias"] = src.take(f"{base}.1.bias")
    dst["head.branches.hidden.weight"] = hidden_w
    if kernel_1:
        dst["head.branches.hidden.bias"] = hidden_b
    for name, value in norm.items():
        dst[f"head.branches.norm_act.0.{name}"] = value
    dst["head.branches.norm_act.0.num_batches_tracked"] = torch.tensor(max(steps))


def convert_openpcdet_voxelnext(state: Dict[str, torch.Tensor], model: nn.Module) -> Dict[str, torch.Tensor]:
    """OpenPCDet's ``model_state`` of a VoxelNeXt → the state dict of ``model`` (our VoxelNeXt built from the
    matching config), checked to load strictly: every source entry used (``global_step``, the training step
    counter, is dropped), every entry of ``model`` filled with its shape. Raises ConversionError otherwise."""
    if not any(k.startswith("backbone_3d.conv6.") for k in state) or \
            not any(k.startswith("dense_head.heads_list.") for k in state):
        heads = sorted({k.split(".")[0] for k in state})
        raise ConversionError(f"not an OpenPCDet VoxelNeXt: it has no backbone_3d.conv6 / dense_head.heads_list "
                              f"(its modules: {', '.join(heads[:8])})")
    src = _Source(state)
    if "global_step" in src:
        src.take("global_step")
    expected = model.state_dict()
    dst: Dict[str, torch.Tensor] = {}
    _backbone(src, expected, dst)
    _head(src, expected, dst, model.head)
    left = src.left()
    if left:
        raise ConversionError(f"{len(left)} entries of the checkpoint have no place in this model (e.g. {left[0]}): "
                              f"another configuration (stage blocks, class groups, head kernel)?")
    missing = [k for k in expected if k not in dst]
    wrong = [k for k in dst if k in expected and dst[k].shape != expected[k].shape]
    if missing or wrong:
        what = f"missing {missing[0]}" if missing else \
            f"{wrong[0]} is {tuple(dst[wrong[0]].shape)}, the model's {tuple(expected[wrong[0]].shape)}"
        raise ConversionError(f"the checkpoint does not fit this model's configuration: {what}")
    return {k: dst[k].to(expected[k].dtype).contiguous() for k in expected}
