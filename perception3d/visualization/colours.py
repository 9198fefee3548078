"""Colours shared by every picture: one per class, ground truth, a stable one per track id, and point colour
maps (by height, intensity or time lag)."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

# one colour per class, in the devkit's class order (matplotlib's tab10)
CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf")
GT_COLOUR = (1.0, 1.0, 1.0)  # ground-truth boxes: white on the black background
COLOUR_MODES = ("height", "intensity", "time", "label")  # "label": per-point classes, see label_colours
IGNORED_COLOUR = (0.35, 0.35, 0.35)  # class 0 (ignored); the devkit's black would vanish on the black background


def hex_to_rgb(colour: str) -> Tuple[float, float, float]:
    """'#rrggbb' → (r, g, b) in [0, 1]."""
    colour = colour.lstrip("#")
    return tuple(int(colour[i:i + 2], 16) / 255.0 for i in (0, 2, 4))


def label_colours(labels: Sequence[int]) -> np.ndarray:
    """Per-point lidarseg classes 0–16 (N,) → (N, 3) RGB in [0, 1]: the devkit's colour of each class
    (``LidarsegClassMapper.get_coarse2color``), IGNORED_COLOUR for class 0."""
    from ..datasets.lidarseg import SEG_CLASSES, SEG_COLOURS

    table = np.array([IGNORED_COLOUR] + [np.array(SEG_COLOURS[c]) / 255.0 for c in SEG_CLASSES])
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(table)):
        raise ValueError(f"point classes must lie in 0-{len(table) - 1}, got {labels.min()}-{labels.max()}")
    return table[labels]


def point_colours(points: np.ndarray, mode="height") -> np.ndarray:
    """(N, >= 3) points (x, y, z, intensity, time_lag) → (N, 3) RGB in [0, 1] by ``mode``: height (z from -3 to
    2 m), intensity (0 to 255 nuScenes, or 0 to 1 when every value is) or time lag (0 to 0.5 s); or ``mode`` an
    (N, 3) array of the points' own colours (e.g. :func:`label_colours`), returned as it is."""
    from matplotlib import colormaps

    points = np.asarray(points)
    if not isinstance(mode, str):
        given = np.asarray(mode, dtype=np.float64)
        if given.shape != (len(points), 3):
            raise ValueError(f"point colours must be ({len(points)}, 3) for {len(points)} points, got {given.shape}")
        return given
    if mode not in COLOUR_MODES or mode == "label":
        raise ValueError(f"colour mode must be one of {', '.join(m for m in COLOUR_MODES if m != 'label')} or the "
                         f"points' colours (label: label_colours of the classes), got {mode!r}")
    column = {"height": 2, "intensity": 3, "time": 4}[mode]
    if points.shape[1] <= column:
        values = np.zeros(len(points))
    else:
        values = points[:, column].astype(np.float64)
    if mode == "height":
        low, high = -3.0, 2.0
    elif mode == "intensity":
        low, high = 0.0, (1.0 if len(values) and values.max() <= 1.0 else 255.0)
    else:
        low, high = 0.0, 0.5
    return colormaps["turbo" if mode == "height" else "viridis"]((values - low) / (high - low))[:, :3]


def track_colour(track_id) -> Tuple[float, float, float]:
    """A stable colour (RGB in [0, 1]) for a track id (int or str): the same id, the same colour in every frame
    and every run."""
    import zlib

    from matplotlib import colormaps

    return tuple(colormaps["tab20"](zlib.crc32(str(track_id).encode()) % 20)[:3])


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB values in [0, 1] → linear light (the sRGB standard's decoding)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def class_box_colours(labels: Sequence[int]) -> np.ndarray:
    """Class indices → (K, 3) RGB, the same class colours as the BEV pictures."""
    return np.array([hex_to_rgb(CLASS_COLOURS[int(k) % len(CLASS_COLOURS)]) for k in labels]).reshape(-1, 3)
