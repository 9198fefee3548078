"""OpenPCDet's VoxelNeXt checkpoints load into ours and give OpenPCDet's boxes.

The source state dict has the exact names, shapes and dtypes of OpenPCDet's released nuScenes VoxelNeXt
(``tests/data/openpcdet_voxelnext_state.json``, written by instantiating OpenPCDet's own classes, see
``tests/data/dump_openpcdet_state.py``), filled with random weights, biases and BatchNorm statistics. The reference
below is written here from OpenPCDet's code (``spconv_backbone_voxelnext.py``, ``voxelnext_head.py``,
``centernet_utils.decode_bbox_from_voxels_nuscenes``, ``model_nms_utils.class_agnostic_nms``): spconv modules laid
out and named as OpenPCDet's, biases where OpenPCDet has them, spconv's own kernel-1 convolutions, spconv's
PointToVoxel and a mean VFE. It loads the raw tensors strictly and runs them on the real nuScenes frame; our model
gets the converted weights. Backbone features and decoded boxes must agree.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import spconv.pytorch as spconv
import torch
from spconv.core import ConvAlgo
from spconv.pytorch.utils import PointToVoxel
from tool_module import load_tool
from torch import nn

from perception3d.apis import init_model
from perception3d.datasets.classes import CLASSES
from perception3d.models.openpcdet_weights import ConversionError, convert_openpcdet_voxelnext
from perception3d.models.voxelizers import VoxelBatch
from perception3d.ops import nms_bev

DATA = Path(__file__).parent / "data"
SPEC = json.loads((DATA / "openpcdet_voxelnext_state.json").read_text())
FRAME = next((DATA / "nuscenes_frame").glob("*.pcd.bin"))
CONFIG = str(Path(__file__).parents[1] / "configs" / "voxelnext" / "voxelnext_voxel0075_nus.py")

# cbgs_voxel0075_voxelnext.yaml
OPENPCDET_CLASSES = ["car", "truck", "construction_vehicle", "bus", "trailer", "barrier", "motorcycle", "bicycle",
                     "pedestrian", "traffic_cone"]
HEADS = [["car"], ["truck", "construction_vehicle"], ["bus", "trailer"], ["barrier"], ["motorcycle", "bicycle"],
         ["pedestrian", "traffic_cone"]]
HEAD_DICT = {"center": 2, "center_z": 1, "dim": 3, "rot": 2, "vel": 2}  # SEPARATE_HEAD_CFG, then 'hm'
VOXEL, RANGE = [0.075, 0.075, 0.2], [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
POST_CENTER_LIMIT = [-61.2, -61.2, -10.0, 61.2, 61.2, 10.0]


def random_openpcdet_state(seed: int) -> dict:
    """OpenPCDet's state dict with random values: He-scaled weights (a smaller scale for the output layers, so
    that box sizes stay metres), biases, and BatchNorm statistics far from the identity."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for entry in SPEC["state_dict"]:
        name, shape = entry["name"], entry["shape"]
        if entry["dtype"] == "int64":
            state[name] = torch.randint(1, 10 ** 5, shape, generator=g)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=g) * 1.5 + 0.5
        elif name.endswith("running_mean"):
            state[name] = torch.randn(shape, generator=g) * 0.3
        elif len(shape) >= 2:
            scale = 1.0
            if name.endswith(".1.weight") and "dense_head" in name:  # output layers
                scale = 0.05 if ".hm." in name else 0.01
            state[name] = torch.randn(shape, generator=g) * scale * (2.0 / np.prod(shape[1:])) ** 0.5
        elif name.endswith(".weight"):  # BatchNorm scale
            state[name] = torch.rand(shape, generator=g) * 0.8 + 0.6
        else:
            state[name] = torch.randn(shape, generator=g) * 0.2
    for group in range(len(HEADS)):
        state[f"dense_head.heads_list.{group}.hm.1.bias"] -= 2.5  # a few % of scores above 0.1
    return state


