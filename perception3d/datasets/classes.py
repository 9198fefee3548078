"""The ten nuScenes detection classes, in the devkit's order."""
from nuscenes.eval.detection.constants import DETECTION_NAMES

CLASSES = tuple(DETECTION_NAMES)
