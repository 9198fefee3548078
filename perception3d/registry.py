"""mmengine child registries of perception3d.

Configs name our classes by ``type``; each registry looks in its ``locations``
first and falls back to mmengine's own (e.g. ``Adam``, ``OneCycleLR``).
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import Registry

MODELS = Registry("model", parent=MMENGINE_MODELS, locations=["perception3d.models"])
DATASETS = Registry("dataset", parent=MMENGINE_DATASETS, locations=["perception3d.datasets"])
TRANSFORMS = Registry("transform", parent=MMENGINE_TRANSFORMS, locations=["perception3d.datasets.transforms"])
DATA_SAMPLERS = Registry("data sampler", parent=MMENGINE_DATA_SAMPLERS, locations=["perception3d.datasets"])
METRICS = Registry("metric", parent=MMENGINE_METRICS, locations=["perception3d.evaluation"])
VISUALIZERS = Registry("visualizer", parent=MMENGINE_VISUALIZERS, locations=["perception3d.visualization"])
HOOKS = Registry("hook", parent=MMENGINE_HOOKS, locations=["perception3d.engine"])
