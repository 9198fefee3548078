# The tiny synthetic config (voxelnext_tiny_synthetic.py) with the focal blocks of voxelnext_focal_voxel0075_nus.py
# at the end of stages 1-3: the same data, schedule and seed, so the two compare at the same budget (README,
# "Focal sparse convolution"). Importance loss off, as the authors run nuScenes; on with
# --cfg-options model.backbone.focal.loss_weight=1.0.
_base_ = ["./voxelnext_tiny_synthetic.py"]

model = dict(backbone=dict(focal=dict(stages=(1, 2, 3), kernel_size=3, topk=True, threshold=0.5, mask_multi=True,
                                      enlarge_channels=None, loss_weight=0.0)))
