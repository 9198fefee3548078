from .voxelnext import VoxelDataPreprocessor, VoxelNeXt

__all__ = ["VoxelDataPreprocessor", "VoxelNeXt"]
