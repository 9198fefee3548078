"""A synthetic world in the nuScenes format: streets, traffic and a ray-cast 32-beam LiDAR."""
from .writer import create_synthetic_world, scene_names

__all__ = ["create_synthetic_world", "scene_names"]
