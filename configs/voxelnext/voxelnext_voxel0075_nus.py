# VoxelNeXt on nuScenes (Chen et al., CVPR 2023), the released recipe: OpenPCDet's
# tools/cfgs/nuscenes_models/cbgs_voxel0075_voxelnext.yaml value for value (each line names the key it mirrors;
# the data pipeline and the schedule are in the _base_ files). Reference: nuScenes val 60.53 mAP / 66.65 NDS
# (OpenPCDet's model zoo, voxelnext_nuscenes_kernel1.pth, which tools/convert_checkpoint.py converts).
_base_ = ["../_base_/datasets/nuscenes_lidar_10sweeps.py", "../_base_/schedules/onecycle_20e.py",
          "../_base_/default_runtime.py"]

voxel_size = [0.075, 0.075, 0.2]  # DATA_PROCESSOR transform_points_to_voxels VOXEL_SIZE
model = dict(
    type="VoxelNeXt",
    data_preprocessor=dict(
        type="VoxelDataPreprocessor",
        # VFE MeanVFE over MAX_POINTS_PER_VOXEL 10, MAX_NUMBER_OF_VOXELS train 120000 / test 160000
        voxelizer=dict(type="Voxelizer", voxel_size=voxel_size, point_cloud_range={{_base_.point_cloud_range}},
                       mode="hard", max_points_per_voxel=10, max_voxels=(120000, 160000))),
    # BACKBONE_3D VoxelResBackBone8xVoxelNeXt: CHANNELS [16, 32, 64, 128, 128] (stage 6 = channels[4]),
    # OUT_CHANNEL 128, two SparseBasicBlocks per stage
    backbone=dict(type="VoxelNeXtBackbone", in_channels=5, channels=(16, 32, 64, 128, 128, 128), out_channels=128),
    head=dict(
        type="VoxelNeXtHead",
        in_channels=128,  # INPUT_FEATURES, SHARED_CONV_CHANNEL
        classes={{_base_.class_names}},  # CLASS_NAMES_EACH_HEAD: the six groups of NUSCENES_GROUPS
        head_kernel=1,  # KERNEL_SIZE_HEAD
        min_overlap=0.1, min_radius=2,  # TARGET_ASSIGNER_CONFIG GAUSSIAN_OVERLAP, MIN_RADIUS
        loc_weight=0.25,  # LOSS_WEIGHTS loc_weight (cls_weight 1)
        code_weights=(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2, 1.0, 1.0),  # LOSS_WEIGHTS code_weights
        decode="nms",  # NMS_CONFIG NMS_TYPE nms_gpu (rotated BEV IoU), class-agnostic within a group
        max_objects=500,  # MAX_OBJ_PER_SAMPLE, NUM_MAX_OBJS
        score_thresh=0.1,  # SCORE_THRESH
        post_center_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],  # POST_CENTER_LIMIT_RANGE
        nms_iou=0.2, nms_pre_max=1000, nms_post_max=83),  # NMS_THRESH, NMS_PRE_MAXSIZE, NMS_POST_MAXSIZE
)
