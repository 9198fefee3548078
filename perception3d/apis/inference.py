"""The programmatic face: a model from a config and checkpoint, detections and point classes on any point
cloud."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ..datasets.point_io import load_points, pad_points
from ..datasets.transforms.formatting import points_in_range
from ..datasets.transforms.loading import outside_ego_square
from ..models.heads import Detections


def init_model(config: str, checkpoint: Optional[str] = None, device: str = "cpu") -> torch.nn.Module:
    """The model (detector or segmentor) of ``config`` (a path) in eval mode on ``device``, with the weights of ``checkpoint`` (a
    tools/train.py .pth; checked to be this model's) or freshly initialised without one. The config is kept
    as ``model.cfg``. Raises :class:`~perception3d.engine.UserError` naming the file for a bad config or
    checkpoint."""
    from mmengine.registry import DefaultScope

    import perception3d.models  # noqa: F401  (registers the model classes)
    from ..engine import check_checkpoint, load_config
    from ..registry import MODELS

    cfg = load_config(config)
    with DefaultScope.overwrite_default_scope(cfg.get("default_scope", "perception3d")):
        model = MODELS.build(cfg.model)
    if checkpoint is not None:
        model.load_state_dict(check_checkpoint(checkpoint, model))
    model.cfg = cfg
    return model.to(device).eval()


def prepare_points(points: np.ndarray) -> np.ndarray:
    """An array (N, >= 3) of x, y, z[, intensity[, time_lag]] → float32 (N, 5) model input, missing columns 0
    (as :func:`~perception3d.datasets.point_io.load_points` fills them)."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"points must be an (N, >= 3) array of x, y, z[, intensity, time_lag], got shape "
                         f"{points.shape}")
    return pad_points(points, min(points.shape[1], 5))


@torch.no_grad()
def inference_detector(model: torch.nn.Module, points: Union[str, Path, np.ndarray], load_dims: int = 5
                       ) -> Detections:
    """Detections of one point cloud, in its own (LiDAR) frame: boxes (K, 9) x, y, z, dx, dy, dz, yaw, vx, vy
    (m, rad, m/s), scores, labels (the config's class order).

    ``points``: a point file (see :func:`~perception3d.datasets.point_io.load_points`, ``load_dims`` columns
    for .bin) or an (N, >= 3) array. As the config's test pipeline does, points within its LoadPoints
    ``ego_radius`` (|x| and |y|, m; 1 by default, 0 in the VoxelNeXt configs) and outside the model's
    point_cloud_range are left out. The points keep their order (the test pipeline shuffles them, seeded per
    sample): where a voxel holds more than its 10 points, the first 10 make its mean."""
    cloud = load_points(points, load_dims) if isinstance(points, (str, Path)) else prepare_points(points)
    point_cloud_range = np.asarray(model.data_preprocessor.voxelizer.point_cloud_range, dtype=np.float32)
    cloud = points_in_range(cloud[outside_ego_square(cloud, _ego_radius(model))], point_cloud_range)  # as the
    # test pipeline's LoadPoints and PointsRangeFilter
    device = next(model.parameters()).device
    data = model.data_preprocessor({"inputs": {"points": [torch.from_numpy(cloud).to(device)]}}, False)
    return model(**data, mode="predict")[0]


def _ego_radius(model: torch.nn.Module) -> float:
    """The ego_radius of LoadPoints in the model's test pipeline (1 m, LoadPoints' default, without one)."""
    cfg = getattr(model, "cfg", None)
    pipeline = cfg.get("test_dataloader", {}).get("dataset", {}).get("pipeline", []) if cfg is not None else []
    load = next((t for t in pipeline if t.get("type") == "LoadPoints"), {})
    return float(load.get("ego_radius", 1.0))


# the transforms of a test pipeline that read files or pack the result: inference hands the points over itself
_LOADING = ("LoadPoints", "LoadSweeps", "LoadPointLabels", "Pack")


@torch.no_grad()
def inference_segmentor(model: torch.nn.Module, points: Union[str, Path, np.ndarray], load_dims: int = 5
                        ) -> np.ndarray:
    """The lidarseg class (1–16, ``perception3d.datasets.SEG_CLASSES[k - 1]``) of every point of one cloud,
    int64 (N,) in the cloud's order.

    ``points``: a point file (``load_dims`` columns for .bin) or an (N, >= 3) array. The config's test pipeline
    runs on it after its loading steps (its ego square, range filter, thinning, shuffle: seeded as a test sample
    0); a point the pipeline left out takes the class of its nearest kept point, as the metric does."""
    from ..datasets.transforms.random_state import seeded_sample
    from ..evaluation.lidarseg_eval import labels_for_every_row
    from ..registry import TRANSFORMS
    from ..structures import LidarSample

    cloud = load_points(points, load_dims) if isinstance(points, (str, Path)) else prepare_points(points)
    cfg = getattr(model, "cfg", None)
    steps = cfg.get("test_dataloader", {}).get("dataset", {}).get("pipeline", []) if cfg is not None else []
    keep = np.flatnonzero(outside_ego_square(cloud, _ego_radius(model)))
    sample = LidarSample(info={}, data_root="", points=cloud[keep], point_index=keep, num_file_points=len(cloud))
    with seeded_sample((0,)):
        for step in steps:
            if step.get("type") not in _LOADING:
                sample = TRANSFORMS.build(step)(sample)
    device = next(model.parameters()).device
    labels = model({"points": [torch.from_numpy(np.ascontiguousarray(sample.points)).to(device)]},
                   mode="predict")[0].cpu().numpy()
    return labels_for_every_row(cloud[:, :3], sample.point_index, labels)
