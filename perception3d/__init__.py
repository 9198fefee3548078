"""perception3d: fully sparse LiDAR 3D perception (VoxelNeXt) on nuScenes."""
from .version import __version__

__all__ = ["__version__"]
from .utils.checkpoint import allow_mmengine_checkpoint_classes as _allow; _allow()
