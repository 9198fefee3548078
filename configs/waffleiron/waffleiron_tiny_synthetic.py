# WaffleIron sized to train on 2 CPU cores on the synthetic world: width 64 and depth 12 (the recipe's 384 and
# 48), 0.2 m thinning and at most 10k points per training frame (the recipe's 0.1 m and 20k); the recipe's
# grids (0.6 m cells), neighbours, losses, optimizer and warm-up + cosine shape, over a short schedule at batch 2.
_base_ = ["./waffleiron_48_384_nus_lidarseg.py"]

model = dict(network=dict(width=64, depth=12, drop_path=0.1))
train_pipeline = [
    dict(type="LoadPoints", load_dim=5, ego_radius=0.0, with_point_index=True),
    dict(type="LoadPointLabels"),
    dict(type="GridSample", voxel_size=0.2, random=True),
    dict(type="LimitNumPoints", max_points=10000, random=True),
    dict(type="GlobalRotScaleTrans", rot_range=[-3.14159265, 3.14159265], scale_range=[1.0, 1.0]),
    dict(type="RandomFlip3D", flip_x_prob=0.5, flip_y_prob=0.5),
    dict(type="Pack"),
]
test_pipeline = [
    dict(type="LoadPoints", load_dim=5, ego_radius=0.0, with_point_index=True),
    dict(type="GridSample", voxel_size=0.2, random=False),
    dict(type="Pack"),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

lr = 1e-3
max_epochs = 6
warm_epochs = 0.5
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-3, end_factor=1.0, begin=0, end=warm_epochs, by_epoch=True,
         convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", eta_min=1e-5, T_max=max_epochs - warm_epochs, begin=warm_epochs, end=max_epochs,
         by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(interval=20))
