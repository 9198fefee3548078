"""Point clouds and boxes in 3-D with Open3D: an interactive window where there is a display, a PNG through
Open3D's OffscreenRenderer where there is none (software OpenGL on EGL's surfaceless platform: no display, no
GPU needed)."""
from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from ..structures import box_corners
from .colours import point_colours, srgb_to_linear

# The 12 edges of box_corners' 8 corners (bottom ring 0-3, top ring 4-7), then the heading mark: from the top
# face's centre (an extra 9th point) to the middle of its front edge (a 10th point).
BOX_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7), (8, 9))
CAMERAS = ("bev", "chase", "free")


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: vertical field of view (degrees), the point looked at, the eye and the up direction, in
    the cloud's frame (m)."""

    fov: float
    center: Tuple[float, float, float]
    eye: Tuple[float, float, float]
    up: Tuple[float, float, float]


def camera_preset(name: str, extent: float = 54.0, center: Sequence[float] = (0.0, 0.0, 0.0)) -> Camera:
    """``bev``: straight down on ``center`` (m; default the sensor) with +x up the picture, ±``extent`` m tall;
    ``chase``: from behind and above the sensor, looking ahead (``extent`` and ``center`` unused); ``free``: an
    oblique three-quarter view of the scene within ``extent`` m of ``center``."""
    c = np.asarray(center, dtype=np.float64).reshape(3)
    if name == "bev":
        fov = 40.0
        eye = c + (0.0, 0.0, extent / np.tan(np.radians(fov / 2)))
        return Camera(fov, tuple(c), tuple(eye), (1.0, 0.0, 0.0))
    if name == "chase":
        return Camera(60.0, (20.0, 0.0, 0.0), (-12.0, 0.0, 10.0), (0.0, 0.0, 1.0))
    if name == "free":
        return Camera(50.0, tuple(c), tuple(c + (-0.9 * extent, -0.9 * extent, 0.8 * extent)), (0.0, 0.0, 1.0))
    raise ValueError(f"camera must be one of {', '.join(CAMERAS)}, got {name!r}")


def fit_view(points: np.ndarray, around_sensor: bool = False) -> Tuple[float, Tuple[float, float, float]]:
    """The view that frames a cloud (N, >= 3; m): (half-width ``extent`` m, ``center`` (x, y, z) m) from its
    2nd to 98th percentiles of x and y (stray far points left out), 10 % margin, at least 5 m. With
    ``around_sensor`` the center stays at the sensor (0, 0, 0) and the extent reaches the farther side."""
    xyz = np.asarray(points, dtype=np.float64)[:, :3]
    if not len(xyz):
        return 54.0, (0.0, 0.0, 0.0)
    low, high = np.percentile(xyz[:, :2], [2, 98], axis=0)
    if around_sensor:
        return float(max(1.1 * np.abs([low, high]).max(), 5.0)), (0.0, 0.0, 0.0)
    middle = (low + high) / 2
    extent = max(1.1 * float((high - low).max()) / 2, 5.0)
    return extent, (float(middle[0]), float(middle[1]), float(np.median(xyz[:, 2])))


