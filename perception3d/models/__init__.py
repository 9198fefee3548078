"""Models: voxelizers, sparse backbones, heads and detectors, registered in perception3d's MODELS registry."""
from .backbones import VoxelNeXtBackbone
from .detectors import VoxelDataPreprocessor, VoxelNeXt
from .heads import Detections, VoxelNeXtHead
from .voxelizers import VoxelBatch, Voxelizer

__all__ = ["VoxelNeXtBackbone", "VoxelDataPreprocessor", "VoxelNeXt", "Detections", "VoxelNeXtHead", "VoxelBatch",
           "Voxelizer"]
