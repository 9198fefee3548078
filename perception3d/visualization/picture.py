"""Finished pictures: a class legend drawn in, and PNGs written atomically."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..utils.io import atomic_write
from .colours import GT_COLOUR, class_box_colours, label_colours


def add_legend(image: np.ndarray, labels: Sequence[int], classes: Sequence[str], ground_truth: bool = False
               ) -> np.ndarray:
    """The picture with a legend in its top-left corner: a swatch in the class colour and the class name for each
    class in ``labels`` (class indices), and a white "ground truth" line when ``ground_truth``."""
    from PIL import Image, ImageDraw

    shown = sorted({int(k) for k in labels if k >= 0})
    entries = list(zip([classes[k] for k in shown], class_box_colours(shown)))
    if ground_truth:
        entries.append(("ground truth", GT_COLOUR))
    if not entries:
        return image
    picture = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(picture)
    draw.rectangle([4, 4, 150, 10 + 16 * len(entries)], fill=(0, 0, 0), outline=(90, 90, 90))
    for row, (name, colour) in enumerate(entries):
        top = 10 + 16 * row
        draw.rectangle([10, top + 2, 20, top + 11], fill=tuple(int(round(255 * c)) for c in colour))
        draw.text((26, top), name, fill=(235, 235, 235))
    return np.asarray(picture)


def add_class_legend(image: np.ndarray, point_labels: Sequence[int], title: str = "") -> np.ndarray:
    """The picture with a legend of the lidarseg classes (1–16) among ``point_labels``, each in its point colour
    (:func:`label_colours`), under an optional ``title`` line (e.g. "ground truth", "prediction")."""
    from PIL import Image, ImageDraw

    from ..datasets.lidarseg import SEG_CLASSES

    shown = sorted({int(k) for k in np.unique(np.asarray(point_labels)) if 1 <= k <= len(SEG_CLASSES)})
    entries = [(SEG_CLASSES[k - 1], colour) for k, colour in zip(shown, label_colours(shown))]
    picture = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(picture)
    top0 = 10 + (16 if title else 0)
    draw.rectangle([4, 4, 160, top0 + 16 * len(entries)], fill=(0, 0, 0), outline=(90, 90, 90))
    if title:
        draw.text((10, 8), title, fill=(255, 255, 255))
    for row, (name, colour) in enumerate(entries):
        top = top0 + 16 * row
        draw.rectangle([10, top + 2, 20, top + 11], fill=tuple(int(round(255 * c)) for c in colour))
        draw.text((26, top), name, fill=(235, 235, 235))
    return np.asarray(picture)


def save_png(path: str, image: np.ndarray) -> None:
    """Writes an RGB uint8 image as PNG, atomically."""
    import io

    import imageio.v3 as iio

    buffer = io.BytesIO()
    iio.imwrite(buffer, image, extension=".png")
    atomic_write(Path(path), buffer.getvalue())
