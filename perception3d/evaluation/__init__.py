"""Metrics over the official nuscenes-devkit, and the submission format they read."""
from .detection_dump import DetectionDump, load_detections
from .lidarseg_eval import evaluate_lidarseg
from .lidarseg_metric import LidarSegMetric
from .nuscenes_metric import NuScenesMetric
from .nuscenes_tracking import evaluate_tracking, tracking_records
from .submission import attribute_from_velocity, detection_records, lidar_to_global, ranked_detections

__all__ = ["DetectionDump", "load_detections", "LidarSegMetric", "evaluate_lidarseg", "NuScenesMetric",
           "attribute_from_velocity", "detection_records", "evaluate_tracking", "lidar_to_global", "ranked_detections", "tracking_records"]
