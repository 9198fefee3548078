"""Bird's-eye-view pictures with matplotlib: points from above, ground truth and predicted boxes."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..datasets.classes import CLASSES
from ..structures import bev_corners
from ..utils.io import atomic_write

# one colour per class, in the devkit's class order
CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf")


def draw_bev(path: str, points: np.ndarray, pred_boxes: Optional[np.ndarray] = None,
             pred_labels: Optional[np.ndarray] = None, gt_boxes: Optional[np.ndarray] = None,
             extent: float = 54.0, classes: Sequence[str] = CLASSES, title: str = "", dpi: int = 100) -> None:
    """Writes a PNG (atomically) of ``points`` (N, >= 3, m) seen from above within ±``extent`` m, ``gt_boxes``
    (M, 9) as thin black outlines and ``pred_boxes`` (K, 9) coloured by ``pred_labels``, each with a heading
    tick from the centre to the front."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(8, 8), dpi=dpi)
    near = (np.abs(points[:, 0]) < extent) & (np.abs(points[:, 1]) < extent)
    ax.scatter(points[near, 0], points[near, 1], s=0.2, c=points[near, 2], cmap="viridis", vmin=-3, vmax=2,
               linewidths=0)

    def outline(boxes, colours, width):
        for corners, box, colour in zip(bev_corners(boxes), boxes, colours):
            ring = np.vstack([corners, corners[:1]])
            ax.plot(ring[:, 0], ring[:, 1], color=colour, linewidth=width)
            front = corners[[0, 3]].mean(axis=0)
            ax.plot([box[0], front[0]], [box[1], front[1]], color=colour, linewidth=width)

    if gt_boxes is not None and len(gt_boxes):
        outline(np.asarray(gt_boxes), ["black"] * len(gt_boxes), 0.8)
    handles = [Line2D([], [], color="black", label="ground truth")] if gt_boxes is not None else []
    if pred_boxes is not None and len(pred_boxes):
        labels = np.asarray(pred_labels, dtype=int)
        outline(np.asarray(pred_boxes), [CLASS_COLOURS[k % len(CLASS_COLOURS)] for k in labels], 1.2)
        handles += [Line2D([], [], color=CLASS_COLOURS[k], label=classes[k]) for k in sorted(set(labels.tolist()))]
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=7)
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(title, fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    atomic_write(Path(path), buffer.getvalue())
