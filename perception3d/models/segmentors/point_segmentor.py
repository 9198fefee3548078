"""PointSegmentor: a network that scores every point (MinkUNet, WaffleIron) as an mmengine model: losses in
training, one class per point in prediction."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from ...datasets.lidarseg import SEG_CLASSES
from ...registry import MODELS
from ..sparse import set_sparse_engine

IGNORE = -1  # target of a point of class 0 ("ignore" in the devkit's mapping)


@MODELS.register_module()
class PointSegmentor(BaseModel):
    """LiDAR semantic segmentation over the devkit's 16 lidarseg classes.

    ``network``: a MODELS config of a module mapping a list of float (N_i, C) point tensors (x, y, z, intensity,
    time lag) to a list of (N_i, num_classes) logits, built with ``num_classes``. ``num_classes`` must be the
    16 classes of ``nuscenes.eval.lidarseg.utils.LidarsegClassMapper``: class k + 1 is logit k, class 0 is
    ignored by the losses. Losses: cross-entropy (mean over the points not ignored) times ``ce_weight``, plus the
    Lovász-softmax loss times ``lovasz_weight`` (WaffleIron trains with both, MinkUNet with cross-entropy only).
    A network with an ``in_fov(points)`` mask (WaffleIron) sees only those points and copies its logits to the
    others; they are left out of the losses, as the reference crops them from training.

    ``forward(inputs, data_samples, mode)``: "loss" → ``loss_ce`` (and ``loss_lovasz``) from each sample's
    ``pts_labels`` (0–16); "predict" → one int64 tensor (N_i,) of classes 1–16 per sample; "tensor" → the logits.
    ``sparse_engine``: the engine of the network's sparse convolutions, if it has any ("auto", "perception3d",
    "spconv"; :mod:`perception3d.models.sparse`).
    """

    def __init__(self, network: dict, num_classes: int = len(SEG_CLASSES), ce_weight: float = 1.0,
                 lovasz_weight: float = 0.0, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None, sparse_engine: str = "auto"):
        if num_classes != len(SEG_CLASSES):
            raise ValueError(f"num_classes={num_classes} does not match the {len(SEG_CLASSES)} classes of the devkit's "
                             f"lidarseg mapping ({', '.join(SEG_CLASSES)})")
        if ce_weight < 0 or lovasz_weight < 0 or ce_weight + lovasz_weight == 0:
            raise ValueError(f"ce_weight and lovasz_weight must be >= 0 and not both 0, got {ce_weight}, "
                             f"{lovasz_weight}")
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.num_classes = num_classes
        self.network = MODELS.build(dict(network, num_classes=num_classes))
        set_sparse_engine(self, sparse_engine)
        self.ce_weight, self.lovasz_weight = ce_weight, lovasz_weight
        self.lovasz = None
        if lovasz_weight > 0:
            from ..losses import LovaszLoss

            self.lovasz = LovaszLoss()

    def forward(self, inputs: dict, data_samples: Optional[Sequence] = None,
                mode: str = "tensor") -> Union[Dict[str, torch.Tensor], List[torch.Tensor]]:
        if mode not in ("loss", "predict", "tensor"):
            raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")
        points = list(inputs["points"])
        if mode == "loss":
            if data_samples is None or any(s.pts_labels is None for s in data_samples):
                raise ValueError("mode='loss' needs data_samples with pts_labels (LoadPointLabels in the pipeline)")
            for cloud, s in zip(points, data_samples):
                if len(s.pts_labels) != len(cloud):
                    raise ValueError(f"sample {s.token}: {len(s.pts_labels)} point labels for {len(cloud)} points")
        logits = self.network(points)
        if mode == "tensor":
            return logits
        if mode == "predict":
            return [scores.argmax(dim=1) + 1 for scores in logits]
        scores = torch.cat(logits)
        target = torch.cat([s.pts_labels for s in data_samples]).to(scores.device) - 1  # class 0 → IGNORE
        if hasattr(self.network, "in_fov"):
            target = torch.where(torch.cat([self.network.in_fov(p) for p in points]), target, IGNORE)
        return self.loss(scores, target)

    def loss(self, scores: torch.Tensor, target: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``scores`` (N, num_classes) logits, ``target`` int64 (N,) in 0..num_classes-1 or IGNORE → losses. A batch
        whose points are all ignored gives zero losses that still reach every logit."""
        if not bool((target != IGNORE).any()):
            zero = scores.sum() * 0.0
            losses = {"loss_ce": zero}
            return dict(losses, loss_lovasz=zero.clone()) if self.lovasz is not None else losses
        losses = {"loss_ce": self.ce_weight * F.cross_entropy(scores, target, ignore_index=IGNORE)}
        if self.lovasz is not None:
            losses["loss_lovasz"] = self.lovasz_weight * self.lovasz(scores, target, ignore_index=IGNORE)
        return losses