def old_spconv_layout(state: dict) -> dict:
    """The same network as spconv < 2.2 stored it: (k..., in, out). Kernel-1 weights keep their memory (spconv
    2.x computes them as ``weight.view(in, out)`` in either layout), only their shape changes."""
    old = {}
    for key, value in state.items():
        if value.dim() >= 4:
            if all(k == 1 for k in value.shape[1:-1]):
                old[key] = value.reshape(*value.shape[1:-1], value.shape[-1], value.shape[0])
            else:
                old[key] = value.permute(*range(1, value.dim()), 0).contiguous()
        else:
            old[key] = value
    return old


class ReferenceBasicBlock(spconv.SparseModule):
    """OpenPCDet's SparseBasicBlock: biased SubMConv3d, BN, ReLU, SubMConv3d, BN, + input, ReLU."""

    def __init__(self, channels, key):
        super().__init__()
        self.conv1 = spconv.SubMConv3d(channels, channels, 3, padding=1, bias=True, indice_key=key)
        self.bn1 = nn.BatchNorm1d(channels, eps=1e-3, momentum=0.01)
        self.conv2 = spconv.SubMConv3d(channels, channels, 3, padding=1, bias=True, indice_key=key)
        self.bn2 = nn.BatchNorm1d(channels, eps=1e-3, momentum=0.01)

    def forward(self, x):
        out = self.conv1(x)
        out = out.replace_feature(torch.relu(self.bn1(out.features)))
        out = self.conv2(out)
        return out.replace_feature(torch.relu(self.bn2(out.features) + x.features))


class ReferenceBackbone(nn.Module):
    """VoxelResBackBone8xVoxelNeXt with CHANNELS [16, 32, 64, 128, 128], OUT_CHANNEL 128."""

    def __init__(self):
        super().__init__()
        bn = lambda c: nn.BatchNorm1d(c, eps=1e-3, momentum=0.01)  # noqa: E731
        ch = [16, 32, 64, 128, 128, 128]
        self.sparse_shape = [41, 1440, 1440]  # grid_size[::-1] + [1, 0, 0]
        self.conv_input = spconv.SparseSequential(
            spconv.SubMConv3d(5, 16, 3, padding=1, bias=False, indice_key="subm1"), bn(16), nn.ReLU())
        self.conv1 = spconv.SparseSequential(ReferenceBasicBlock(16, "res1"), ReferenceBasicBlock(16, "res1"))
        for s in range(2, 7):
            setattr(self, f"conv{s}", spconv.SparseSequential(
                spconv.SparseSequential(spconv.SparseConv3d(ch[s - 2], ch[s - 1], 3, stride=2, padding=1, bias=False,
                                                            indice_key=f"spconv{s}"), bn(ch[s - 1]), nn.ReLU()),
                ReferenceBasicBlock(ch[s - 1], f"res{s}"), ReferenceBasicBlock(ch[s - 1], f"res{s}")))
        self.conv_out = spconv.SparseSequential(
            spconv.SparseConv2d(128, 128, 3, stride=1, padding=1, bias=False, indice_key="spconv_down2"), bn(128),
            nn.ReLU())
        self.shared_conv = spconv.SparseSequential(
            spconv.SubMConv2d(128, 128, 3, stride=1, padding=1, bias=True), nn.BatchNorm1d(128), nn.ReLU(True))

    def forward(self, features, coords):
        x = spconv.SparseConvTensor(features, coords.int(), self.sparse_shape, 1)
        x = self.conv_input(x)
        x1 = self.conv1(x)
        x2 = self.conv2(x1)
        x3 = self.conv3(x2)
        x4 = self.conv4(x3)
        x5 = self.conv5(x4)
        x6 = self.conv6(x5)
        x5.indices[:, 1:] *= 2
        x6.indices[:, 1:] *= 4
        x4 = x4.replace_feature(torch.cat([x4.features, x5.features, x6.features]))
        x4.indices = torch.cat([x4.indices, x5.indices, x6.indices])
        flat = x4.indices[:, [0, 2, 3]]
        unique, inverse = torch.unique(flat, dim=0, return_inverse=True)
        summed = x4.features.new_zeros((len(unique), x4.features.shape[1])).index_add_(0, inverse, x4.features)
        bev = spconv.SparseConvTensor(summed, unique, x4.spatial_shape[1:], 1)
        return self.shared_conv(self.conv_out(bev))


