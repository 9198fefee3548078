"""Lovász-softmax loss (Berman, Rannen Triki, Blaschko, CVPR 2018): a convex surrogate of 1 - IoU per class.

For class c, with errors m_i = |[y_i = c] - p_ic| sorted in decreasing order (permutation π), the loss is the
Lovász extension of the Jaccard loss Δ_c(S) = |S| / |G_c ∪ S| (S: mispredicted points, G_c: points of class c),
f_c(m) = Σ_i m_π(i) (Δ_c({π(1)..π(i)}) - Δ_c({π(1)..π(i-1)})). On hard predictions (p one-hot) m is the
indicator of the mispredicted set and f_c = Δ_c = 1 - IoU_c. The loss averages f_c over the classes present in
the labels.

Mirrors what WaffleIron trains with (github.com/valeoai/WaffleIron ``utils/metrics.py`` ``SemSegLoss``: cross entropy
+ 1.0 x ``lovasz_softmax_flat(softmax(logits[valid]), labels[valid])``, ``utils/lovasz.py`` = Berman's
``lovasz_losses.py``, default ``classes="present"``, one flat loss over all points of the batch, not per cloud).
Rewritten here with all classes sorted at once.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import MODELS


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension w.r.t. the sorted errors (Berman et al., Alg. 1), per column.

    gt_sorted (P, K): 1 where the point (in order of decreasing error) belongs to the column's class. Returns the
    increments of Δ(first i points) = 1 - |G \\ S_i| / |G ∪ S_i| along dim 0."""
    gts = gt_sorted.sum(dim=0, keepdim=True)
    intersection = gts - gt_sorted.cumsum(dim=0)
    union = gts + (1.0 - gt_sorted).cumsum(dim=0)  # >= 1 from the first row on
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]], dim=0)


def lovasz_softmax_flat(probas: torch.Tensor, labels: torch.Tensor,
                        classes: Union[str, Sequence[int]] = "present") -> torch.Tensor:
    """Lovász-softmax of class probabilities ``probas`` (P, C) against ``labels`` (P,) in [0, C) (ignored points
    already removed). ``classes``: "present" (classes in ``labels``, the reference's default), "all", or a list.
    No point, or no present class: 0 (with a graph to ``probas``)."""
    C = probas.shape[1]
    if classes == "present" or classes == "all":
        cls = torch.arange(C, device=probas.device)
    else:
        cls = torch.as_tensor(list(classes), dtype=torch.long, device=probas.device)
    if probas.shape[0] == 0 or cls.numel() == 0:
        return probas.sum() * 0.0
    fg = (labels.unsqueeze(1) == cls.unsqueeze(0)).to(probas.dtype)  # (P, K)
    if classes == "present":
        present = fg.sum(dim=0) > 0
        cls, fg = cls[present], fg[:, present]
        if cls.numel() == 0:
            return probas.sum() * 0.0
    errors = (fg - probas[:, cls]).abs()
    errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
    grad = lovasz_grad(fg.gather(0, perm))
    return (errors_sorted * grad).sum(dim=0).mean()


@MODELS.register_module()
class LovaszLoss(nn.Module):
    """Lovász-softmax loss on logits: softmax over classes of the non-ignored points, then
    :func:`lovasz_softmax_flat` over all of them (the reference's ``SemSegLoss`` Lovász term).

    Args:
        classes: "present" (default, as the reference), "all", or a list of class indices to average.
        loss_weight: factor on the loss (the reference's ``loss.lovasz: 1.0``, added to cross entropy).

    ``forward(logits (N, C), target (N,) int64, ignore_index=-1)`` → scalar. Points whose target is
    ``ignore_index`` are left out; every other target must lie in [0, C)."""

    def __init__(self, classes: Union[str, Sequence[int]] = "present", loss_weight: float = 1.0):
        super().__init__()
        if isinstance(classes, str) and classes not in ("present", "all"):
            raise ValueError(f"LovaszLoss: classes must be 'present', 'all' or a list of ints, got {classes!r}")
        self.classes = classes if isinstance(classes, str) else [int(c) for c in classes]
        self.loss_weight = float(loss_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, ignore_index: int = -1) -> torch.Tensor:
        if logits.dim() != 2 or target.dim() != 1 or target.shape[0] != logits.shape[0]:
            raise ValueError(f"LovaszLoss: logits must be (N, C) and target (N,), got {tuple(logits.shape)} and "
                             f"{tuple(target.shape)}")
        valid = target != ignore_index
        labels = target[valid].long()
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]):
            raise ValueError(f"LovaszLoss: targets must be in [0, {logits.shape[1]}) or ignore_index "
                             f"({ignore_index}), got values in [{int(labels.min())}, {int(labels.max())}]")
        scores = logits[valid]
        scores = scores.float() if scores.dtype in (torch.float16, torch.bfloat16) else scores
        probas = F.softmax(scores, dim=1)
        return self.loss_weight * lovasz_softmax_flat(probas, labels, self.classes)