def box_lines(boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(K, 9) boxes → line vertices (K * 10, 3) and index pairs (K * 13, 2): each box's 12 edges and the heading
    mark from its top centre to the middle of its top front edge."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 9)
    corners = box_corners(boxes)  # (K, 8, 3)
    top_centre = corners[:, 4:8].mean(axis=1, keepdims=True)
    front = corners[:, [4, 7]].mean(axis=1, keepdims=True)  # front-left and front-right at the top
    vertices = np.concatenate([corners, top_centre, front], axis=1)  # (K, 10, 3)
    edges = np.asarray(BOX_EDGES)[None] + 10 * np.arange(len(boxes))[:, None, None]
    return vertices.reshape(-1, 3), edges.reshape(-1, 2)


def _geometries(points, boxes, box_colours, colour_by, trails=(), linear=True):
    """The Open3D geometries of a scene: the cloud, the boxes' lines (white without ``box_colours``), the
    trails. ``linear``: colours decoded
    from sRGB to linear light, as the off-screen renderer takes them (it encodes them back to sRGB on the way out,
    so the picture shows the colours given); the window's legacy renderer takes them as they are."""
    import open3d as o3d

    def colours(rgb):
        rgb = np.asarray(rgb, dtype=np.float64).reshape(-1, 3)
        return o3d.utility.Vector3dVector(srgb_to_linear(rgb) if linear else rgb)

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points)[:, :3].astype(np.float64)))
    cloud.colors = colours(point_colours(points, colour_by))
    geometries = [cloud]
    boxes = np.zeros((0, 9)) if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(-1, 9)
    if len(boxes):
        vertices, edges = box_lines(boxes)
        lines = o3d.geometry.LineSet(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector2iVector(edges))
        box_colours = np.ones((len(boxes), 3)) if box_colours is None else np.asarray(box_colours).reshape(-1, 3)
        lines.colors = colours(np.repeat(box_colours, len(BOX_EDGES), axis=0))
        geometries.append(lines)
    for path, colour in trails:  # a polyline through a track's past centres
        path = np.asarray(path, dtype=np.float64).reshape(-1, 3)
        if len(path):  # steps under 1 cm left out: a standing object has no trail (and Open3D no flat line)
            path = path[np.concatenate([[True], np.linalg.norm(np.diff(path, axis=0), axis=1) > 0.01])]
        if len(path) >= 2:
            segments = np.column_stack([np.arange(len(path) - 1), np.arange(1, len(path))])
            trail = o3d.geometry.LineSet(o3d.utility.Vector3dVector(path), o3d.utility.Vector2iVector(segments))
            trail.colors = colours(np.tile(np.asarray(colour), (len(segments), 1)))
            geometries.append(trail)
    return geometries


def render_image(points: np.ndarray, boxes: Optional[np.ndarray] = None, box_colours: Optional[np.ndarray] = None,
                 camera: Camera = None, width: int = 1280, height: int = 960, point_size: float = 2.0,
                 line_width: float = 2.0, colour_by: str = "height",
                 background: Tuple[float, float, float] = (0.0, 0.0, 0.0), trails: Sequence = ()) -> np.ndarray:
    """Renders ``points`` (N, >= 3) and ``boxes`` (K, 9) in ``box_colours`` (K, 3; white without) seen by
    ``camera`` (default: bird's eye) off screen → uint8 RGB image (height, width, 3). ``trails``: (path (P, 3) m,
    RGB colour) pairs drawn as polylines (tracks' past centres)."""
    os.environ.setdefault("EGL_PLATFORM", "surfaceless")  # EGL without a display (read when the renderer starts)
    ensure_runtime_dir()
    import open3d.visualization.rendering as rendering

    camera = camera or camera_preset("bev")
    renderer = _renderer(int(width), int(height))
    renderer.scene.clear_geometry()
    try:
        renderer.scene.set_background([*background, 1.0])
        for i, geometry in enumerate(_geometries(points, boxes, box_colours, colour_by, trails)):
            if i == 0 and not len(geometry.points):
                continue
            material = rendering.MaterialRecord()
            material.shader = "defaultUnlit" if i == 0 else "unlitLine"
            material.point_size = float(point_size)
            material.line_width = float(line_width)
            renderer.scene.add_geometry(f"geometry{i}", geometry, material)
        renderer.setup_camera(camera.fov, np.asarray(camera.center, np.float32), np.asarray(camera.eye, np.float32),
                              np.asarray(camera.up, np.float32))
        # near and far planes fixed, not fitted to what the scene holds (a lone box would be clipped away)
        renderer.scene.camera.set_projection(camera.fov, width / height, 0.1, 2000.0,
                                             rendering.Camera.FovType.Vertical)
        return np.asarray(renderer.render_to_image()).copy()
    finally:
        renderer.scene.clear_geometry()


_RENDERERS = {}


