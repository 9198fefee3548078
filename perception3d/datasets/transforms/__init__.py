"""Data pipeline transforms: each takes and returns a LidarSample (Pack returns the model's input dict)."""
from .augmentation import GlobalRotScaleTrans, RandomFlip3D
from .formatting import ObjectRangeFilter, Pack, PointShuffle, PointsRangeFilter, SampleTargets
from .loading import LoadPointLabels, LoadPoints, LoadSweeps
from .object_sample import ObjectSample
from .sampling import GridSample, LimitNumPoints

__all__ = ["GlobalRotScaleTrans", "RandomFlip3D", "ObjectRangeFilter", "Pack", "PointShuffle", "PointsRangeFilter",
           "SampleTargets", "LoadPointLabels", "LoadPoints", "LoadSweeps", "ObjectSample", "GridSample",
           "LimitNumPoints"]
