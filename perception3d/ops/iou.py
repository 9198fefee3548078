"""Overlap of rotated boxes: bird's-eye-view IoU (exact rotated-rectangle intersection) and 3D IoU.

Boxes are (N, 9) in our convention; only x, y, z, dx, dy, dz and yaw are read. The intersection of two
rectangles is found by clipping one by the other's edges (Sutherland–Hodgman) in float64, relative to the
first box's centre, so identical boxes give IoU 1, tiny or far-away boxes never exceed 1 and yaw ±π is a
yaw like any other. Zero-area boxes have IoU 0 with everything.
"""
from __future__ import annotations

import numba
import numpy as np
import torch

from . import _ext
from ._checks import boxes_tensor, same_device

_EPS = 1e-9  # m: a corner this close to a clipping edge counts as on it


@numba.njit(cache=True, inline="always")
def _corners(box, ox, oy, out):
    """BEV corners of ``box`` counter-clockwise, relative to (ox, oy), into out (4, 2)."""
    c, s = np.cos(box[6]), np.sin(box[6])
    hx, hy = box[3] / 2.0, box[4] / 2.0
    for k, (u, v) in enumerate(((hx, hy), (-hx, hy), (-hx, -hy), (hx, -hy))):
        out[k, 0] = box[0] - ox + c * u - s * v
        out[k, 1] = box[1] - oy + s * u + c * v


@numba.njit(cache=True)
def bev_intersection(a, b) -> float:
    """Area (m²) shared by the BEV rectangles of boxes ``a`` and ``b`` (float64 (9,) each)."""
    if a[3] <= 0 or a[4] <= 0 or b[3] <= 0 or b[4] <= 0:
        return 0.0
    dx, dy = b[0] - a[0], b[1] - a[1]
    reach = 0.5 * (np.hypot(a[3], a[4]) + np.hypot(b[3], b[4]))
    if dx * dx + dy * dy >= reach * reach:
        return 0.0
    poly = np.empty((16, 2))
    nxt = np.empty((16, 2))
    clip = np.empty((4, 2))
    _corners(a, a[0], a[1], poly)
    _corners(b, a[0], a[1], clip)
    n = 4
    for e in range(4):
        x0, y0 = clip[e, 0], clip[e, 1]
        ex, ey = clip[(e + 1) % 4, 0] - x0, clip[(e + 1) % 4, 1] - y0
        length = np.hypot(ex, ey)
        ex, ey = ex / length, ey / length
        m = 0
        for k in range(n):
            px, py = poly[k, 0], poly[k, 1]
            qx, qy = poly[(k + 1) % n, 0], poly[(k + 1) % n, 1]
            dp = ex * (py - y0) - ey * (px - x0)  # signed distance, > 0 left of the edge (inside)
            dq = ex * (qy - y0) - ey * (qx - x0)
            p_in, q_in = dp >= -_EPS, dq >= -_EPS
            if p_in:
                nxt[m, 0], nxt[m, 1] = px, py
                m += 1
            if p_in != q_in:
                t = dp / (dp - dq)
                nxt[m, 0], nxt[m, 1] = px + t * (qx - px), py + t * (qy - py)
                m += 1
        n = m
        if n < 3:
            return 0.0
        poly[:n] = nxt[:n]
    area = 0.0
    for k in range(n):
        area += poly[k, 0] * poly[(k + 1) % n, 1] - poly[(k + 1) % n, 0] * poly[k, 1]
    return min(max(0.5 * area, 0.0), a[3] * a[4], b[3] * b[4])


@numba.njit(cache=True)
def box_iou(a, b, use_height) -> float:
    """IoU of two boxes, in BEV or (``use_height``) in 3D."""
    inter = bev_intersection(a, b)
    if inter <= 0.0:
        return 0.0
    area_a, area_b = a[3] * a[4], b[3] * b[4]
    if use_height:
        top = min(a[2] + a[5] / 2.0, b[2] + b[5] / 2.0)
        bottom = max(a[2] - a[5] / 2.0, b[2] - b[5] / 2.0)
        if top <= bottom:
            return 0.0
        inter *= top - bottom
        area_a *= a[5]
        area_b *= b[5]
    union = area_a + area_b - inter
    return min(inter / union, 1.0) if union > 0.0 else 0.0


@numba.njit(cache=True)
def _iou_matrix(boxes_a, boxes_b, use_height, out):
    for i in range(boxes_a.shape[0]):
        for j in range(boxes_b.shape[0]):
            out[i, j] = box_iou(boxes_a[i], boxes_b[j], use_height)


def _iou(boxes_a, boxes_b, use_height: bool) -> torch.Tensor:
    a, b = boxes_tensor(boxes_a, "boxes_a"), boxes_tensor(boxes_b, "boxes_b")
    same_device(boxes_a=a, boxes_b=b)
    if a.is_cuda:
        return _ext.load().box_iou(a.contiguous(), b.contiguous(), use_height)
    out = np.zeros((len(a), len(b)), dtype=np.float32)
    if len(a) and len(b):
        _iou_matrix(a.detach().double().numpy(), b.detach().double().numpy(), use_height, out)
    return torch.from_numpy(out)


def bev_iou(boxes_a, boxes_b) -> torch.Tensor:
    """(A, 9), (B, 9) boxes → float32 (A, B) IoU of their bird's-eye-view rectangles, on their device."""
    return _iou(boxes_a, boxes_b, use_height=False)


def iou_3d(boxes_a, boxes_b) -> torch.Tensor:
    """(A, 9), (B, 9) boxes → float32 (A, B) 3D IoU: BEV intersection × height overlap over the union volume."""
    return _iou(boxes_a, boxes_b, use_height=True)