def ensure_runtime_dir() -> str:
    """Sets XDG_RUNTIME_DIR to a private folder (ours, mode 0700, in the temp dir) when it is unset or not a
    writable folder, before Open3D's renderer starts: without one it prints "error: XDG_RUNTIME_DIR is invalid"
    on a run that works. Returns the folder in use."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and os.path.isdir(current) and os.access(current, os.W_OK | os.X_OK):
        return current
    folder = Path(tempfile.gettempdir()) / f"perception3d-runtime-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
        private = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) == 0o700
    except OSError:
        private = False
    if not private:  # the name is taken (another user's, a file, a link): a fresh folder of our own
        folder = Path(tempfile.mkdtemp(prefix="perception3d-runtime-"))
    os.environ["XDG_RUNTIME_DIR"] = str(folder)
    return str(folder)


def _renderer(width: int, height: int):
    """One OffscreenRenderer per picture size for the whole process (starting one costs more than a frame)."""
    import open3d.visualization.rendering as rendering

    if (width, height) not in _RENDERERS:
        renderer = rendering.OffscreenRenderer(width, height)
        # no tone curve: with the colours decoded from sRGB, the picture shows them as given (within 2 levels)
        renderer.scene.view.set_color_grading(rendering.ColorGrading(rendering.ColorGrading.Quality.ULTRA,
                                                                     rendering.ColorGrading.ToneMapping.LINEAR))
        _RENDERERS[(width, height)] = renderer
    return _RENDERERS[(width, height)]


def has_display() -> bool:
    """Whether a window can open (an X or Wayland display is set)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def pinhole_parameters(camera: Camera, width: int, height: int):
    """The camera as Open3D's PinholeCameraParameters for a width × height view: the intrinsics of its vertical
    field of view (principal point in the middle) and the world → camera extrinsic (x right, y down, z ahead)."""
    import open3d as o3d

    eye, center, up = (np.asarray(v, dtype=np.float64) for v in (camera.eye, camera.center, camera.up))
    forward = (center - eye) / np.linalg.norm(center - eye)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    rotation = np.stack([right, np.cross(forward, right), forward])
    extrinsic = np.eye(4)
    extrinsic[:3, :3], extrinsic[:3, 3] = rotation, -rotation @ eye
    focal = (height / 2) / np.tan(np.radians(camera.fov) / 2)
    parameters = o3d.camera.PinholeCameraParameters()
    parameters.intrinsic = o3d.camera.PinholeCameraIntrinsic(width, height, focal, focal, width / 2 - 0.5,
                                                             height / 2 - 0.5)
    parameters.extrinsic = extrinsic
    return parameters


def show_window(points: np.ndarray, boxes: Optional[np.ndarray] = None, box_colours: Optional[np.ndarray] = None,
                camera: Optional[Camera] = None, width: int = 1280, height: int = 960, colour_by: str = "height",
                title: str = "perception3d", trails: Sequence = (), point_size: float = 2.0) -> None:
    """Opens an interactive Open3D window of ``width`` × ``height`` at the screen's top-left corner showing what
    :func:`render_image` draws, seen by ``camera`` (default: bird's eye) to start with (mouse to turn, scroll to
    zoom, Q or Esc to quit); returns when it is closed. Raises RuntimeError without a display or when the window
    cannot open: save a PNG instead."""
    import open3d as o3d

    if not has_display():
        raise RuntimeError("no display (DISPLAY / WAYLAND_DISPLAY unset): give an output file to save a picture")
    ensure_runtime_dir()
    window = o3d.visualization.Visualizer()
    if not window.create_window(window_name=title, width=int(width), height=int(height), left=0, top=0):
        raise RuntimeError("Open3D could not open a window on this display (no OpenGL there?): give an output "
                           "file to save a picture instead")
    try:
        for geometry in _geometries(points, boxes, box_colours, colour_by, trails, linear=False):
            window.add_geometry(geometry)
        options = window.get_render_option()
        options.background_color = np.zeros(3)
        options.point_size = float(point_size)
        window.get_view_control().convert_from_pinhole_camera_parameters(
            pinhole_parameters(camera or camera_preset("bev"), int(width), int(height)), allow_arbitrary=True)
        window.run()
    finally:
        window.destroy_window()
