"""Writing rendered frames as a video: MP4 through imageio's ffmpeg, GIF through Pillow."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

VIDEO_TYPES = (".mp4", ".gif")


def write_video(path: str, frames: Iterable[np.ndarray], fps: float = 2.0) -> int:
    """Writes uint8 RGB frames (H, W, 3), all one size, to ``path`` (.mp4 or .gif) at ``fps`` frames per second
    (nuScenes key frames come at 2 Hz), atomically → the number of frames written."""
    import imageio.v2 as imageio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_TYPES:
        raise ValueError(f"video file {path}: use one of {', '.join(VIDEO_TYPES)}")
    partial = path.with_name(f".{path.stem}.partial{suffix}")
    count = 0
    if suffix == ".mp4":
        writer = imageio.get_writer(partial, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=16,
                                    ffmpeg_log_level="error")
    else:
        writer = imageio.get_writer(partial, format="GIF", duration=1000.0 / fps, loop=0)
    try:
        for frame in frames:
            writer.append_data(np.asarray(frame, dtype=np.uint8))
            count += 1
    finally:
        writer.close()
    if not count:
        partial.unlink(missing_ok=True)
        raise ValueError(f"video file {path}: no frames to write")
    os.replace(partial, path)
    return count
