"""Writes tests/data/openpcdet_voxelnext_state.json: every state-dict entry (name, shape, dtype) of OpenPCDet's
released nuScenes VoxelNeXt, by instantiating OpenPCDet's own classes from its source tree with the values of its
tools/cfgs/nuscenes_models/cbgs_voxel0075_voxelnext.yaml. Needs spconv, torch, numba and PyYAML, not a built
OpenPCDet: its CUDA-only modules are stubbed, the head's .cuda() calls made no-ops.

    python tests/data/dump_openpcdet_state.py /path/to/OpenPCDet tests/data/openpcdet_voxelnext_state.json
"""
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
import yaml


class EasyDict(dict):
    """easydict's behaviour: keys as attributes, nested dicts (also inside lists) converted."""

    def __init__(self, d=None):
        super().__init__()
        for k, v in (d or {}).items():
            if isinstance(v, list):
                v = [EasyDict(x) if isinstance(x, dict) else x for x in v]
            self[k] = EasyDict(v) if isinstance(v, dict) else v

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k)


def package(root: Path, name: str) -> None:
    """An empty package ``name`` over its folder, so that its __init__ (which imports everything) never runs."""
    module = types.ModuleType(name)
    module.__path__ = [str(root / name.replace(".", "/"))]
    sys.modules[name] = module


def load(root: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, root / (name.replace(".", "/") + ".py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(root: Path, out: Path) -> None:
    sys.modules["easydict"] = types.SimpleNamespace(EasyDict=EasyDict)
    for name in ["pcdet", "pcdet.models", "pcdet.models.backbones_3d", "pcdet.models.dense_heads",
                 "pcdet.models.model_utils", "pcdet.utils", "pcdet.ops", "pcdet.ops.iou3d_nms"]:
        package(root, name)
    load(root, "pcdet.utils.spconv_utils")
    sys.modules["pcdet.ops.iou3d_nms.iou3d_nms_utils"] = types.ModuleType("iou3d_nms_utils")  # CUDA NMS
    losses = types.SimpleNamespace(FocalLossSparse=torch.nn.Module, RegLossSparse=torch.nn.Module)
    sys.modules["pcdet.utils.loss_utils"] = sys.modules["pcdet.utils"].loss_utils = losses
    load(root, "pcdet.models.model_utils.centernet_utils")
    load(root, "pcdet.models.model_utils.model_nms_utils")
    backbone_mod = load(root, "pcdet.models.backbones_3d.spconv_backbone_voxelnext")
    torch.Tensor.cuda = lambda self, *a, **k: self  # the head moves its range tensors to CUDA in __init__
    head_mod = load(root, "pcdet.models.dense_heads.voxelnext_head")

    cfg = EasyDict(yaml.safe_load((root / "tools/cfgs/nuscenes_models/cbgs_voxel0075_voxelnext.yaml").read_text()))
    pc_range = np.array(cfg.DATA_CONFIG.POINT_CLOUD_RANGE, dtype=np.float32)
    voxel = np.array(cfg.DATA_CONFIG.DATA_PROCESSOR[-1].VOXEL_SIZE, dtype=np.float32)
    grid = np.round((pc_range[3:] - pc_range[:3]) / voxel).astype(np.int64)
    backbone = backbone_mod.VoxelResBackBone8xVoxelNeXt(cfg.MODEL.BACKBONE_3D, input_channels=5, grid_size=grid)
    head = head_mod.VoxelNeXtHead(cfg.MODEL.DENSE_HEAD, input_channels=128, num_class=len(cfg.CLASS_NAMES),
                                  class_names=cfg.CLASS_NAMES, grid_size=grid, point_cloud_range=pc_range,
                                  voxel_size=voxel)
    entries = [{"name": "global_step", "shape": [1], "dtype": "int64"}]  # Detector3DTemplate's buffer
    for prefix, module in (("backbone_3d", backbone), ("dense_head", head)):
        for key, value in module.state_dict().items():
            entries.append({"name": f"{prefix}.{key}", "shape": list(value.shape),
                            "dtype": str(value.dtype).replace("torch.", "")})
    lines = [json.dumps({"sparse_shape": [int(v) for v in backbone.sparse_shape]})[:-1] + ', "state_dict": [']
    lines += [" " + json.dumps(e) + ("," if i < len(entries) - 1 else "") for i, e in enumerate(entries)]
    out.write_text("\n".join(lines + ["]}"]) + "\n")
    print(len(entries), "entries written to", out)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