class ReferenceSeparateHead(nn.Module):
    """SeparateHead with KERNEL_SIZE_HEAD 1, USE_BIAS_BEFORE_NORM True, num_conv 2 (NUM_HM_CONV 2)."""

    def __init__(self, num_classes):
        super().__init__()
        self.names = list(HEAD_DICT) + ["hm"]
        for name in self.names:
            out = num_classes if name == "hm" else HEAD_DICT[name]
            setattr(self, name, nn.Sequential(
                spconv.SparseSequential(spconv.SubMConv2d(128, 128, 1, padding=0, bias=True, indice_key=name),
                                        nn.BatchNorm1d(128), nn.ReLU()),
                spconv.SubMConv2d(128, out, 1, bias=True, indice_key=name + "out")))

    def forward(self, x):
        return {name: getattr(self, name)(x).features for name in self.names}


class ReferenceHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.heads_list = nn.ModuleList(ReferenceSeparateHead(len(h)) for h in HEADS)


class ReferenceVoxelNeXt(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("global_step", torch.zeros(1, dtype=torch.int64))
        self.backbone_3d = ReferenceBackbone()
        self.dense_head = ReferenceHead()

    def for_device(self, device):
        """Eval mode on ``device``; on the CPU the biased spconv layers stay in training mode (no statistics of
        their own), since spconv's CPU path refuses a bias in eval mode. The native algorithm on the CPU."""
        self.to(device).eval()
        for m in self.modules():
            if isinstance(m, spconv.conv.SparseConvolution):
                if device.type == "cpu":
                    m.algo = ConvAlgo.Native
                    m.train(m.bias is not None)
        return self


def reference_decode(head_outputs, indices):
    """OpenPCDet's decoding of one sample: per head, the K best voxels of each class then the K best of those
    (``_topk_1d``), boxes from the voxel index i (not i + 0.5), the post-centre limit and score > 0.1, then
    class-agnostic NMS of the head (1000 best, BEV IoU 0.2, 83 kept). Labels as class names."""
    k_max, stride = 500, 8
    boxes, scores, names = [], [], []
    for head, out in zip(HEADS, head_outputs):
        hm = torch.sigmoid(out["hm"])
        per_class = min(k_max, hm.shape[0])
        top_scores, top_voxels = torch.topk(hm.t(), per_class)
        score, flat = torch.topk(top_scores.reshape(-1), min(k_max, top_scores.numel()))
        cls = flat // per_class
        voxel = top_voxels.reshape(-1)[flat]
        ix, iy = indices[voxel, 2].float(), indices[voxel, 1].float()
        xs = (ix + out["center"][voxel, 0]) * stride * VOXEL[0] + RANGE[0]
        ys = (iy + out["center"][voxel, 1]) * stride * VOXEL[1] + RANGE[1]
        angle = torch.atan2(out["rot"][voxel, 1], out["rot"][voxel, 0])
        box = torch.cat([xs[:, None], ys[:, None], out["center_z"][voxel], out["dim"][voxel].exp(), angle[:, None],
                         out["vel"][voxel]], 1)
        limit = torch.tensor(POST_CENTER_LIMIT, device=box.device)
        mask = (box[:, :3] >= limit[:3]).all(1) & (box[:, :3] <= limit[3:]).all(1) & (score > 0.1)
        box, score, cls = box[mask], score[mask], cls[mask]
        order = torch.topk(score, min(1000, len(score))).indices
        keep = order[nms_bev(box[order], score[order], 0.2)[:83]]
        boxes.append(box[keep])
        scores.append(score[keep])
        names += [head[int(c)] for c in cls[keep]]
    return torch.cat(boxes), torch.cat(scores), names


def frame_points():
    raw = np.fromfile(FRAME, dtype=np.float32).reshape(-1, 5).copy()
    raw[:, 4] = 0.0  # the model's fifth column is the time lag: 0 for the key frame (the file's is the ring)
    return torch.from_numpy(raw)


def run_reference(state, device):
    ref = ReferenceVoxelNeXt()
    ref.load_state_dict(state, strict=True)
    ref.for_device(device)
    points = frame_points()
    generator = PointToVoxel(vsize_xyz=VOXEL, coors_range_xyz=RANGE, num_point_features=5,
                             max_num_voxels=160000, max_num_points_per_voxel=10, device=device)
    voxels, coords, counts = generator(points.to(device))
    features = voxels.sum(dim=1) / counts.clamp(min=1).unsqueeze(1).to(voxels.dtype)  # MeanVFE
    coords = torch.cat([coords.new_zeros((len(coords), 1)), coords], 1)
    with torch.no_grad():
        bev = ref.backbone_3d(features, coords)
        outs = [head(bev) for head in ref.dense_head.heads_list]
    return bev, reference_decode(outs, bev.indices), VoxelBatch(features, coords, (40, 1440, 1440), 1)


def run_ours(converted, device, voxels=None):
    """Our model on the frame's points (its own voxelizer), or on the given voxels."""
    model = init_model(CONFIG, device=str(device))
    model.load_state_dict(converted, strict=True)
    if voxels is None:
        data = model.data_preprocessor({"inputs": {"points": [frame_points()]}, "data_samples": None}, False)
        voxels = data["inputs"]["voxels"]
    with torch.no_grad():
        bev = model.extract_feat(voxels)
        (det,) = model.head.predict(bev)
    return model, bev, det


def by_index(tensor):
    return {tuple(i): f for i, f in zip(tensor.indices.cpu().tolist(), tensor.features.cpu())}


def check_same_boxes(det, reference):
    ref_boxes, ref_scores, ref_names = reference
    assert len(ref_boxes) > 50, len(ref_boxes)  # a real decoding: many boxes through every step
    ours = sorted(zip([CLASSES[int(c)] for c in det.labels], det.scores.cpu().tolist(), det.boxes.cpu()),
                  key=lambda t: (t[0], -t[1]))
    theirs = sorted(zip(ref_names, ref_scores.cpu().tolist(), ref_boxes.cpu()), key=lambda t: (t[0], -t[1]))
    assert [t[0] for t in ours] == [t[0] for t in theirs]
    np.testing.assert_allclose([t[1] for t in ours], [t[1] for t in theirs], rtol=0, atol=1e-5)
    np.testing.assert_allclose(torch.stack([t[2] for t in ours]).numpy(), torch.stack([t[2] for t in theirs]).numpy(),
                               rtol=1e-4, atol=1e-3)


def test_state_dict_layout_is_openpcdets():
    """The reference's names and shapes are the ones OpenPCDet's classes produce (the data file)."""
    ref = ReferenceVoxelNeXt().state_dict()
    assert [(k, list(v.shape)) for k, v in ref.items()] == [(e["name"], e["shape"]) for e in SPEC["state_dict"]]
    assert SPEC["sparse_shape"] == ReferenceBackbone().sparse_shape


@pytest.fixture(scope="module")
def converted_pair():
    state = random_openpcdet_state(0)
    return state, convert_openpcdet_voxelnext(state, init_model(CONFIG))


def test_converted_weights_give_openpcdets_features_and_boxes_on_the_real_frame(converted_pair):
    state, converted = converted_pair
    cpu = torch.device("cpu")
    ref_bev, reference, _ = run_reference(state, cpu)
    _, bev, det = run_ours(converted, cpu)
    assert bev.spatial_shape == list(ref_bev.spatial_shape) == [180, 180]
    ours, theirs = by_index(bev), by_index(ref_bev)
    assert ours.keys() == theirs.keys() and len(ours) > 1000
    a, b = torch.stack([ours[k] for k in theirs]), torch.stack(list(theirs.values()))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))
    check_same_boxes(det, reference)


