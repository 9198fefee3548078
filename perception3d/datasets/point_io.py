"""Reading LiDAR point files, checked at the door."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from mmengine.logging import print_log


def load_bin_points(path: str, load_dim: int = 5) -> np.ndarray:
    """A float32 .bin / .pcd.bin file of ``load_dim`` columns → (N, load_dim); NaN or inf rows are dropped.

    Raises FileNotFoundError for a missing file and ValueError naming the file for a size that is not a
    whole number of points, or for a cloud without a finite point.
    """
    path = str(path)
    try:
        size = os.path.getsize(path)
    except OSError:
        raise FileNotFoundError(f"point file {path} does not exist (is the data root right?)") from None
    row = 4 * load_dim
    if size % row:
        raise ValueError(f"point file {path} has {size} bytes, not a multiple of {load_dim} float32 columns "
                         f"({row} bytes per point); check --load-dims / load_dim")
    points = drop_non_finite(np.fromfile(path, dtype=np.float32).reshape(-1, load_dim), path)
    if len(points) == 0:
        raise ValueError(f"point file {path} holds no (finite) points")
    return points


def count_file_points(path: str, load_dim: int = 5) -> int:
    """Rows of a float32 .bin point file of ``load_dim`` columns, every row counted (as lidarseg files count
    them), without reading it."""
    try:
        return os.path.getsize(str(path)) // (4 * load_dim)
    except OSError:
        raise FileNotFoundError(f"point file {path} does not exist (is the data root right?)") from None


def drop_non_finite(points: np.ndarray, path: str) -> np.ndarray:
    """``points`` (N, C) without its rows holding a NaN or inf, with one warning naming ``path`` and how many rows
    were dropped (none when every value is finite)."""
    if np.isfinite(points.sum(dtype=np.float64)):  # one reduction; rows are checked only when needed
        return points
    finite = np.isfinite(points).all(axis=1)
    print_log(f"point file {path}: dropped {int((~finite).sum())} of its {len(points)} points (NaN or inf values)",
              logger="current", level=30)
    return points[finite]


# What load_points reads; .pcd.bin is nuScenes' name for its float32 .bin files.
POINT_FILE_TYPES = (".bin", ".pcd.bin", ".npy", ".pcd", ".ply")


def load_points(path: str, load_dims: int = 5) -> np.ndarray:
    """Any supported point file → float32 (N, 5) model input: x, y, z (m), intensity, time_lag (s).

    - .bin / .pcd.bin: float32 rows of ``load_dims`` columns (5 for nuScenes: x, y, z, intensity, ring; 4 for
      KITTI-style: x, y, z, reflectance);
    - .npy: a 2-D float array, x, y, z then optionally intensity;
    - .pcd (ASCII or binary) and .ply: read by Open3D; x, y, z and the ``intensity`` field if there is one.

    Missing columns are filled one way: intensity 0 where the file has none, time_lag 0 always (one sweep).
    Raises FileNotFoundError for a missing file and ValueError naming the file for an unknown extension or
    contents that are not a point cloud.
    """
    path = str(path)
    name = Path(path).name.lower()
    suffix = ".pcd.bin" if name.endswith(".pcd.bin") else Path(name).suffix
    if suffix not in POINT_FILE_TYPES:
        raise ValueError(f"point file {path}: unknown extension {suffix or '(none)'!r}; "
                         f"supported: {', '.join(POINT_FILE_TYPES)}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"point file {path} does not exist")
    if suffix in (".bin", ".pcd.bin"):
        if load_dims < 3:
            raise ValueError(f"--load-dims must be at least 3 (x, y, z), got {load_dims}")
        raw = load_bin_points(path, load_dims)
    elif suffix == ".npy":
        raw = _read_npy(path)
        if raw.ndim != 2 or raw.shape[1] < 3 or not np.issubdtype(raw.dtype, np.number):
            raise ValueError(f"point file {path} holds a {raw.dtype} array of shape {raw.shape}; expected "
                             f"(N, >= 3) numbers: x, y, z[, intensity, ...]")
    else:
        raw = _read_open3d(path)
    raw = np.asarray(raw, dtype=np.float32)
    if suffix not in (".bin", ".pcd.bin"):  # a .bin's rows were checked as it was read
        raw = drop_non_finite(raw[:, :4], path)
    if len(raw) == 0:
        raise ValueError(f"point file {path} holds no (finite) points")
    return pad_points(raw, min(raw.shape[1], 4))  # a file's 5th column (nuScenes: ring) is not a time lag


def pad_points(raw: np.ndarray, keep: int) -> np.ndarray:
    """The first ``keep`` (3 to 5) columns of ``raw`` (N, >= keep) in a float32 (N, 5) array of x, y, z (m),
    intensity, time_lag (s); the columns after them 0."""
    points = np.zeros((len(raw), 5), dtype=np.float32)
    points[:, :keep] = raw[:, :keep]
    return points


def _read_npy(path: str) -> np.ndarray:
    """The array of a .npy file, never unpickled; ValueError naming the file for anything else (an object array,
    not a .npy file)."""
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        reason = "an array of Python objects" if "allow_pickle" in str(e) else f"not a readable .npy array ({e})"
        raise ValueError(f"point file {path} holds {reason}; expected an (N, >= 3) array of numbers: x, y, "
                         f"z[, intensity, ...]") from e


def _read_open3d(path: str) -> np.ndarray:
    """x, y, z[, intensity] (N, 3 or 4) of a .pcd or .ply file, through Open3D's tensor reader (it keeps
    intensity, which the legacy reader drops)."""
    import open3d as o3d

    cloud = o3d.t.io.read_point_cloud(path)
    if "positions" not in cloud.point or len(cloud.point.positions) == 0:
        raise ValueError(f"point file {path}: Open3D read no points (not a point cloud, or an empty one)")
    columns = [cloud.point.positions.numpy().astype(np.float32)]
    if "intensity" in cloud.point:
        columns.append(cloud.point["intensity"].numpy().reshape(-1, 1).astype(np.float32))
    return np.concatenate(columns, axis=1)
