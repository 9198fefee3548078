# VoxelNeXt with focal sparse convolutions (Focals Conv, Chen et al., CVPR 2022) at the end of backbone stages 1-3
# (voxel strides 1, 2, 4), everything else the recipe of voxelnext_voxel0075_nus.py.
# Where the focal blocks sit and how they decide: OpenPCDet's VoxelBackBone8xFocal
# (pcdet/models/backbones_3d/spconv_backbone_focal.py: a FocalSparseConv after conv1, conv2, conv3; KERNEL_SIZE 3,
# TOPK True, THRESHOLD 0.5, ENLARGE_VOXEL_CHANNELS -1). Their nuScenes settings: the authors' CenterPoint code
# (FocalsConv/CenterPoint/det3d/models/backbones/scn_focal.py: MASK_MULTI defaults to True;
# configs/nusc/voxelnet/nusc_centerpoint_voxelnet_0075voxel_fix_bn_z_focal_multimodal.py: TOPK=True,
# SKIP_LOSS=True, i.e. no importance loss on nuScenes). Switch the loss on with
# model.backbone.focal.loss_weight=1.0 (the weight OpenPCDet gives it: loss_rpn + loss_backbone3d).
_base_ = ["./voxelnext_voxel0075_nus.py"]

model = dict(backbone=dict(focal=dict(stages=(1, 2, 3), kernel_size=3, topk=True, threshold=0.5, mask_multi=True,
                                      enlarge_channels=None, loss_weight=0.0)))
