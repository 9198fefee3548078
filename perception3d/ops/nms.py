"""Greedy non-maximum suppression: rotated boxes by BEV IoU, and box centres by distance (CenterPoint's
circle NMS). Boxes are visited by descending score, ties in input order; both paths return the same indices."""
from __future__ import annotations

from typing import Optional

import numba
import numpy as np
import torch

from . import _ext
from ._checks import boxes_tensor, float_tensor, same_device
from .iou import box_iou


_BY_IOU, _BY_DISTANCE = 0, 1


@numba.njit(cache=True, inline="always")
def _suppresses(data, i, j, thresh, mode):
    """Whether candidate i suppresses j: BEV IoU above ``thresh`` (rows are boxes), or squared centre distance
    below ``thresh`` (rows are x, y)."""
    if mode == _BY_IOU:
        return box_iou(data[i], data[j], False) > thresh
    dx, dy = data[i, 0] - data[j, 0], data[i, 1] - data[j, 1]
    return dx * dx + dy * dy < thresh


@numba.njit(cache=True)
def _greedy_kernel(data, order, thresh, mode, post_max):
    """Visits ``order`` and keeps each candidate no kept one suppresses, up to ``post_max``."""
    n = order.shape[0]
    suppressed = np.zeros(n, dtype=np.bool_)
    keep = np.empty(min(n, post_max), dtype=np.int64)
    k = 0
    for a in range(n):
        if suppressed[a]:
            continue
        keep[k] = order[a]
        k += 1
        if k == post_max:
            break
        for b in range(a + 1, n):
            if not suppressed[b] and _suppresses(data, order[a], order[b], thresh, mode):
                suppressed[b] = True
    return keep[:k]


def _candidates(data: torch.Tensor, data_name: str, scores, pre_max: Optional[int], post_max: Optional[int]):
    """Checks ``scores`` against ``data`` and the limits; returns the candidate order (descending score, ties in
    input order, the first ``pre_max``) and the number of boxes to keep at most."""
    scores = float_tensor(scores, "scores", 1)
    if len(scores) != len(data):
        raise ValueError(f"scores must have one entry per box ({len(data)}), got {len(scores)}")
    same_device(**{data_name: data, "scores": scores})
    for name, value in (("pre_max", pre_max), ("post_max", post_max)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    order = torch.sort(scores, descending=True, stable=True).indices
    return (order if pre_max is None else order[:pre_max]), (len(data) if post_max is None else post_max)


def nms_bev(boxes, scores, iou_thresh: float, pre_max: Optional[int] = None,
            post_max: Optional[int] = None) -> torch.Tensor:
    """Rotated NMS: (N, 9) boxes, (N,) scores → int64 indices of the kept boxes, by descending score.

    Only the ``pre_max`` best boxes are considered; a box is dropped when its BEV IoU with a kept, better box
    exceeds ``iou_thresh``; at most ``post_max`` are kept. On CUDA the IoU mask and the greedy pass both run on
    the device.
    """
    boxes = boxes_tensor(boxes)
    order, post = _candidates(boxes, "boxes", scores, pre_max, post_max)
    if not 0.0 <= iou_thresh <= 1.0:
        raise ValueError(f"iou_thresh must be in [0, 1], got {iou_thresh}")
    if len(order) == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    if boxes.is_cuda:
        return _ext.load().nms_bev(boxes.contiguous(), order.contiguous(), float(iou_thresh), post)
    return torch.from_numpy(_greedy_kernel(boxes.detach().double().numpy(), order.numpy(), float(iou_thresh),
                                           _BY_IOU, post))


def circle_nms(centers, scores, radius: float, pre_max: Optional[int] = None,
               post_max: Optional[int] = None) -> torch.Tensor:
    """Circle NMS: (N, >=2) centres (x, y first, m; boxes work too), (N,) scores → int64 indices of the kept
    centres, by descending score; a centre closer than ``radius`` (m) to a kept, better one is dropped."""
    centers = float_tensor(centers, "centers", 2, min_cols=2)
    order, post = _candidates(centers, "centers", scores, pre_max, post_max)
    if not radius > 0:
        raise ValueError(f"radius must be positive (m), got {radius}")
    if len(order) == 0:
        return torch.zeros(0, dtype=torch.int64, device=centers.device)
    if centers.is_cuda:
        return _ext.load().circle_nms(centers[:, :2].contiguous(), order.contiguous(), float(radius), post)
    return torch.from_numpy(_greedy_kernel(np.ascontiguousarray(centers[:, :2].detach().double().numpy()),
                                           order.numpy(), float(radius) ** 2, _BY_DISTANCE, post))
