# VoxelNeXt's schedule (OpenPCDet's adam_onecycle): Adam, lr 1e-3 reached at 40 % of training from lr / 10 and
# annealed to lr / 1e5 (cosine), beta1 0.95 → 0.85 → 0.95 against it, weight decay 0.01, gradient clip 10, 20 epochs.
lr = 1e-3
max_epochs = 20
warm_epochs = 8  # pct_start 0.4 of 20 epochs

optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="Adam", lr=lr, betas=(0.95, 0.99), weight_decay=0.01),
    clip_grad=dict(max_norm=10, norm_type=2),
)
param_scheduler = [
    dict(type="OneCycleLR", eta_max=lr, pct_start=warm_epochs / max_epochs, div_factor=10, final_div_factor=1e4,
         anneal_strategy="cos", begin=0, end=max_epochs, by_epoch=True, convert_to_iter_based=True),
    dict(type="CosineAnnealingMomentum", eta_min=0.85, T_max=warm_epochs, begin=0, end=warm_epochs,
         by_epoch=True, convert_to_iter_based=True),
    dict(type="CosineAnnealingMomentum", eta_min=0.95, T_max=max_epochs - warm_epochs, begin=warm_epochs,
         end=max_epochs, by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
