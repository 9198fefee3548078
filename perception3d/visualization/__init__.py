"""Drawing point clouds, boxes and tracks: Open3D scenes (window or head-less PNG), matplotlib BEV, videos."""
from .bev import CLASS_COLOURS, draw_bev
from .lidar_visualizer import LidarVisualizer
from .open3d_scene import Camera, camera_preset, class_box_colours, render_image, save_png, show_window
from .video import write_video

__all__ = ["CLASS_COLOURS", "Camera", "LidarVisualizer", "camera_preset", "class_box_colours", "draw_bev",
           "render_image", "save_png", "show_window", "write_video"]
