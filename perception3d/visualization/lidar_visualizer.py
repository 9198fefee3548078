"""The mmengine Visualizer of LiDAR frames: predictions next to ground truth, for tools/test.py --show-dir and any
mmengine hook or backend."""
from __future__ import annotations

from typing import Optional

import numpy as np
from mmengine.visualization import Visualizer

from ..datasets.classes import CLASSES
from ..registry import VISUALIZERS
from .colours import GT_COLOUR, class_box_colours
from .open3d_scene import camera_preset, render_image
from .picture import add_legend, save_png


@VISUALIZERS.register_module()
class LidarVisualizer(Visualizer):
    """mmengine's Visualizer (its vis_backends, its scalars and configs for training logs) that also draws LiDAR
    frames: :meth:`add_datasample` renders the ground truth (white boxes, left) beside the predictions (class
    colours with a legend, right) over the same points, seen by the ``camera`` preset over ±``extent`` m, each
    half ``width`` × ``height`` pixels, from ``score_thr`` up."""

    def __init__(self, name: str = "visualizer", vis_backends=None, save_dir: Optional[str] = None,
                 camera: str = "bev", extent: float = 54.0, width: int = 640, height: int = 640,
                 colour_by: str = "height", score_thr: float = 0.3, classes=CLASSES, **kwargs):
        super().__init__(name=name, vis_backends=vis_backends, save_dir=save_dir, **kwargs)
        self.camera = camera_preset(camera, extent)
        self.width, self.height, self.colour_by, self.score_thr = width, height, colour_by, score_thr
        self.classes = tuple(classes)

    def draw_frame(self, points: np.ndarray, gt_boxes: Optional[np.ndarray] = None,
                   pred_boxes: Optional[np.ndarray] = None, pred_labels: Optional[np.ndarray] = None,
                   pred_scores: Optional[np.ndarray] = None) -> np.ndarray:
        """points (N, >= 3), gt_boxes (M, 9), predictions (K, 9) with labels (K,) and scores (K,), all in the
        points' frame → RGB uint8 (height, 2 * width, 3): ground truth left, predictions from score_thr right."""
        gt = np.zeros((0, 9)) if gt_boxes is None else np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 9)
        boxes = np.zeros((0, 9)) if pred_boxes is None else np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 9)
        labels = np.zeros(0, np.int64) if pred_labels is None else np.asarray(pred_labels, dtype=np.int64)
        if pred_scores is not None:
            shown = np.asarray(pred_scores) >= self.score_thr
            boxes, labels = boxes[shown], labels[shown]
        left = render_image(points, gt, np.tile(GT_COLOUR, (len(gt), 1)), self.camera, self.width, self.height,
                            colour_by=self.colour_by)
        right = render_image(points, boxes, class_box_colours(labels), self.camera, self.width, self.height,
                             colour_by=self.colour_by)
        left = add_legend(left, [], self.classes, ground_truth=True)
        right = add_legend(right, labels, self.classes)
        divider = np.full((self.height, 2, 3), 128, dtype=np.uint8)
        return np.concatenate([left, divider, right], axis=1)

    def add_datasample(self, name: str, points: np.ndarray, gt_boxes: Optional[np.ndarray] = None,
                       pred_boxes: Optional[np.ndarray] = None, pred_labels: Optional[np.ndarray] = None,
                       pred_scores: Optional[np.ndarray] = None, out_file: Optional[str] = None,
                       step: int = 0) -> np.ndarray:
        """Draws a frame (see :meth:`draw_frame`) and writes it to ``out_file`` (PNG, atomically) or, without
        one, hands it to the visualizer's backends as image ``name`` → the picture."""
        image = self.draw_frame(points, gt_boxes, pred_boxes, pred_labels, pred_scores)
        if out_file is not None:
            save_png(out_file, image)
        else:
            self.add_image(name, image, step)
        return image
