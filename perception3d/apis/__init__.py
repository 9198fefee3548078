"""The programmatic face: init_model, inference_detector and inference_segmentor on a point file or array."""
from .inference import inference_detector, inference_segmentor, init_model, prepare_points

__all__ = ["inference_detector", "inference_segmentor", "init_model", "prepare_points"]
