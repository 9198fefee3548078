"""Our CPU sparse convolution engine against spconv's CPU path (``ConvAlgo.Native``): the same layers with the
same weights give the same output voxels, features and gradients, on random and on real nuScenes voxel sets."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import spconv.pytorch as spconv
import torch

from perception3d.models import sparse
from perception3d.models.segmentors.minkunet import MinkUNet
from perception3d.ops import voxelize_hard

SMALL_MINKUNET = dict(base_channels=8, encoder_channels=(8, 16, 16, 16), decoder_channels=(16, 16, 8, 8),
                      encoder_blocks=(1, 1, 1, 1), decoder_blocks=(1, 1, 1, 1))
FRAME = next((Path(__file__).parent / "data" / "nuscenes_frame").glob("*.pcd.bin"))

# (our class, constructor arguments, spatial dims): every kernel / stride / padding our models use
LAYERS = {
    "subm3d_k3": (sparse.SubMConv3d, dict(kernel_size=3, padding=1), 3),
    "subm3d_k5": (sparse.SubMConv3d, dict(kernel_size=5, padding=2), 3),
    "subm3d_k1": (sparse.SubMConv3d, dict(kernel_size=1), 3),
    "conv3d_k1": (sparse.SparseConv3d, dict(kernel_size=1), 3),
    "subm2d_k3": (sparse.SubMConv2d, dict(kernel_size=3, padding=1), 2),
    "conv3d_k3_s2_p1": (sparse.SparseConv3d, dict(kernel_size=3, stride=2, padding=1), 3),
    "conv3d_k2_s2": (sparse.SparseConv3d, dict(kernel_size=2, stride=2), 3),
    "conv2d_k3_s1_p1": (sparse.SparseConv2d, dict(kernel_size=3, stride=1, padding=1), 2),
    "conv2d_k3_s2_p1": (sparse.SparseConv2d, dict(kernel_size=3, stride=2, padding=1), 2),
}


def random_voxels(rng, n: int, shape, batch_size: int = 2) -> torch.Tensor:
    """Up to ``n`` distinct int32 (batch, spatial...) rows, in random order, including the grid's far corner."""
    cols = [rng.integers(0, batch_size, n)] + [rng.integers(0, s, n) for s in shape]
    idx = np.stack(cols, 1)
    idx[0, 1:] = np.asarray(shape) - 1  # a voxel on the grid's far border
    idx[1, 1:] = 0  # and one on the near border
    idx = np.unique(idx, axis=0)
    rng.shuffle(idx)
    return torch.from_numpy(idx.astype(np.int32))


