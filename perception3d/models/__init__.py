"""Models: voxelizers, sparse backbones, heads and detectors, registered in perception3d's MODELS registry."""
from .backbones import VoxelNeXtBackbone
from .heads import Detections, VoxelNeXtHead
from .voxelizers import VoxelBatch, Voxelizer

__all__ = ["VoxelNeXtBackbone", "Detections", "VoxelNeXtHead", "VoxelBatch", "Voxelizer"]
