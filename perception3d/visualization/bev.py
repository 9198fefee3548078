"""Bird's-eye-view pictures with matplotlib: points from above, boxes with heading ticks, track trails.

The picture is the view itself, edge to edge, forward (+x) up and left (+y) to the left, as the Open3D ``bev``
camera sees it: a point (x, y) within ±``extent`` m falls on pixel column (extent − y) · size / (2 · extent) and
row (extent − x) · size / (2 · extent)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..structures import bev_corners
from .colours import point_colours


def render_bev(points: np.ndarray, boxes: Optional[np.ndarray] = None, box_colours: Optional[np.ndarray] = None,
               extent: float = 54.0, size: int = 800, colour_by: str = "height", trails: Sequence = (),
               title: str = "", line_width: float = 1.5) -> np.ndarray:
    """``points`` (N, >= 3, m) seen from above within ±``extent`` m, coloured by ``colour_by`` (a mode or (N, 3)
    colours, see point_colours); ``boxes`` (K, 9)
    outlined in ``box_colours`` (K, 3, RGB in [0, 1]; white without), each with a tick from its centre to its
    front; ``trails`` as (path (P, >= 2) m, colour) polylines; a 10 m grid and the ``title`` → uint8 RGB
    (size, size, 3) on black."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = 100
    figure = Figure(figsize=(size / dpi, size / dpi), dpi=dpi, facecolor="black")
    canvas = FigureCanvasAgg(figure)
    ax = figure.add_axes((0.0, 0.0, 1.0, 1.0))  # the axes fill the picture: the mapping above holds exactly
    ax.set_axis_off()
    ax.set_facecolor("black")
    ax.set_xlim(extent, -extent)  # horizontal: y, growing to the left
    ax.set_ylim(-extent, extent)  # vertical: x, growing upwards
    for line in np.arange(-np.floor(extent / 10) * 10, extent, 10.0):
        ax.axhline(line, color=(0.18, 0.18, 0.18), linewidth=0.5, zorder=0)
        ax.axvline(line, color=(0.18, 0.18, 0.18), linewidth=0.5, zorder=0)
    points = np.asarray(points)
    near = (np.abs(points[:, 0]) < extent) & (np.abs(points[:, 1]) < extent)
    if near.any():
        ax.scatter(points[near, 1], points[near, 0], s=0.3, c=point_colours(points, colour_by)[near],
                   linewidths=0, zorder=1)
    if boxes is not None and len(boxes):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 9)
        colours = np.ones((len(boxes), 3)) if box_colours is None else np.asarray(box_colours).reshape(-1, 3)
        for corners, box, colour in zip(bev_corners(boxes), boxes, colours):
            ring = np.vstack([corners, corners[:1]])
            front = corners[[0, 3]].mean(axis=0)  # the middle of the front edge
            ax.plot(ring[:, 1], ring[:, 0], color=colour, linewidth=line_width, zorder=3)
            ax.plot([box[1], front[1]], [box[0], front[0]], color=colour, linewidth=line_width, zorder=3)
    for path, colour in trails:
        path = np.asarray(path, dtype=np.float64).reshape(len(path), -1)
        if len(path) >= 2:
            ax.plot(path[:, 1], path[:, 0], color=colour, linewidth=line_width, zorder=2)
    if title:
        ax.text(0.99, 0.01, title, transform=ax.transAxes, ha="right", va="bottom", color=(0.7, 0.7, 0.7),
                fontsize=7)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