def test_older_spconv_layout_converts_to_the_same_weights(converted_pair):
    state, converted = converted_pair
    again = convert_openpcdet_voxelnext(old_spconv_layout(state), init_model(CONFIG))
    assert all(torch.equal(again[k], converted[k]) for k in converted)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_converted_weights_give_openpcdets_boxes_on_cuda(converted_pair):
    """On the GPU OpenPCDet trained on: spconv's CUDA algorithms and biased layers in eval mode. Both networks
    read the same voxels: on CUDA, PointToVoxel and our voxelizer each fill a voxel's 10 slots with whichever
    points come first, in no fixed order (the CPU test above compares the voxelizers too)."""
    state, converted = converted_pair
    cuda = torch.device("cuda")
    ref_bev, reference, voxels = run_reference(state, cuda)
    _, bev, det = run_ours(converted, cuda, voxels)
    ours, theirs = by_index(bev), by_index(ref_bev)
    assert ours.keys() == theirs.keys()
    b = torch.stack(list(theirs.values()))
    torch.testing.assert_close(torch.stack([ours[k] for k in theirs]), b, rtol=1e-3, atol=1e-3 * float(b.abs().max()))
    check_same_boxes(det, reference)


def test_convert_checkpoint_tool_writes_a_checkpoint_tools_load(tmp_path, converted_pair):
    state, converted = converted_pair
    source = tmp_path / "voxelnext_nuscenes_kernel1.pth"
    torch.save({"epoch": 20, "it": 0, "model_state": state, "optimizer_state": None, "version": "pcdet+0.6.0"}, source)
    tool = load_tool("convert_checkpoint")
    assert tool.main(["openpcdet", str(source), str(tmp_path / "ours.pth")]) == 0
    model = init_model(CONFIG, str(tmp_path / "ours.pth"))  # tools/test.py's check: strict, weights_only
    assert all(torch.equal(model.state_dict()[k], converted[k]) for k in converted)