def real_voxels(dims: int):
    """The nuScenes frame of tests/data on the nuScenes config's grid (0.075 × 0.075 × 0.2 m, ±54 m), as one
    sample and as two (the frame and its mirror image); 2-D: its bird's-eye view at stride 8."""
    raw = torch.from_numpy(np.fromfile(FRAME, dtype=np.float32).reshape(-1, 5))
    mirrored = raw.clone()
    mirrored[:, 1] *= -1
    rows = []
    for b, cloud in enumerate([raw, mirrored]):
        _, coords, _ = voxelize_hard(cloud, [0.075, 0.075, 0.2], [-54, -54, -5, 54, 54, 3], 10, 200000)
        rows.append(torch.cat([torch.full((len(coords), 1), b, dtype=torch.int32), coords.int()], 1))
    idx = torch.cat(rows)
    shape = [40, 1440, 1440]
    if dims == 2:
        idx = torch.unique(torch.stack([idx[:, 0], idx[:, 2] // 8, idx[:, 3] // 8], 1), dim=0).int()
        shape = [180, 180]
    return idx, shape


def pair(cls, kwargs, c_in=8, c_out=6, seed=0):
    """Our layer and spconv's with the same weights."""
    torch.manual_seed(seed)
    ours = cls(c_in, c_out, bias=False, indice_key="k", **kwargs)
    base = next(b for b in cls.__mro__[1:] if b.__module__.startswith("spconv"))
    theirs = base(c_in, c_out, bias=False, indice_key="k", algo=spconv.ConvAlgo.Native, **kwargs)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def run(layer, indices, shape, features, batch_size=2):
    """Forward and backward of ``layer`` with a fixed output gradient → output, gradients by output voxel."""
    f = features.clone().requires_grad_(True)
    layer.zero_grad()
    out = layer(spconv.SparseConvTensor(f, indices, shape, batch_size))
    g = torch.from_numpy(np.random.default_rng(1).standard_normal(tuple(out.features.shape)).astype(np.float32))
    # the output gradient belongs to the output voxel: sort rows so both engines get the same one per voxel
    order = np.lexsort(out.indices.numpy().T[::-1])
    grad = torch.empty_like(out.features)
    grad[torch.from_numpy(order)] = g[: len(order)]
    (out.features * grad).sum().backward()
    return out.indices[order], out.features[order].detach(), f.grad, layer.weight.grad.clone()


def assert_close(ours, theirs, what):
    scale = max(float(theirs.abs().max()), 1e-12) if theirs.numel() else 1.0
    err = float((ours - theirs).abs().max()) if theirs.numel() else 0.0
    assert err <= 1e-5 * scale, f"{what}: max difference {err:.3g} against a scale of {scale:.3g}"


def check_against_spconv(name, indices, shape, c_in=8, c_out=6):
    cls, kwargs, _ = LAYERS[name]
    ours, theirs = pair(cls, kwargs, c_in, c_out)
    ours.engine = "perception3d"
    features = torch.from_numpy(np.random.default_rng(2).standard_normal((len(indices), c_in)).astype(np.float32))
    batch_size = int(indices[:, 0].max()) + 1
    got, want = run(ours, indices, shape, features, batch_size), run(theirs, indices, shape, features, batch_size)
    assert torch.equal(got[0], want[0]), f"{name}: the output voxel sets differ"
    for a, b, what in zip(got[1:], want[1:], ["output features", "input gradient", "weight gradient"]):
        assert_close(a, b, f"{name} {what}")


@pytest.mark.parametrize("name", list(LAYERS))
def test_random_voxels_equal_spconv(name):
    dims = LAYERS[name][2]
    shape = [9, 30, 31] if dims == 3 else [60, 61]
    check_against_spconv(name, random_voxels(np.random.default_rng(0), 3000, shape, batch_size=3), shape)


@pytest.mark.parametrize("name", list(LAYERS))
def test_dense_voxel_blocks_equal_spconv(name):
    """Two full blocks of voxels (one per sample): few offset patterns, so the maps take the one-multiply-per-
    pattern path (whose slabs share offsets) where random sparse sets take the kernel-plane one."""
    dims = LAYERS[name][2]
    shape = [7, 8, 9] if dims == 3 else [12, 13]
    block = np.stack(np.meshgrid(*[np.arange(1, s - 1) for s in shape], indexing="ij"), -1).reshape(-1, dims)
    idx = np.concatenate([np.concatenate([np.full((len(block), 1), b), block], 1) for b in range(2)])
    check_against_spconv(name, torch.from_numpy(idx.astype(np.int32)), shape)


@pytest.mark.parametrize("name", ["subm3d_k3", "conv3d_k3_s2_p1", "subm2d_k3", "conv2d_k3_s1_p1"])
def test_real_nuscenes_voxels_equal_spconv(name):
    indices, shape = real_voxels(LAYERS[name][2])
    check_against_spconv(name, indices, shape, c_in=16, c_out=16)


@pytest.mark.parametrize("name", ["subm3d_k3", "conv3d_k3_s2_p1", "conv3d_k2_s2", "conv2d_k3_s1_p1"])
def test_single_voxel_equals_spconv(name):
    dims = LAYERS[name][2]
    shape = [5, 6, 7] if dims == 3 else [6, 7]
    check_against_spconv(name, torch.tensor([[0] + [s - 1 for s in shape]], dtype=torch.int32), shape)


@pytest.mark.parametrize("name", ["subm3d_k3", "conv3d_k3_s2_p1"])
def test_empty_input_gives_empty_output(name):
    cls, kwargs, _ = LAYERS[name]
    layer = cls(4, 3, bias=False, **kwargs)
    layer.engine = "perception3d"
    f = torch.zeros(0, 4, requires_grad=True)
    out = layer(spconv.SparseConvTensor(f, torch.zeros(0, 4, dtype=torch.int32), [8, 8, 8], 1))
    assert out.features.shape == (0, 3) and out.indices.shape == (0, 4)
    out.features.sum().backward()
    assert f.grad.shape == (0, 4) and float(layer.weight.grad.abs().sum()) == 0.0


def test_inverse_convolution_equals_spconv():
    """SparseConv3d k2 s2 then SparseInverseConv3d k2 on its indice key (MinkUNet's encoder/decoder pair)."""
    rng = np.random.default_rng(3)
    shape = [10, 20, 22]
    indices = random_voxels(rng, 2000, shape)
    features = torch.from_numpy(rng.standard_normal((len(indices), 5)).astype(np.float32))
    results = []
    for engine in ("perception3d", "spconv"):
        torch.manual_seed(0)
        down = sparse.SparseConv3d(5, 7, 2, stride=2, bias=False, indice_key="s2")
        up = sparse.SparseInverseConv3d(7, 4, 2, bias=False, indice_key="s2")
        sparse.set_sparse_engine(torch.nn.Sequential(down, up), engine)
        f = features.clone().requires_grad_(True)
        out = up(down(spconv.SparseConvTensor(f, indices, shape, 2)))
        assert torch.equal(out.indices, indices)  # the inverse returns to the input voxels, in their order
        g = torch.from_numpy(rng.standard_normal(tuple(out.features.shape)).astype(np.float32)) if not results \
            else results[0][3]
        (out.features * g).sum().backward()
        results.append((out.features.detach(), f.grad, up.weight.grad.clone(), g, down.weight.grad.clone()))
    (a, ga, wa, _, da), (b, gb, wb, _, db) = results
    for x, y, what in [(a, b, "features"), (ga, gb, "input gradient"), (wa, wb, "inverse weight gradient"),
                       (da, db, "down weight gradient")]:
        assert_close(x, y, what)


def test_layers_sharing_an_indice_key_share_one_kernel_map():
    indices = random_voxels(np.random.default_rng(4), 500, [6, 20, 20])
    first = sparse.SubMConv3d(3, 3, 3, padding=1, bias=False, indice_key="res")
    second = sparse.SubMConv3d(3, 3, 3, padding=1, bias=False, indice_key="res")
    sparse.set_sparse_engine(torch.nn.Sequential(first, second), "perception3d")
    x = first(spconv.SparseConvTensor(torch.randn(len(indices), 3), indices, [6, 20, 20], 2))
    kmap = x.indice_dict[("perception3d", "res")]
    y = second(x)
    assert y.indice_dict[("perception3d", "res")] is kmap
    # a layer of another geometry under the same key is refused, not silently given the wrong map
    other = sparse.SubMConv3d(3, 3, 5, padding=2, bias=False, indice_key="res")
    other.engine = "perception3d"
    with pytest.raises(ValueError, match="indice_key 'res'"):
        other(y)


def test_bad_input_is_a_clear_error():
    layer = sparse.SubMConv3d(4, 4, 3, padding=1, bias=False)
    layer.engine = "perception3d"
    good = torch.tensor([[0, 1, 2, 3], [1, 0, 0, 0]], dtype=torch.int32)

    def call(features, indices, shape=(4, 4, 4), batch_size=2):
        x = spconv.SparseConvTensor(features, indices.int(), list(shape), batch_size)
        x.indices = indices  # spconv's constructor asserts int32; a tensor edited afterwards is not checked
        return layer(x)

    with pytest.raises(ValueError, match=r"expected \(N, 4\)"):
        call(torch.zeros(2, 3), good)
    with pytest.raises(ValueError, match="int32"):
        call(torch.zeros(2, 4), good.long())
    with pytest.raises(ValueError, match=">= 0"):
        call(torch.zeros(2, 4), torch.tensor([[0, 1, -2, 3], [1, 0, 0, 0]], dtype=torch.int32))
    with pytest.raises(ValueError, match="outside the batch size and spatial shape"):
        call(torch.zeros(2, 4), torch.tensor([[0, 1, 2, 4], [1, 0, 0, 0]], dtype=torch.int32))
    with pytest.raises(ValueError, match="outside the batch size"):
        call(torch.zeros(2, 4), good, batch_size=1)
    with pytest.raises(ValueError, match="3 feature rows but 2 index rows"):
        call(torch.zeros(3, 4), good)
    with pytest.raises(ValueError, match="more than once"):
        call(torch.zeros(2, 4), torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]], dtype=torch.int32))
    with pytest.raises(ValueError, match="sparse_engine must be one of"):
        sparse.set_sparse_engine(layer, "cuda")


