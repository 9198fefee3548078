"""Metrics over the official nuscenes-devkit, and the submission format they read."""
from .nuscenes_metric import NuScenesMetric
from .submission import attribute_from_velocity, detection_records, lidar_to_global

__all__ = ["NuScenesMetric", "attribute_from_velocity", "detection_records", "lidar_to_global"]
