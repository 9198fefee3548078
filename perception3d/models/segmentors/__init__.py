"""LiDAR semantic segmentation: networks that score every point, and the model that trains and predicts them."""
from .minkunet import MinkUNet
from .point_segmentor import PointSegmentor
from .waffleiron import WaffleIron

__all__ = ["MinkUNet", "PointSegmentor", "WaffleIron"]
