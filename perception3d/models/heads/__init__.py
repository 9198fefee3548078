from .targets import HeadTargets, assign_targets, decode_boxes, focal_loss, gaussian_radius
from .voxelnext_head import Detections, VoxelNeXtHead

__all__ = ["HeadTargets", "assign_targets", "decode_boxes", "focal_loss", "gaussian_radius", "Detections",
           "VoxelNeXtHead"]
