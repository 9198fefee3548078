"""Box convention, frame transforms and sample containers."""
from .boxes import (BOX_DIM, BOX_FIELDS, bev_corners, box_corners, boxes_from_devkit, boxes_to_devkit,
                    check_boxes, limit_yaw, quaternion_to_yaw, quaternions_to_yaw, yaw_to_quaternion)
from .sample import LidarSample
from .frames import invert_pose, pose_matrix, record_pose, transform_boxes, transform_points

__all__ = [
    "BOX_DIM", "BOX_FIELDS", "bev_corners", "box_corners", "boxes_from_devkit", "boxes_to_devkit", "check_boxes",
    "limit_yaw", "quaternion_to_yaw", "quaternions_to_yaw", "yaw_to_quaternion", "invert_pose", "pose_matrix", "record_pose",
    "transform_boxes", "transform_points", "LidarSample",
]
