# nuScenes LiDAR detection with 10 sweeps (the key frame and 9 earlier ones), as VoxelNeXt trains it. The
# embedded default is the synthetic nuScenes-format world (`python tools/create_data.py synthetic --out
# data/synthetic`); for real nuScenes run `tools/create_data.py nuscenes --root data/nuscenes ...` and point
# data_root there (the tools' --data-root flag rewrites every data_root of a config).
data_root = "data/synthetic/"
class_names = [
    "car", "truck", "bus", "trailer", "construction_vehicle",
    "pedestrian", "motorcycle", "bicycle", "traffic_cone", "barrier",
]
point_cloud_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]  # POINT_CLOUD_RANGE, m: x, y, z min then max

# Mirrors OpenPCDet's tools/cfgs/dataset_configs/nuscenes_dataset.yaml as overridden by
# tools/cfgs/nuscenes_models/cbgs_voxel0075_voxelnext.yaml (the yaml keys are named on each line).
# gt_sampling: SAMPLE_GROUPS 2 for every class, LIMIT_WHOLE_SCENE True, filter_by_min_points 5
gt_sample_groups = {name: 2 for name in class_names}
gt_min_points = {name: 5 for name in class_names}
sweeps = 9  # MAX_SWEEPS: 10 = the key frame + 9 earlier sweeps (get_lidar_with_sweeps loads max_sweeps - 1)
train_pipeline = [
    # get_lidar_with_sweeps: the key frame whole (only sweeps lose the |x|, |y| < 1 m ego square)
    dict(type="LoadPoints", load_dim=5, ego_radius=0.0),
    dict(type="LoadSweeps", sweeps_num=sweeps),
    dict(type="ObjectSample", classes=class_names, sample_groups=gt_sample_groups, limit_whole_scene=True,
         min_points=gt_min_points),
    dict(type="RandomFlip3D", flip_x_prob=0.5, flip_y_prob=0.5),  # random_world_flip ALONG_AXIS_LIST [x, y]
    # random_world_rotation WORLD_ROT_ANGLE, random_world_scaling WORLD_SCALE_RANGE,
    # random_world_translation NOISE_TRANSLATE_STD
    dict(type="GlobalRotScaleTrans", rot_range=[-0.78539816, 0.78539816], scale_range=[0.9, 1.1],
         translation_std=[0.5, 0.5, 0.5]),
    dict(type="PointsRangeFilter", point_cloud_range=point_cloud_range),  # mask_points_and_boxes_outside_range
    dict(type="ObjectRangeFilter", point_cloud_range=point_cloud_range),  # REMOVE_OUTSIDE_BOXES True
    dict(type="PointShuffle"),  # shuffle_points SHUFFLE_ENABLED train True
    dict(type="Pack"),
]
test_pipeline = [
    dict(type="LoadPoints", load_dim=5, ego_radius=0.0),
    dict(type="LoadSweeps", sweeps_num=sweeps),
    dict(type="PointsRangeFilter", point_cloud_range=point_cloud_range),
    # shuffle_points SHUFFLE_ENABLED test True: which points fill a voxel's 10 slots and which voxels survive
    # the cap are drawn as in training (seeded by the sample's index at test time, so evaluation repeats)
    dict(type="PointShuffle"),
    dict(type="Pack"),
]

train_dataloader = dict(
    batch_size=4,  # BATCH_SIZE_PER_GPU
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type="SeededSampler", shuffle=True),  # augmentation seeded per (seed, epoch, index)
    dataset=dict(
        type="CBGSDataset",  # BALANCED_RESAMPLING True
        dataset=dict(type="NuScenesDataset", data_root=data_root, ann_file="nuscenes_infos_train.pkl",
                     pipeline=train_pipeline, classes=class_names,
                     min_gt_points=1)),  # FILTER_MIN_POINTS_IN_GT: boxes without a LiDAR point are not trained on
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(type="NuScenesDataset", data_root=data_root, ann_file="nuscenes_infos_val.pkl",
                 pipeline=test_pipeline, classes=class_names, test_mode=True),
)
test_dataloader = val_dataloader

# The official devkit's DetectionEval; the version (v1.0-trainval → val, else v1.0-mini → mini_val) is found
# under data_root unless named.
val_evaluator = dict(type="NuScenesMetric", data_root=data_root)
test_evaluator = val_evaluator
