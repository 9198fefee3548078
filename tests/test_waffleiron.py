"""WaffleIron segmenter (perception3d/models/segmentors/waffleiron.py): geometry against explicit loops, the
network's contract (one logit row per input point, equivariance, batching), training, drop path, layer scale and
argument checks. CPU only, small clouds and tiny configs."""
import math

import pytest
import torch
import torch.nn.functional as F

from perception3d.models.segmentors.waffleiron import (DropPath, WaffleIron, gather_from_grid, knn_indices,
                                                      scatter_to_grid)

FOV = ((-10.0, -8.0, -2.0), (10.0, 8.0, 2.0))
GRIDS = ((12, 10), (12, 4), (10, 4))
# dim_proj (2, 1, 0): flatten z, then y, then x, i.e. planes (x, y), (x, z), (y, z) (pc_dataset.py lut_axis_plane)
PLANES = ((0, 1), (0, 2), (1, 2))


def tiny(**kw):
    args = dict(in_channels=5, num_classes=4, width=16, depth=3, num_neighbors=4, grid_shape=GRIDS, fov=FOV,
                drop_path=0.0)
    args.update(kw)
    return WaffleIron(**args)


def cloud(n, seed, spread=1.0):
    """n random points (x, y, z, intensity 0-255), xyz uniform over ``spread`` times the fov."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor(FOV[0]) * spread, torch.tensor(FOV[1]) * spread
    xyz = lo + (hi - lo) * torch.rand(n, 3, generator=g)
    return torch.cat([xyz, 255 * torch.rand(n, 1, generator=g)], dim=1)


def loop_cell(p, plane, shape):
    """The cell of point p on a plane: floor((p - min) / ((max - min) / n)) per axis, clamped into the grid."""
    q = []
    for a, n in zip(plane, shape):
        res = (FOV[1][a] - FOV[0][a]) / n
        q.append(min(max(math.floor((float(p[a]) - FOV[0][a]) / res), 0), n - 1))
    return q[0] * shape[1] + q[1]


def test_projection_and_back_projection_equal_a_loop():
    clouds = [cloud(300, 0, spread=1.4), cloud(200, 1, spread=1.4)]  # many points outside the fov, all sides
    model = tiny(out_of_fov="clamp")
    assert [tuple(p) for p in model.planes] == list(PLANES)
    prep = model.prepare(clouds)
    pts = torch.cat(clouds)
    sample = [0] * 300 + [1] * 200
    assert pts.shape[0] == prep.feats.shape[0] == 500 and prep.batch.tolist() == sample
    feat = torch.randn(500, 3, dtype=torch.float32, generator=torch.Generator().manual_seed(2))
    for plane, shape, proj in zip(PLANES, GRIDS, prep.projections):
        H, W = shape
        cells = [loop_cell(p, plane, shape) for p in pts]
        assert proj.index.tolist() == [b * H * W + c for b, c in zip(sample, cells)]
        # mean per cell of each sample, by a loop; the reference divides a cell's sum by (count + 1e-6)
        # (helper_projection.py), a 1e-6 relative shrink that it keeps
        sums, counts = {}, {}
        for i in range(500):
            key = (sample[i], cells[i])
            sums[key] = sums.get(key, torch.zeros(3, dtype=torch.float64)) + feat[i].double()
            counts[key] = counts.get(key, 0) + 1
        expected = torch.zeros(2, 3, H, W, dtype=torch.float64)
        for (b, c), s in sums.items():
            expected[b, :, c // W, c % W] = s / (counts[(b, c)] + 1e-6)
        grid = scatter_to_grid(feat, proj)
        assert grid.shape == (2, 3, H, W)
        torch.testing.assert_close(grid.double(), expected, rtol=0, atol=1e-6)
        # back-projection: every point reads its own cell of its own sample
        src = torch.randn(2, 3, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        back = gather_from_grid(src, proj)
        loop = torch.stack([src[sample[i], :, cells[i] // W, cells[i] % W] for i in range(500)])
        torch.testing.assert_close(back, loop, rtol=0, atol=1e-6)


def brute_knn(xyz, k):
    d = torch.cdist(xyz.double(), xyz.double())
    return d.argsort(dim=1)[:, 1:k + 1]  # nearest first, the point itself (distance 0) left out


def test_knn_neighbours_equal_brute_force_sort():
    xyz = cloud(400, 4)[:, :3]
    assert torch.equal(knn_indices(xyz, 16), brute_knn(xyz, 16))
    # in a batch, each sample's neighbours are its own points (rows offset by the samples before it)
    clouds = [cloud(150, 5), cloud(120, 6)]
    prep = tiny(num_neighbors=6).prepare(clouds)
    expected = torch.cat([brute_knn(clouds[0][:, :3], 6), brute_knn(clouds[1][:, :3], 6) + 150])
    assert torch.equal(prep.neighbors, expected)
    # fewer points than neighbours: the farthest is repeated, a lone point is its own neighbour
    assert knn_indices(xyz[:3], 4).shape == (3, 4)
    assert knn_indices(xyz[:1], 4).tolist() == [[0, 0, 0, 0]]


@pytest.fixture(scope="module")
def eval_model():
    torch.manual_seed(0)
    return tiny().eval()


def test_one_row_per_point_in_order_and_permutation_equivariant(eval_model):
    a, b = cloud(500, 7), cloud(350, 8)
    extra = torch.cat([a, torch.rand(500, 1)], dim=1)  # a time-lag column is accepted and ignored
    with torch.no_grad():
        out = eval_model([a])
        assert isinstance(out, list) and len(out) == 1 and out[0].shape == (500, 4)
        assert out[0].dtype == torch.float32 and torch.isfinite(out[0]).all()
        torch.testing.assert_close(eval_model([extra])[0], out[0], rtol=0, atol=0)
        perm = torch.randperm(500, generator=torch.Generator().manual_seed(9))
        torch.testing.assert_close(eval_model([a[perm]])[0], out[0][perm], rtol=1e-5, atol=1e-5)
        both = eval_model([b, a])
        assert [o.shape[0] for o in both] == [350, 500]
        torch.testing.assert_close(both[1], out[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(both[0], eval_model([b])[0], rtol=1e-5, atol=1e-5)


def test_points_outside_fov_take_their_nearest_inside_point(eval_model):
    a = cloud(400, 10)
    outside = cloud(60, 11, spread=1.6)
    outside = outside[~eval_model.in_fov(outside)]
    assert outside.shape[0] > 20
    mixed = torch.cat([a[:200], outside, a[200:]])
    with torch.no_grad():
        alone = eval_model([a])[0]
        out = eval_model([mixed])[0]
    assert out.shape[0] == mixed.shape[0]
    torch.testing.assert_close(torch.cat([out[:200], out[200 + len(outside):]]), alone, rtol=1e-5, atol=1e-5)
    nearest = torch.cdist(outside[:, :3].double(), a[:, :3].double()).argmin(dim=1)
    torch.testing.assert_close(out[200:200 + len(outside)], alone[nearest], rtol=1e-5, atol=1e-5)


def padded_layout_forward(model, clouds):
    """The network in the reference's formulation (segmenter.py/embedding.py/backbone.py, eval mode): clouds
    zero-padded into (B, C, N_max), neighbours as (B, K + 1, N_max) indices with the point itself first, cell
    averaging as a dense (B, H*W, N_max) matrix occupied / (count + 1e-6) (helper_projection.py's sparse-matrix
    path), back-projection by torch.gather on the cell index, LayerScale on the grid. Only ``model``'s parameters
    are used; all points must lie inside the fov."""
    def bn(x, m):
        return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

    B, n_max, K = len(clouds), max(len(c) for c in clouds), model.num_neighbors
    feat = torch.zeros(B, 5, n_max)
    nbr = torch.full((B, K + 1, n_max), n_max - 1, dtype=torch.long)
    cell = torch.zeros(B, 3, n_max, dtype=torch.long)
    occ = torch.zeros(B, n_max)
    for b, c in enumerate(clouds):
        n = len(c)
        feat[b, :, :n] = torch.cat([c[:, 3:4], c[:, :3], c[:, :3].norm(dim=1, keepdim=True)], 1).T
        nbr[b, :, :n] = torch.cdist(c[:, :3].double(), c[:, :3].double()).argsort(1)[:, :K + 1].T
        cell[b, :, :n] = torch.tensor([[loop_cell(p, pl, sh) for p in c] for pl, sh in zip(PLANES, GRIDS)])
        occ[b, :n] = 1
    e = model.embed
    x = bn(feat, e.norm)
    point = F.conv1d(x, e.conv1.weight, e.conv1.bias)
    neigh = torch.stack([torch.gather(x, 2, nbr[:, k:k + 1].expand(-1, 5, -1)) for k in range(1, K + 1)], -1)
    h = bn(neigh - x.unsqueeze(-1), e.conv2[0])
    h = F.conv2d(F.relu(bn(F.conv2d(h, e.conv2[1].weight), e.conv2[2])), e.conv2[4].weight).amax(-1)
    tokens = F.conv1d(torch.cat([point, h], 1), e.final.weight, e.final.bias)
    C = tokens.shape[1]
    for d in range(model.depth):
        sm, cm = model.waffleiron.spatial_mix[d], model.waffleiron.channel_mix[d]
        (H, W), ind = GRIDS[d % 3], cell[:, d % 3]
        member = F.one_hot(ind, H * W).transpose(1, 2).float() * occ.unsqueeze(1)  # (B, HW, N)
        flatten = member / (member.sum(2, keepdim=True) + 1e-6)  # occupied / (count + 1e-6)
        grid = (bn(tokens, sm.norm) @ flatten.transpose(1, 2)).view(B, C, H, W)
        grid = F.conv2d(F.relu(F.conv2d(grid, sm.ffn[0].weight, sm.ffn[0].bias, padding=1, groups=C)),
                        sm.ffn[2].weight, sm.ffn[2].bias, padding=1, groups=C)
        grid = F.conv1d(grid.reshape(B, C, H * W), sm.scale.weight, groups=C)
        tokens = tokens + torch.gather(grid, 2, ind.unsqueeze(1).expand(-1, C, -1))
        mlp = F.conv1d(F.relu(F.conv1d(bn(tokens, cm.norm), cm.mlp[0].weight, cm.mlp[0].bias)),
                       cm.mlp[2].weight, cm.mlp[2].bias)
        tokens = tokens + F.conv1d(mlp, cm.scale.weight, groups=C)
    logits = F.conv1d(tokens, model.classif.weight, model.classif.bias)
    return [logits[b, :, :len(c)].T for b, c in enumerate(clouds)]


def test_equals_the_reference_formulation_on_padded_batches():
    torch.manual_seed(4)
    model = tiny(depth=4, num_neighbors=5).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():  # BatchNorm statistics away from the identity
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g))
        clouds = [cloud(300, 20, spread=0.99), cloud(170, 21, spread=0.99)]
        expected = padded_layout_forward(model, clouds)
        out = model(clouds)
    for o, e in zip(out, expected):
        torch.testing.assert_close(o, e, rtol=1e-4, atol=1e-4 * e.abs().max().item())


def test_backward_reaches_every_parameter():
    torch.manual_seed(1)
    model = tiny().train()
    out = model([cloud(300, 12), cloud(200, 13)])
    labels = torch.randint(0, 4, (500,), generator=torch.Generator().manual_seed(0))
    torch.nn.functional.cross_entropy(torch.cat(out), labels).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if name == "embed.conv2.0.bias":
            # a shift before a bias-free 1x1 conv and a BatchNorm cancels: its gradient is 0 (up to rounding),
            # in the reference too (embedding.py conv2 = BN, conv, BN, ...)
            assert p.grad.abs().max() < 1e-4
        else:
            assert p.grad.abs().sum() > 0, name


def test_tiny_config_fits_labels_that_depend_on_position():
    torch.manual_seed(0)
    pts = cloud(1500, 14)
    x, y, z = pts[:, 0], pts[:, 1], pts[:, 2]
    labels = ((torch.floor(x / 5) + torch.floor(y / 4)) % 2).long() + 2 * (z > 0).long()  # checkerboard x height
    model = WaffleIron(5, 4, width=32, depth=4, num_neighbors=8, grid_shape=((20, 16), (20, 4), (16, 4)),
                       fov=FOV, drop_path=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(50):
        loss = torch.nn.functional.cross_entropy(model([pts])[0], labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # train mode: BatchNorm on batch statistics (50 steps leave the running ones behind)
        acc = (model([pts])[0].argmax(1) == labels).float().mean().item()
    assert acc > 0.9, acc


def reference_drop_path(x, drop_prob):
    """backbone.py DropPath.forward on a (B, C, N) batch: a sample is kept with 1 - drop_prob, then rescaled."""
    keep_prob = 1 - drop_prob
    random_tensor = keep_prob + torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype)
    return x.div(keep_prob) * random_tensor.floor_()


def test_drop_path_per_sample_as_the_reference_and_identity_in_eval():
    B, n, C = 64, 5, 3
    x = torch.randn(B * n, C)
    batch = torch.arange(B).repeat_interleave(n)
    dp = DropPath(0.3)
    assert torch.equal(dp.eval()(x, batch, B), x)
    dp.train()
    torch.manual_seed(5)
    out = dp(x, batch, B)
    torch.manual_seed(5)
    ref = reference_drop_path(x.view(B, n, C).permute(0, 2, 1), 0.3).permute(0, 2, 1).reshape(B * n, C)
    torch.testing.assert_close(out, ref)
    per_sample = out.view(B, n, C)
    kept = (per_sample != 0).flatten(1).all(1)
    assert torch.equal(kept | (per_sample == 0).flatten(1).all(1), torch.ones(B, dtype=torch.bool))
    assert 0 < int(kept.sum()) < B  # some samples dropped, some kept (whole samples)
    torch.testing.assert_close(per_sample[kept], x.view(B, n, C)[kept] / 0.7)
    # drop probability 1: every residual branch dropped, the blocks are the identity, the network is
    # classifier(embedding) (the reference would divide by keep_prob = 0 here)
    torch.manual_seed(2)
    model = tiny(drop_path=1.0).train()
    a = cloud(200, 15)
    prep = model.prepare([a])
    with torch.no_grad():
        out = model([a])[0]
        direct = model.classif(model.embed(prep.feats, prep.neighbors).T.unsqueeze(0))[0].T
    torch.testing.assert_close(out, direct, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(model.eval()([a])[0], direct, atol=1e-3)


def test_layer_scale_initialisation():
    torch.manual_seed(3)
    model = tiny(layer_scale=0.25)
    scales = [m.scale.weight for m in (*model.waffleiron.channel_mix, *model.waffleiron.spatial_mix)]
    assert len(scales) == 6 and all(torch.all(s == 0.25) for s in scales)
    # default: the reference's initialisation (PyTorch's default for its depthwise 1x1 Conv1d): U(-1, 1)
    ref = tiny(width=256)
    w = torch.cat([m.scale.weight.flatten() for m in ref.waffleiron.channel_mix])
    assert w.abs().max() <= 1 and w.abs().max() > 0.9 and w.std() > 0.4
    # a zero layer scale makes every block the identity, as with drop path 1
    zero = tiny(layer_scale=0.0).eval()
    a = cloud(200, 16)
    prep = zero.prepare([a])
    with torch.no_grad():
        direct = zero.classif(zero.embed(prep.feats, prep.neighbors).T.unsqueeze(0))[0].T
        torch.testing.assert_close(zero([a])[0], direct, rtol=1e-5, atol=1e-5)


def test_registered_in_models():
    from perception3d.registry import MODELS

    assert MODELS.module_dict["WaffleIron"] is WaffleIron


def test_bad_arguments_raise_a_clear_value_error():
    with pytest.raises(ValueError, match="grid_shape"):
        tiny(grid_shape=((12, 10), (12, 4)))  # 2 grids for 3 projections
    with pytest.raises(ValueError, match="grid_shape"):
        tiny(grid_shape=((12, 10, 3), (12, 4), (10, 4)))
    with pytest.raises(ValueError, match="fov"):
        tiny(fov=((-10, -8), (10, 8, 2)))
    with pytest.raises(ValueError, match="fov"):
        tiny(fov=((-10, -8, 2), (10, 8, -2)))
    with pytest.raises(ValueError, match="in_channels"):
        tiny(in_channels=4)
    with pytest.raises(ValueError, match="input_feat"):
        tiny(input_feat=("intensity", "rgb"))
    with pytest.raises(ValueError, match="drop_path"):
        tiny(drop_path=1.5)
    model = tiny()
    with pytest.raises(ValueError, match=r"points\[1\] has 3 columns.*at least 4"):
        model([cloud(50, 0), cloud(50, 1)[:, :3]])
    with pytest.raises(ValueError, match="points"):
        model(cloud(50, 0))
    # without intensity, x, y, z are enough
    geometric = tiny(in_channels=4, input_feat=("xyz", "radius"))
    assert geometric([cloud(50, 0)[:, :3]])[0].shape == (50, 4)
