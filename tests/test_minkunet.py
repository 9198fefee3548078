"""MinkUNet (perception3d/models/segmentors/minkunet.py) on real spconv on the CPU: one row of logits per point
in input order, voxel grouping, permutation equivariance, batch independence, gradients and a small fit,
widths and parameter counts against mmdetection3d's MinkUNet18-W32, argument errors."""
from pathlib import Path

import numpy as np
import pytest
import torch

from perception3d.models.segmentors.minkunet import MinkUNet
from perception3d.registry import MODELS

FRAME = next((Path(__file__).parent / "data" / "nuscenes_frame").glob("*.pcd.bin"))
TINY = dict(base_channels=8, encoder_channels=(8, 16, 32, 32), decoder_channels=(32, 16, 16, 16),
            encoder_blocks=(1, 1, 1, 1), decoder_blocks=(1, 1, 1, 1))
VOXEL = (0.1, 0.1, 0.1)


def real_cloud() -> torch.Tensor:
    """The nuScenes frame's x, y, z, intensity: float32 (34688, 4)."""
    points = np.fromfile(FRAME, dtype=np.float32).reshape(-1, 5)
    return torch.from_numpy(points[:, :4].copy())


def box_cloud(rng, n: int, half: float = 10.0) -> torch.Tensor:
    """n random points in a (2 half) m box, intensity in [0, 255): float32 (n, 4)."""
    xyz = rng.uniform(-half, half, size=(n, 3))
    return torch.from_numpy(np.concatenate([xyz, rng.uniform(0, 255, (n, 1))], axis=1).astype(np.float32))


def tiny(num_classes: int = 5, seed: int = 0, **overrides) -> MinkUNet:
    torch.manual_seed(seed)
    return MinkUNet(4, num_classes, VOXEL, **{**TINY, **overrides})


def randomize_bn(model: MinkUNet, seed: int = 1) -> MinkUNet:
    """Non-trivial BatchNorm statistics and affine parameters, so eval-mode logits are not a near-degenerate
    function of the inputs (fresh BN layers are the identity)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    torch.nn.init.normal_(model.classifier.weight, std=0.5)  # larger logits: differences well above 1e-5
    return model.eval()


def cells(cloud: torch.Tensor) -> torch.Tensor:
    """The test's own voxel of every point: floor(xyz / voxel size), int64 (N, 3)."""
    return torch.floor(cloud[:, :3] / torch.tensor(VOXEL, dtype=cloud.dtype)).long()


# ------------------------------------------------------------------------------------------------ 1. rows
def test_one_row_per_point_grouped_by_voxel(rng):
    model = randomize_bn(tiny())
    real, box = real_cloud(), box_cloud(rng, 3000)
    # two points in one voxel of the box cloud (its centre and 2 cm off it), and one point far outside
    centre = (torch.floor(box[0, :3] / 0.1) + 0.5) * 0.1
    extra = torch.tensor([[*centre.tolist(), 17.0], [*(centre + 0.02).tolist(), 201.0],
                          [500.0, -800.0, 60.0, 3.0]])
    box = torch.cat([box, extra])
    with torch.no_grad():
        out = model([real, box])
    assert [tuple(o.shape) for o in out] == [(len(real), 5), (len(box), 5)]
    assert all(torch.isfinite(o).all() for o in out)
    n = len(box)
    assert torch.equal(out[1][n - 3], out[1][n - 2])  # same voxel: the same row of voxel logits
    assert not torch.allclose(out[1][n - 3], out[1][n - 1])
    for cloud, logits in zip((real, box), out):
        # points sharing a voxel have identical logits; distinct voxels (almost) always distinct logits
        _, group = torch.unique(cells(cloud), dim=0, return_inverse=True)
        n_groups = int(group.max()) + 1
        first = torch.full((n_groups,), len(cloud), dtype=torch.long).scatter_reduce(
            0, group, torch.arange(len(cloud)), reduce="amin")
        assert torch.equal(logits, logits[first][group])
        assert len(torch.unique(logits, dim=0)) >= 0.99 * n_groups


