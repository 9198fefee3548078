from .sparse_resnet import VoxelNeXtBackbone

__all__ = ["VoxelNeXtBackbone"]
