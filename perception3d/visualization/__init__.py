"""Drawing point clouds, boxes and tracks."""
from .bev import CLASS_COLOURS, draw_bev

__all__ = ["CLASS_COLOURS", "draw_bev"]
