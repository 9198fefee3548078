# VoxelNeXt sized for CPU training on the synthetic world: voxel 0.15 × 0.15 × 0.25 m (BEV cells of 1.2 m at
# stride 8), 3 sweeps, stage widths up to 64, 1×1 head kernel as in the recipe; about 15k–30k voxels per frame.
# NMS-free decoding looks at single cells for the small classes (barrier, two-wheelers, pedestrian/cone): a 3×3
# window of 1.2 m cells would merge neighbours in a crowd.
_base_ = ["./voxelnext_voxel0075_nus.py"]

voxel_size = [0.15, 0.15, 0.25]
sweeps = 3
point_cloud_range = {{_base_.point_cloud_range}}
class_names = {{_base_.class_names}}

model = dict(
    data_preprocessor=dict(voxelizer=dict(voxel_size=voxel_size, max_voxels=(30000, 40000))),
    backbone=dict(channels=(16, 32, 64, 64, 64, 64), out_channels=64),
    head=dict(in_channels=64, local_max_kernels=(3, 3, 3, 1, 1, 1)),
)

train_pipeline = [
    dict(type="LoadPoints", load_dim=5),
    dict(type="LoadSweeps", sweeps_num=sweeps),
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
    dict(type="LoadSweeps", sweeps_num=sweeps),
    dict(type="PointsRangeFilter", point_cloud_range=point_cloud_range),
    dict(type="Pack"),
]
train_dataloader = dict(batch_size=2, dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
