"""The programmatic face: init_model, inference_detector on a point file or array."""
from .inference import inference_detector, init_model, prepare_points

__all__ = ["inference_detector", "init_model", "prepare_points"]
