# MinkUNet sized to train on 2 CPU cores on the synthetic world: half the recipe's widths and one residual block
# per stage (2.9 M parameters, about 0.4 s per 30k-point frame forward and backward on one core), the recipe's
# 0.1 m voxels, optimizer and one-cycle shape; a short schedule at batch 2 (the peak lr not scaled from 16).
_base_ = ["./minkunet18_w32_voxel01_nus_lidarseg.py"]

model = dict(network=dict(base_channels=16, encoder_channels=(16, 32, 64, 128), decoder_channels=(128, 64, 48, 48),
                          encoder_blocks=(1, 1, 1, 1), decoder_blocks=(1, 1, 1, 1)))
lr = 0.01
max_epochs = 6
auto_scale_lr = dict(enable=False)
param_scheduler = [
    dict(type="OneCycleLR", eta_max=lr, pct_start=0.2, div_factor=25, final_div_factor=100, begin=0,
         end=max_epochs, by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(interval=20))
