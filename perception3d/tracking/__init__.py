"""Multi-object tracking by detection in the global frame (CenterPoint's association, VoxelNeXt's voxel option)."""
from .matching import greedy_match, hungarian_match
from .scenes import frames_from_detections, track_scenes, tracking_results
from .tracker import CENTERPOINT_GATES, TRACKING_CLASSES, CenterPointTracker, TrackedFrame, TrackingFrame

__all__ = ["CENTERPOINT_GATES", "TRACKING_CLASSES", "CenterPointTracker", "TrackedFrame", "TrackingFrame",
           "frames_from_detections", "greedy_match", "hungarian_match", "track_scenes", "tracking_results"]
