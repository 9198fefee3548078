"""perception3d: fully sparse LiDAR 3D perception (VoxelNeXt) on nuScenes."""
from .version import __version__

__all__ = ["__version__"]
from .utils.checkpoint import allow_mmengine_checkpoint_classes as _allow_checkpoints  # noqa: E402

_allow_checkpoints()  # mmengine checkpoints resume under torch.load's weights_only default
