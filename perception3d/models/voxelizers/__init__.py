from .voxelizer import VoxelBatch, Voxelizer

__all__ = ["VoxelBatch", "Voxelizer"]
