# nuScenes-lidarseg: every point of a key frame labelled with one of the devkit's 16 classes (0 ignored), scored
# by the devkit's LidarSegEval (mIoU). The embedded default is the synthetic world, whose key frames carry
# lidarseg labels (`python tools/create_data.py synthetic --out data/synthetic`); for real nuScenes with
# nuScenes-lidarseg unpacked into its root run `tools/create_data.py nuscenes --root data/nuscenes ...` and point
# data_root there (--data-root). Key frames only, every point of the file (the ego's roof and rays without a
# return carry class 0 and are ignored, as in nuScenes-lidarseg).
data_root = "data/synthetic/"
train_pipeline = [
    dict(type="LoadPoints", load_dim=5, ego_radius=0.0, with_point_index=True),
    dict(type="LoadPointLabels"),
    dict(type="RandomFlip3D", flip_x_prob=0.5, flip_y_prob=0.5),
    dict(type="GlobalRotScaleTrans", rot_range=[-0.78539816, 0.78539816], scale_range=[0.95, 1.05]),
    dict(type="PointShuffle"),
    dict(type="Pack"),
]
test_pipeline = [
    dict(type="LoadPoints", load_dim=5, ego_radius=0.0, with_point_index=True),
    dict(type="Pack"),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type="SeededSampler", shuffle=True),  # augmentation seeded per (seed, epoch, index)
    dataset=dict(type="NuScenesSegDataset", data_root=data_root, ann_file="nuscenes_infos_train.pkl",
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(type="NuScenesSegDataset", data_root=data_root, ann_file="nuscenes_infos_val.pkl",
                 pipeline=test_pipeline, test_mode=True),
)
test_dataloader = val_dataloader
# the devkit's LidarSegEval on the split found under data_root (v1.0-trainval → val, v1.0-mini → mini_val); its
# result files and numbers go to <work-dir>/eval
val_evaluator = dict(type="LidarSegMetric", data_root=data_root)
test_evaluator = val_evaluator
