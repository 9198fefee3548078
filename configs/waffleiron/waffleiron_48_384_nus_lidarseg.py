# WaffleIron-48-384 on nuScenes-lidarseg (Puy et al., ICCV 2023): valeoai/WaffleIron's
# configs/WaffleIron-48-384__nuscenes.yaml with launch_train.py and utils/ (the yaml keys are named on each line);
# reported val mIoU 77.6 (its README, no test-time augmentation). perception3d/models/segmentors/waffleiron.py
# mirrors the network and names its files.
# Differences on purpose:
# - flips: x and y each with probability 0.5 (RandomFlip3D), where the reference flips one of them with
#   probability 2/3; a flip of both is a half turn, which the rotation draws anyway.
# - the reference also rotates and scales the network's copies of x, y (and of z, radius) apart from the
#   coordinates used for the grids and neighbours ("rotation [2, 6]", "scale [4, 5, 6, 7] 0.1"); our networks
#   build their features from the points they are given, so the coordinates are rotated once and not scaled.
# - the warm-up starts at 1e-3 of the peak, where the reference's starts at 0 (mmengine's LinearLR cannot).
# - fp32 (the reference trains under fp16 autocast); BatchNorm over the real points of a batch, not padding.
_base_ = ["../_base_/datasets/nuscenes_lidarseg.py", "../_base_/default_runtime.py"]

model = dict(
    type="PointSegmentor",
    num_classes=16,  # classif nb_class
    network=dict(type="WaffleIron", in_channels=5,  # embedding size_input: intensity, x, y, z, radius
                 width=384, depth=48,  # waffleiron nb_channels, depth
                 num_neighbors=16,  # embedding neighbors
                 grid_shape=((166, 166), (166, 16), (166, 16)), dim_proj=(2, 1, 0),  # grids_size, dim_proj
                 fov=((-50, -50, -5), (50, 50, 5)),  # fov_xyz
                 drop_path=0.2),  # waffleiron drop
    ce_weight=1.0, lovasz_weight=1.0,  # loss lovasz 1.0 (SemSegLoss: cross entropy + lovasz)
)
train_pipeline = [
    dict(type="LoadPoints", load_dim=5, ego_radius=0.0, with_point_index=True),
    dict(type="LoadPointLabels"),
    dict(type="GridSample", voxel_size=0.1, random=True),  # embedding voxel_size, Voxelize(random) in training
    dict(type="LimitNumPoints", max_points=20000, random=True),  # dataloader max_points
    dict(type="GlobalRotScaleTrans", rot_range=[-3.14159265, 3.14159265], scale_range=[1.0, 1.0]),  # rotation
    dict(type="RandomFlip3D", flip_x_prob=0.5, flip_y_prob=0.5),  # flip_xy
    dict(type="Pack"),
]
test_pipeline = [
    dict(type="LoadPoints", load_dim=5, ego_radius=0.0, with_point_index=True),
    dict(type="GridSample", voxel_size=0.1, random=False),  # Voxelize at validation: the first point per voxel
    dict(type="Pack"),  # every point of the file gets the class of its nearest kept point (LidarSegMetric)
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))  # dataloader batch_size (in total)
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

lr = 1e-3
max_epochs = 45  # scheduler max_epoch
warm_epochs = 4  # scheduler epoch_warmup
optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=lr, weight_decay=0.003))  # optim
auto_scale_lr = dict(enable=False)
param_scheduler = [  # utils/scheduler.py WarmupCosine, per iteration: linear warm-up, then cosine to min_lr 1e-5
    dict(type="LinearLR", start_factor=1e-3, end_factor=1.0, begin=0, end=warm_epochs, by_epoch=True,
         convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min=1e-5, T_max=max_epochs - warm_epochs, begin=warm_epochs, end=max_epochs,
         by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
default_hooks = dict(checkpoint=dict(save_best="LidarSeg/mIoU", rule="greater"))
