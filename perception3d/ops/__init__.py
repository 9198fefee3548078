"""Python entry points of the custom kernels: one function each."""
from .bev_overlap import boxes_overlap_bev
from .points_in_boxes import points_in_boxes, points_in_boxes_mask

__all__ = ["boxes_overlap_bev", "points_in_boxes", "points_in_boxes_mask"]
