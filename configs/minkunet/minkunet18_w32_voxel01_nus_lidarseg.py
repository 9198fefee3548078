# MinkUNet18-W32 on nuScenes-lidarseg at 0.1 m voxels: the lidarseg benchmark recipe of mmdetection3d's lidarseg
# branch (sunjiahao1999/mmdetection3d@fd9da80, mmdet3d/configs/lidarseg_benchmark/
# minkunet18_w32_spconv_8xb2_amp_80e_nus_seg.py with _base_/schedules/lidarseg_80e.py), on our spconv MinkUNet
# (perception3d/models/segmentors/minkunet.py names the model files it mirrors). Its reported val mIoU we have
# not found; the MinkUNet34 twin is encoder_blocks=(2, 3, 4, 6).
# Differences on purpose: 16 outputs for the devkit's classes 1-16 with class 0 ignored (the reference maps
# ignore to a 17th index 16, the same thing); the loss is per point, not per voxel; fp32 (no AMP on the CPU);
# 5 input columns (x, y, z, intensity and the time lag, 0 for a key frame: a zero column changes nothing).
_base_ = ["../_base_/datasets/nuscenes_lidarseg.py", "../_base_/default_runtime.py"]

model = dict(
    type="PointSegmentor",
    num_classes=16,
    network=dict(type="MinkUNet", in_channels=5, voxel_size=[0.1, 0.1, 0.1],  # voxel_layer voxel_size 0.1
                 base_channels=32, encoder_channels=(32, 64, 128, 256), decoder_channels=(256, 128, 96, 96),
                 encoder_blocks=(2, 2, 2, 2), decoder_blocks=(2, 2, 2, 2), block_type="basic"),
    ce_weight=1.0,  # decode_head loss_decode CrossEntropyLoss
)
train_dataloader = dict(batch_size=2)  # 8 GPUs x 2

lr = 0.01
max_epochs = 80
optim_wrapper = dict(type="OptimWrapper",  # optimizer AdamW lr 0.01, betas (0.9, 0.999), weight_decay 0.01, eps 1e-6
                     optimizer=dict(type="AdamW", lr=lr, betas=(0.9, 0.999), weight_decay=0.01, eps=1e-6))
auto_scale_lr = dict(enable=True, base_batch_size=16)
param_scheduler = [  # OneCycleLR per iteration: pct_start 0.2, div_factor 25, final_div_factor 100
    dict(type="OneCycleLR", eta_max=lr, pct_start=0.2, div_factor=25, final_div_factor=100, begin=0,
         end=max_epochs, by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
default_hooks = dict(checkpoint=dict(save_best="LidarSeg/mIoU", rule="greater"))
