# VoxelNeXt on nuScenes (Chen et al., CVPR 2023), the released recipe: voxel 0.075 × 0.075 × 0.2 m, 10 sweeps,
# 1×1 head kernel, NMS decoding, CBGS + GT sampling, Adam one-cycle for 20 epochs at 4 samples per GPU.
# Reference: nuScenes val 60.5 mAP / 66.6 NDS.
_base_ = ["../_base_/datasets/nuscenes_lidar_10sweeps.py", "../_base_/schedules/onecycle_20e.py",
          "../_base_/default_runtime.py"]

voxel_size = [0.075, 0.075, 0.2]
model = dict(
    type="VoxelNeXt",
    data_preprocessor=dict(
        type="VoxelDataPreprocessor",
        voxelizer=dict(type="Voxelizer", voxel_size=voxel_size, point_cloud_range={{_base_.point_cloud_range}},
                       mode="hard", max_points_per_voxel=10, max_voxels=(120000, 160000))),
    backbone=dict(type="VoxelNeXtBackbone", in_channels=5, channels=(16, 32, 64, 128, 128, 128), out_channels=128),
    head=dict(type="VoxelNeXtHead", in_channels=128, classes={{_base_.class_names}}, head_kernel=1,
              decode="nms", max_objects=500, score_thresh=0.1, nms_iou=0.2, nms_pre_max=1000, nms_post_max=83),
)
