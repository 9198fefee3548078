"""Python entry points of the custom kernels: one function each. The input's device picks the path: numba on
the CPU, the CUDA extension built from ``ops/`` on a GPU (see ``_ext``)."""
from .bev_overlap import boxes_overlap_bev
from .iou import bev_iou, iou_3d
from .nms import circle_nms, nms_bev
from .points_in_boxes import points_in_boxes, points_in_boxes_mask
from .scatter import scatter_max, scatter_mean
from .sparse_max import sparse_local_max
from .voxelize import voxelize_dynamic, voxelize_hard

__all__ = ["boxes_overlap_bev", "bev_iou", "iou_3d", "circle_nms", "nms_bev", "points_in_boxes",
           "points_in_boxes_mask", "scatter_max", "scatter_mean", "sparse_local_max", "voxelize_dynamic",
           "voxelize_hard"]