def test_far_outlier_leaves_the_other_points_unchanged(rng):
    """Each cloud's grid is shifted by a multiple of 2^stages voxels, so a far point that moves the cloud's
    minimum does not re-pair the voxels of the stride-2 layers: the other points keep their logits."""
    model = randomize_bn(tiny())
    box = box_cloud(rng, 2000)
    far = torch.tensor([[-333.33, 71.7, -45.5, 9.0]])  # moves the minimum cell in x and z by a non-multiple of 16
    with torch.no_grad():
        alone = model([box])[0]
        with_far = model([torch.cat([far, box])])[0]
    assert with_far.shape == (len(box) + 1, 5) and torch.isfinite(with_far[0]).all()
    torch.testing.assert_close(with_far[1:], alone, atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------- 2. permutation
def test_permuting_points_permutes_logits():
    model = randomize_bn(tiny())
    real = real_cloud()
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(real)))
    with torch.no_grad():
        logits = model([real])[0]
        shuffled = model([real[perm]])[0]
    torch.testing.assert_close(shuffled, logits[perm], atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------ 3. batch independence
def test_batch_independence_in_eval_mode(rng):
    model = randomize_bn(tiny())
    real = real_cloud()
    box = box_cloud(rng, 4000, half=30.0)
    with torch.no_grad():
        real_alone, box_alone = model([real])[0], model([box])[0]
        box_batched, real_batched = model([box, real])
    torch.testing.assert_close(real_batched, real_alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(box_batched, box_alone, atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------------ 4. backward
@pytest.mark.parametrize("block_type", ["basic", "bottleneck"])
def test_every_parameter_gets_a_finite_gradient(rng, block_type):
    model = tiny(block_type=block_type).train()
    clouds = [box_cloud(rng, 3000), box_cloud(rng, 1500, half=5.0)]
    logits = torch.cat(model(clouds))
    labels = torch.from_numpy(rng.integers(0, 5, len(logits)))
    torch.nn.functional.cross_entropy(logits, labels).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without a gradient: {missing}"
    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad}"
    zero = [name for name, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert not zero, f"all-zero gradients: {zero}"


def test_fits_a_position_dependent_labelling():
    """One SGD step lowers the loss; then 30 Adam steps on one synthetic cloud whose label is (z > 0) + 2 (x > 0)
    get > 90 % of its points right, in training mode and in eval mode once the BatchNorm running statistics
    are those of the cloud (momentum None: one pass sets them to the batch's)."""
    rng = np.random.default_rng(0)
    cloud = box_cloud(rng, 4000, half=5.0)
    labels = (cloud[:, 2] > 0).long() + 2 * (cloud[:, 0] > 0).long()
    model = tiny(num_classes=4, seed=0).train()

    def loss_now():
        return torch.nn.functional.cross_entropy(model([cloud])[0], labels)

    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    before = loss_now()
    before.backward()
    sgd.step()
    with torch.no_grad():
        assert loss_now().item() < before.item()

    adam = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(30):
        adam.zero_grad()
        loss = loss_now()
        loss.backward()
        adam.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0], losses
    with torch.no_grad():
        train_accuracy = (model([cloud])[0].argmax(1) == labels).float().mean().item()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.reset_running_stats()
                m.momentum = None
        model([cloud])
        eval_accuracy = (model.eval()([cloud])[0].argmax(1) == labels).float().mean().item()
    assert train_accuracy > 0.9 and eval_accuracy > 0.9, (train_accuracy, eval_accuracy, losses)


# ------------------------------------------------------------------------------------- 5. widths and counts
def reference_parameter_count(in_channels, num_classes, base, enc, dec, enc_blocks, dec_blocks,
                              block_type="basic") -> int:
    """Parameters of mmdetection3d's MinkUNet rebuilt from its layer list (minkunet_backbone.py
    ``MinkUNetBackbone.__init__``, torchsparse_block.py blocks, minkunet_head.py ``nn.Linear``): a k³ conv
    has k³ · cin · cout weights (no bias), a BatchNorm 2 · c (weight, bias)."""
    def conv(k, cin, cout):
        return k ** 3 * cin * cout

    def bn(c):
        return 2 * c

    def block(cin, cout):
        if block_type == "basic":  # TorchSparseBasicBlock: 3³ cin→cout, BN, 3³ cout→cout, BN
            body = conv(3, cin, cout) + bn(cout) + conv(3, cout, cout) + bn(cout)
        else:  # TorchSparseBottleneck: 1³ cin→cout, BN, 3³ cout→cout, BN, 1³ cout→cout, BN
            body = conv(1, cin, cout) + bn(cout) + conv(3, cout, cout) + bn(cout) + conv(1, cout, cout) + bn(cout)
        return body + (conv(1, cin, cout) + bn(cout) if cin != cout else 0)  # the 1³ + BN downsample branch

    total = conv(3, in_channels, base) + bn(base) + conv(3, base, base) + bn(base)  # conv_input
    e = [base] + list(enc)  # encoder_channels.insert(0, base_channels)
    d = [e[-1]] + list(dec)  # decoder_channels.insert(0, encoder_channels[-1])
    stages = len(enc)
    for i in range(stages):
        total += conv(2, e[i], e[i]) + bn(e[i])  # encoder_conv kernel 2 stride 2
        total += block(e[i], e[i + 1]) + (enc_blocks[i] - 1) * block(e[i + 1], e[i + 1])
        total += conv(2, d[i], d[i + 1]) + bn(d[i + 1])  # decoder_conv, transposed
        total += block(d[i + 1] + e[-2 - i], d[i + 1]) + (dec_blocks[i] - 1) * block(d[i + 1], d[i + 1])
    return total + d[-1] * num_classes + num_classes  # MinkUNetHead conv_seg = nn.Linear(channels, classes)


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_default_is_minkunet18_w32_and_widths_are_configurable():
    default = MinkUNet(4, 19, VOXEL)  # configs/_base_/models/minkunet.py: 19 SemanticKITTI classes
    expected = reference_parameter_count(4, 19, 32, (32, 64, 128, 256), (256, 128, 96, 96), (2, 2, 2, 2),
                                         (2, 2, 2, 2))
    assert count(default) == expected
    assert default.classifier.in_features == 96
    # MinkUNet34-W32 (configs/minkunet/minkunet34_w32_*: encoder_blocks=[2, 3, 4, 6]) and the bottleneck
    m34 = MinkUNet(4, 17, VOXEL, encoder_blocks=(2, 3, 4, 6))
    assert count(m34) == reference_parameter_count(4, 17, 32, (32, 64, 128, 256), (256, 128, 96, 96),
                                                   (2, 3, 4, 6), (2, 2, 2, 2))
    small = tiny(num_classes=16)
    assert count(small) == reference_parameter_count(4, 16, 8, TINY["encoder_channels"], TINY["decoder_channels"],
                                                     (1, 1, 1, 1), (1, 1, 1, 1))
    three = MinkUNet(4, 16, VOXEL, base_channels=8, encoder_channels=(8, 16, 24), decoder_channels=(24, 16, 8),
                     encoder_blocks=(1, 2, 1), decoder_blocks=(2, 1, 1), block_type="bottleneck")
    assert count(three) == reference_parameter_count(4, 16, 8, (8, 16, 24), (24, 16, 8), (1, 2, 1), (2, 1, 1),
                                                     block_type="bottleneck")
    assert count(small) < count(default) < count(m34)
    with torch.no_grad():  # a three-stage network runs too (grid rounded to multiples of 2^3)
        out = three.eval()([box_cloud(np.random.default_rng(0), 500)])
    assert out[0].shape == (500, 16)


def test_built_from_the_registry():
    model = MODELS.build(dict(type="MinkUNet", in_channels=4, num_classes=3, voxel_size=[0.2, 0.2, 0.2], **TINY))
    assert isinstance(model, MinkUNet) and model.classifier.out_features == 3


# -------------------------------------------------------------------------------------------- 6. bad args
@pytest.mark.parametrize("kwargs, match", [
    (dict(decoder_channels=(32, 16, 16)), "encoder_channels, decoder_channels, encoder_blocks and decoder_blocks"),
    (dict(encoder_blocks=(1, 1, 1)), "encoder_channels, decoder_channels, encoder_blocks and decoder_blocks"),
    (dict(block_type="resnext"), "block_type"),
    (dict(encoder_blocks=(1, 0, 1, 1)), "encoder_blocks"),
    (dict(voxel_size=(0.1, 0.1)), "voxel_size"),
    (dict(in_channels=2), "in_channels"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    args = dict(in_channels=4, num_classes=5, voxel_size=VOXEL, **TINY)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MinkUNet(**args)


def test_wrong_point_columns_are_a_clear_error():
    model = tiny().eval()
    five = torch.from_numpy(np.fromfile(FRAME, dtype=np.float32).reshape(-1, 5)[:100].copy())
    with pytest.raises(ValueError, match="MinkUNet expects in_channels=4 point columns, got 5"):
        model([five])
    with pytest.raises(ValueError, match="non-finite"):
        model([torch.tensor([[float("nan"), 0.0, 0.0, 1.0]])])
