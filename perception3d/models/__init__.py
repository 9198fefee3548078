"""Models: voxelizers, sparse backbones, heads and detectors, registered in perception3d's MODELS registry."""
from .backbones import VoxelNeXtBackbone
from .voxelizers import VoxelBatch, Voxelizer

__all__ = ["VoxelNeXtBackbone", "VoxelBatch", "Voxelizer"]
