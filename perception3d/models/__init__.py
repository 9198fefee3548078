"""Models: voxelizers, sparse backbones, heads, detectors and segmentors, registered in perception3d's MODELS
registry."""
from .backbones import VoxelNeXtBackbone
from .detectors import VoxelDataPreprocessor, VoxelNeXt
from .heads import Detections, VoxelNeXtHead
from .losses import LovaszLoss
from .segmentors import MinkUNet, PointSegmentor, WaffleIron
from .voxelizers import VoxelBatch, Voxelizer

__all__ = ["VoxelNeXtBackbone", "VoxelDataPreprocessor", "VoxelNeXt", "Detections", "VoxelNeXtHead", "VoxelBatch",
           "Voxelizer", "LovaszLoss", "MinkUNet", "PointSegmentor", "WaffleIron"]
