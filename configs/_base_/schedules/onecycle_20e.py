# VoxelNeXt's schedule, OpenPCDet's adam_onecycle (tools/train_utils/optimization/__init__.py, fastai_optim.py,
# learning_schedules_fastai.py OneCycle) with cbgs_voxel0075_voxelnext.yaml's OPTIMIZATION values:
# - OPTIMIZER adam_onecycle: Adam with betas (MOMS[0], 0.99) and weight decay applied outside the gradient to
#   every parameter, BatchNorm and biases included (OptimWrapper true_wd=True, bn_wd=True: p *= 1 - lr * wd
#   before the Adam step), which is torch's AdamW with no per-parameter exceptions.
# - LR 0.001 reached at PCT_START 0.4 of the steps from LR / DIV_FACTOR (10), annealed (cosine) to LR / 10 / 1e4;
#   beta1 MOMS 0.95 → 0.85 → 0.95 against it. WEIGHT_DECAY 0.01, GRAD_NORM_CLIP 10, NUM_EPOCHS 20.
# - Batch: BATCH_SIZE_PER_GPU 4 on the 8 GPUs of the released model = 32 per step; with fewer samples per step
#   tools/train.py scales the peak lr linearly (auto_scale_lr) and logs it.
lr = 1e-3
max_epochs = 20
warm_epochs = 8  # pct_start 0.4 of 20 epochs

optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=lr, betas=(0.95, 0.99), weight_decay=0.01),
    clip_grad=dict(max_norm=10, norm_type=2),
)
auto_scale_lr = dict(enable=True, base_batch_size=32)
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