def test_convert_checkpoint_refuses_what_is_not_a_voxelnext(tmp_path, capsys, converted_pair):
    state, _ = converted_pair
    tool = load_tool("convert_checkpoint")
    out = tmp_path / "out.pth"
    truncated = tmp_path / "truncated.pth"
    torch.save({"model_state": state}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:100_000])
    ours = tmp_path / "ours.pth"
    torch.save({"state_dict": {"backbone.conv_input.0.weight": torch.zeros(1)}}, ours)
    centerpoint = tmp_path / "centerpoint.pth"  # a dense-BEV CenterPoint: backbone_2d, no conv5/conv6
    torch.save({"model_state": {k: v for k, v in state.items() if "conv5" not in k and "conv6" not in k}
                | {"backbone_2d.blocks.0.1.weight": torch.zeros(3)}}, centerpoint)
    fewer_blocks = tmp_path / "blocks.pth"
    torch.save({"model_state": {k: v for k, v in state.items() if ".conv2.2." not in k}}, fewer_blocks)
    cases = [(tmp_path / "missing.pth", "not found"), (truncated, "not a loadable checkpoint"),
             (ours, "no 'model_state'"), (centerpoint, "not an OpenPCDet VoxelNeXt"),
             (fewer_blocks, "missing from the checkpoint: backbone_3d.conv2.2.")]
    for path, message in cases:
        assert tool.main(["openpcdet", str(path), str(out)]) == 2
        assert message in capsys.readouterr().err, path
        assert not out.exists()
    with pytest.raises(ConversionError, match="backbone_3d.conv_out.0.weight: shape"):  # 128 wide, the tiny 64
        convert_openpcdet_voxelnext(state, init_model(str(Path(CONFIG).parent / "voxelnext_tiny_synthetic.py")))