def test_auto_picks_ours_on_a_multithreaded_cpu_and_spconv_elsewhere():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert sparse.resolve_engine("auto", torch.device("cpu")) == "perception3d"
        torch.set_num_threads(1)
        assert sparse.resolve_engine("auto", torch.device("cpu")) == "spconv"
    finally:
        torch.set_num_threads(threads)
    assert sparse.resolve_engine("auto", torch.device("cuda")) == "spconv"
    assert sparse.resolve_engine("spconv", torch.device("cpu")) == "spconv"
    with pytest.raises(ValueError, match="CPU only"):
        sparse.resolve_engine("perception3d", torch.device("cuda"))


def test_one_state_dict_for_both_engines():
    ours = MinkUNet(4, 5, [0.2, 0.2, 0.2], **SMALL_MINKUNET)
    plain = {k: v.shape for k, v in ours.state_dict().items()}
    sparse.set_sparse_engine(ours, "spconv")
    assert {k: v.shape for k, v in ours.state_dict().items()} == plain


def test_minkunet_trains_the_same_on_both_engines():
    """Three SGD steps of a small MinkUNet (SubM, strided and inverse convolutions, shared keys) from the same
    weights: the same loss at every step with either engine."""
    rng = np.random.default_rng(5)
    clouds = [torch.from_numpy(np.concatenate([rng.uniform(-15, 15, (3000, 2)), rng.uniform(-2, 2, (3000, 1)),
                                               rng.random((3000, 1))], 1).astype(np.float32)) for _ in range(2)]
    labels = [torch.from_numpy((c[:, 0] > 0).numpy().astype(np.int64) + 2 * (c[:, 2] > 0).numpy()) for c in clouds]
    torch.manual_seed(0)
    start = MinkUNet(4, 4, [0.5, 0.5, 0.5], **SMALL_MINKUNET)
    losses = {}
    for engine in ("perception3d", "spconv"):
        model = copy.deepcopy(start)
        sparse.set_sparse_engine(model, engine)
        optim = torch.optim.SGD(model.parameters(), lr=0.1)
        losses[engine] = []
        for _ in range(3):
            logits = model(clouds)
            loss = sum(torch.nn.functional.cross_entropy(lo, la) for lo, la in zip(logits, labels))
            optim.zero_grad()
            loss.backward()
            optim.step()
            losses[engine].append(float(loss.detach()))
    assert losses["perception3d"][-1] < losses["perception3d"][0]  # it trains
    np.testing.assert_allclose(losses["perception3d"], losses["spconv"], rtol=1e-5)


