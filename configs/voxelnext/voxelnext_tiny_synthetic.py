# VoxelNeXt sized to train on 2 CPU cores in about 15 minutes on the synthetic world (the README's main job):
# voxel 0.2 × 0.2 × 0.25 m (BEV cells of 1.6 m at stride 8), stage widths up to 64 with one residual block in the
# two full-resolution stages, 1×1 head kernel as in the recipe; about 15k–25k voxels per frame. Everything else
# is the recipe (targets, code weights, AdamW, GT sampling, pipeline order, test-time shuffle), except:
# - 3 earlier sweeps, not 9: measured on this world (seed 0, 6 epochs), 9 sweeps cost 1.2× per iteration and
#   did not raise NDS (GPU proxy runs: NDS 0.447 with 3 sweeps, 0.433 with 5, 0.412 with 9; mAVE 3.16, 2.84,
#   2.77: the cars' velocity error fell from 4.95 to 1.91 m/s, the rare classes' stayed above 4).
# - No CBGS (the world is small and every scene holds all ten classes); 6 epochs of the one-cycle schedule at a
#   peak lr of 3e-3 for 2 samples per step (OpenPCDet's for short schedules), not scaled from the recipe's 32.
# NMS-free decoding, where chosen, looks at single cells for the small classes (barrier, two-wheelers,
# pedestrian/cone): a 3×3 window would merge neighbours.
_base_ = ["./voxelnext_voxel0075_nus.py"]

voxel_size = [0.2, 0.2, 0.25]
sweeps = 3
point_cloud_range = {{_base_.point_cloud_range}}
class_names = {{_base_.class_names}}
data_root = {{_base_.data_root}}

model = dict(
    data_preprocessor=dict(voxelizer=dict(voxel_size=voxel_size, max_voxels=(30000, 40000))),
    backbone=dict(channels=(16, 32, 64, 64, 64, 64), out_channels=64, blocks=(1, 1, 2, 2, 2, 2)),
    head=dict(in_channels=64, local_max_kernels=(3, 3, 3, 1, 1, 1)),
)

# the recipe's pipeline (see _base_/datasets/nuscenes_lidar_10sweeps.py for the yaml keys) with fewer sweeps
train_pipeline = [
    dict(type="LoadPoints", load_dim=5, ego_radius=0.0),
    dict(type="LoadSweeps", sweeps_num=sweeps),
    dict(type="ObjectSample", classes=class_names, sample_groups={{_base_.gt_sample_groups}},
         limit_whole_scene=True, min_points={{_base_.gt_min_points}}),
    dict(type="RandomFlip3D", flip_x_prob=0.5, flip_y_prob=0.5),
    dict(type="GlobalRotScaleTrans", rot_range=[-0.78539816, 0.78539816], scale_range=[0.9, 1.1],
         translation_std=[0.5, 0.5, 0.5]),
    dict(type="PointsRangeFilter", point_cloud_range=point_cloud_range),
    dict(type="ObjectRangeFilter", point_cloud_range=point_cloud_range),
    dict(type="PointShuffle"),
    dict(type="Pack"),
]
test_pipeline = [
    dict(type="LoadPoints", load_dim=5, ego_radius=0.0),
    dict(type="LoadSweeps", sweeps_num=sweeps),
    dict(type="PointsRangeFilter", point_cloud_range=point_cloud_range),
    dict(type="PointShuffle"),
    dict(type="Pack"),
]
train_dataloader = dict(
    batch_size=2,
    dataset=dict(_delete_=True, type="NuScenesDataset", data_root=data_root, ann_file="nuscenes_infos_train.pkl",
                 pipeline=train_pipeline, classes=class_names))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

lr = 3e-3
max_epochs = 6
warm_epochs = 2.4  # pct_start 0.4
optim_wrapper = dict(optimizer=dict(lr=lr))
auto_scale_lr = dict(enable=False)  # its own peak lr, measured at 2 samples per step, not scaled from 32
param_scheduler = [
    dict(type="OneCycleLR", eta_max=lr, pct_start=warm_epochs / max_epochs, div_factor=10, final_div_factor=1e4,
         anneal_strategy="cos", begin=0, end=max_epochs, by_epoch=True, convert_to_iter_based=True),
    dict(type="CosineAnnealingMomentum", eta_min=0.85, T_max=warm_epochs, begin=0, end=warm_epochs,
         by_epoch=True, convert_to_iter_based=True),
    dict(type="CosineAnnealingMomentum", eta_min=0.95, T_max=max_epochs - warm_epochs, begin=warm_epochs,
         end=max_epochs, by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(interval=20))
