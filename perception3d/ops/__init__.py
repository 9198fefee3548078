"""Python entry points of the custom kernels: one function each."""
from .points_in_boxes import points_in_boxes, points_in_boxes_mask

__all__ = ["points_in_boxes", "points_in_boxes_mask"]
