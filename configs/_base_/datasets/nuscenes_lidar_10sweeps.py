# nuScenes LiDAR detection with 10 sweeps, as VoxelNeXt trains it. The embedded default is the synthetic
# nuScenes-format world (`python tools/create_data.py synthetic --out data/synthetic`); for real nuScenes
# run `tools/create_data.py nuscenes --root data/nuscenes ...` and point data_root there (the tools'
# --data-root flag rewrites every data_root of a config).
data_root = "data/synthetic/"
class_names = [
    "car", "truck", "bus", "trailer", "construction_vehicle",
    "pedestrian", "motorcycle", "bicycle", "traffic_cone", "barrier",
]
point_cloud_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]  # m: x_min, y_min, z_min, x_max, y_max, z_max

train_pipeline = [
    dict(type="LoadPoints", load_dim=5),
    dict(type="LoadSweeps", sweeps_num=10),
    dict(type="ObjectSample", classes=class_names,
         sample_groups=dict(car=2, truck=3, construction_vehicle=7, bus=4, trailer=6, barrier=2,
                            motorcycle=6, bicycle=6, pedestrian=2, traffic_cone=2),
         min_points={name: 5 for name in class_names}),
    dict(type="GlobalRotScaleTrans", rot_range=[-0.78539816, 0.78539816], scale_range=[0.9, 1.1],
         translation_std=[0.5, 0.5, 0.5]),
    dict(type="RandomFlip3D", flip_x_prob=0.5, flip_y_prob=0.5),
    dict(type="PointsRangeFilter", point_cloud_range=point_cloud_range),
    dict(type="ObjectRangeFilter", point_cloud_range=point_cloud_range),
    dict(type="PointShuffle"),
    dict(type="Pack"),
]
test_pipeline = [
    dict(type="LoadPoints", load_dim=5),
    dict(type="LoadSweeps", sweeps_num=10),
    dict(type="PointsRangeFilter", point_cloud_range=point_cloud_range),
    dict(type="Pack"),
]

train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type="SeededSampler", shuffle=True),  # augmentation seeded per (seed, epoch, index)
    dataset=dict(
        type="CBGSDataset",
        dataset=dict(type="NuScenesDataset", data_root=data_root, ann_file="nuscenes_infos_train.pkl",
                     pipeline=train_pipeline, classes=class_names)),
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
