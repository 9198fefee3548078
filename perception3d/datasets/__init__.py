"""nuScenes data: infos, GT database, dataset, transforms and the synthetic world."""
from . import transforms  # noqa: F401  (registers the transforms)
from .classes import CLASSES
from .lidarseg import SEG_CLASSES
from .nuscenes_dataset import CBGSDataset, NuScenesDataset, NuScenesSegDataset
from .nuscenes_infos import INFO_FORMAT_VERSION, info_path, load_infos
from .samplers import SampleKey, SeededSampler

__all__ = ["CLASSES", "SEG_CLASSES", "CBGSDataset", "NuScenesDataset", "NuScenesSegDataset", "INFO_FORMAT_VERSION",
           "info_path", "load_infos", "SampleKey", "SeededSampler"]