@pytest.mark.parametrize("name", ["voxelnext_tiny_synthetic.py", "voxelnext_focal_tiny_synthetic.py"])
def test_voxelnext_trains_the_same_on_both_engines(synthetic_root, name):
    """Three SGD steps of the tiny detector (and its focal twin) on two synthetic batches, from the same weights
    and the config's ``sparse_engine`` key: the same losses at every step with either engine.

    In float64: this model's float32 gradient is itself uncertain in its third digit (spconv's float32 gradients
    differ from its float64 ones by up to 6e-3 in some BatchNorm biases, ours by up to 2e-2), so float32 runs of
    two correct engines part after a step. In float64 the losses agree to about 3e-8 (the head still computes a
    few things in float32); a wrong gradient anywhere moves them by far more."""
    import dataclasses

    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    from perception3d.registry import DATASETS, MODELS

    init_default_scope("perception3d")
    cfg = Config.fromfile(str(Path(__file__).parents[1] / "configs" / "voxelnext" / name))
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=synthetic_root))
    np.random.seed(0)
    batches = [pseudo_collate([dataset[i], dataset[i + len(dataset) // 2]]) for i in range(2)]
    losses = {}
    for engine in ("perception3d", "spconv"):
        torch.manual_seed(0)
        model = MODELS.build(dict(cfg.model, sparse_engine=engine)).double()
        optim = torch.optim.SGD(model.parameters(), lr=0.01)
        losses[engine] = []
        for step in range(3):
            data = model.data_preprocessor(copy.deepcopy(batches[step % 2]), True)
            voxels = data["inputs"]["voxels"]
            data["inputs"]["voxels"] = dataclasses.replace(voxels, features=voxels.features.double())
            loss = sum(v for k, v in model(**data, mode="loss").items() if k.startswith("loss"))
            optim.zero_grad()
            loss.backward()
            optim.step()
            losses[engine].append(float(loss.detach()))
    assert losses["perception3d"][2] < losses["perception3d"][0]  # it trains
    np.testing.assert_allclose(losses["perception3d"], losses["spconv"], rtol=1e-6)
