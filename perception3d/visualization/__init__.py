"""Drawing point clouds, boxes and tracks: Open3D scenes (window or head-less PNG), matplotlib BEV, videos."""
from .bev import render_bev
from .colours import CLASS_COLOURS, GT_COLOUR, class_box_colours, label_colours, point_colours, track_colour
from .lidar_visualizer import LidarVisualizer
from .open3d_scene import Camera, camera_preset, render_image, show_window
from .picture import add_class_legend, add_legend, save_png
from .video import write_video

__all__ = ["CLASS_COLOURS", "Camera", "GT_COLOUR", "LidarVisualizer", "add_class_legend", "add_legend",
           "camera_preset", "class_box_colours", "label_colours", "point_colours", "render_bev", "render_image",
           "save_png", "show_window", "track_colour", "write_video"]
