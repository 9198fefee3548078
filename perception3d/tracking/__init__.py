"""Multi-object tracking by detection in the global frame (CenterPoint's association, a constant-velocity Kalman
filter, VoxelNeXt's voxel option)."""
from .matching import gated_distances, greedy_match, hungarian_match
from .motion import ConstantVelocityFilter
from .scenes import frames_from_detections, track_scenes, tracking_results
from .tracker import CENTERPOINT_GATES, TRACKING_CLASSES, CenterPointTracker, TrackedFrame, TrackingFrame

__all__ = ["CENTERPOINT_GATES", "TRACKING_CLASSES", "CenterPointTracker", "ConstantVelocityFilter", "TrackedFrame",
           "TrackingFrame", "frames_from_detections", "gated_distances", "greedy_match", "hungarian_match",
           "track_scenes", "tracking_results"]
