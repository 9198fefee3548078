"""Voxelizer and the VoxelNeXt sparse backbone on real spconv, CPU: shapes, references, gradients, eval mode."""
from pathlib import Path

import numpy as np
import pytest
import spconv.pytorch as spconv
import torch

from perception3d.models import VoxelNeXtBackbone, Voxelizer
from perception3d.models.backbones.sparse_resnet import height_compression

FRAME = next((Path(__file__).parent / "data" / "nuscenes_frame").glob("*.pcd.bin"))
NUS_VOXEL, NUS_RANGE = [0.075, 0.075, 0.2], [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]


def nuscenes_size_frame(rng, copies=9):
    """About 300k points: the real frame and jittered copies of it, as 10 stacked sweeps would be."""
    raw = np.fromfile(FRAME, dtype=np.float32).reshape(-1, 5)
    parts = [raw] + [raw + np.pad(rng.normal(0, 0.1, (len(raw), 3)), ((0, 0), (0, 2))).astype(np.float32)
                     for _ in range(copies)]
    return torch.from_numpy(np.concatenate(parts))


@pytest.mark.parametrize("mode", ["hard", "dynamic"])
def test_voxelizer_means_equal_a_groupby_loop(mode, rng):
    clouds = [torch.from_numpy(rng.uniform(-4, 4, (3000, 4)).astype(np.float32)) for _ in range(2)]
    vox = Voxelizer([0.5, 0.5, 0.5], [-3, -3, -3, 3, 3, 3], mode=mode, max_points_per_voxel=100,
                    max_voxels=(10 ** 6, 10 ** 6))
    batch = vox(clouds)
    assert batch.spatial_shape == (12, 12, 12) and batch.batch_size == 2
    for b, cloud in enumerate(clouds):
        pts = cloud.numpy()
        cells = np.floor((pts[:, :3] - np.float32(-3)) / np.float32(0.5)).astype(int)[:, ::-1]
        inside = ((cells >= 0) & (cells < 12)).all(axis=1)
        expected = {}
        for cell, p in zip(map(tuple, cells[inside]), pts[inside]):
            expected.setdefault(cell, []).append(p)
        rows = (batch.coords[:, 0] == b).numpy()
        assert rows.sum() == len(expected)
        for coord, feature in zip(batch.coords[rows, 1:].numpy(), batch.features[rows].numpy()):
            assert np.allclose(feature, np.mean(expected[tuple(coord)], axis=0), atol=1e-5)


def test_height_compression_sums_columns_like_a_dict(rng):
    idx = np.unique(np.concatenate([rng.integers(0, 2, (500, 1)), rng.integers(0, 6, (500, 3))], 1), axis=0)
    feats = rng.normal(size=(len(idx), 3)).astype(np.float32)
    x = spconv.SparseConvTensor(torch.from_numpy(feats), torch.from_numpy(idx).int(), [6, 6, 6], 2)
    bev = height_compression(x)
    expected = {}
    for (b, _, y, xx), f in zip(idx, feats):
        expected[(b, y, xx)] = expected.get((b, y, xx), 0) + f
    assert bev.spatial_shape == [6, 6] and len(bev.indices) == len(expected)
    for key, f in zip(map(tuple, bev.indices.numpy()), bev.features.numpy()):
        assert np.allclose(f, expected[key], atol=1e-5)


def test_full_backbone_runs_a_nuscenes_size_frame_on_cpu_in_train_and_eval_mode():
    points = nuscenes_size_frame(np.random.default_rng(0))
    assert len(points) > 300_000
    batch = Voxelizer(NUS_VOXEL, NUS_RANGE)(points=[points])
    assert batch.spatial_shape == (40, 1440, 1440) and len(batch.features) > 100_000
    backbone = VoxelNeXtBackbone(in_channels=5)
    bev = backbone(batch)
    # "auto" runs our sparse engine on a CPU with two or more torch threads, spconv's path on one
    ours = torch.get_num_threads() > 1
    assert (("perception3d", "subm_bev") in bev.indice_dict) == ours
    assert bev.spatial_shape == [180, 180] and bev.features.shape[1] == 128
    assert (bev.indices[:, 1:] >= 0).all() and (bev.indices[:, 1:] < 180).all()
    assert len(torch.unique(bev.indices, dim=0)) == len(bev.indices)
    backbone.eval()
    with torch.no_grad():
        again = backbone(batch)
    assert torch.equal(again.indices, bev.indices) and torch.isfinite(again.features).all()


def test_backward_reaches_every_backbone_parameter():
    rng = np.random.default_rng(1)
    clouds = [torch.from_numpy(rng.uniform(-20, 20, (20000, 4)).astype(np.float32)) for _ in range(2)]
    for c in clouds:
        c[:, 2] = c[:, 2] / 10
    batch = Voxelizer([0.4, 0.4, 0.5], [-20, -20, -2, 20, 20, 2], max_voxels=(20000, 20000))(clouds)
    backbone = VoxelNeXtBackbone(in_channels=4, channels=(8, 8, 16, 16, 16, 16), out_channels=16)
    bev = backbone(batch)
    (bev.features ** 2).mean().backward()
    missing = [name for name, p in backbone.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_backbone_refuses_stages_that_cannot_be_joined():
    with pytest.raises(ValueError, match="channels"):
        VoxelNeXtBackbone(4, channels=(16, 32, 64, 128, 256, 256))


def random_bev(rng, batch_size=2, size=60, n=1500, channels=16):
    idx = np.unique(np.concatenate([rng.integers(0, batch_size, (n, 1)), rng.integers(0, size, (n, 2))], 1), axis=0)
    feats = torch.from_numpy(rng.normal(size=(len(idx), channels)).astype(np.float32))
    return spconv.SparseConvTensor(feats, torch.from_numpy(idx).int(), [size, size], batch_size)


def random_gt(rng, n, classes=10):
    boxes = np.zeros((n, 9), np.float32)
    boxes[:, :2] = rng.uniform(-20, 20, (n, 2))
    boxes[:, 2] = rng.uniform(-2, 1, n)
    boxes[:, 3:6] = rng.uniform(0.4, 8, (n, 3))
    boxes[:, 6] = rng.uniform(-np.pi, np.pi, n)
    boxes[:, 7:] = rng.normal(size=(n, 2))
    return torch.from_numpy(boxes), torch.from_numpy(rng.integers(0, classes, n))


def test_targets_match_a_brute_force_assignment_and_decode_back_to_the_boxes(rng):
    """OpenPCDet's assign_target_of_single_head, box by box and voxel by voxel: voxel (i, j) at (i, j) cells, the
    centre clamped to the grid, its nearest voxel the positive, two untruncated Gaussians (around the centre and
    around the positive) with σ = (2r + 1) / 6, r = max(int(CenterNet radius), 2)."""
    from perception3d.models.heads import assign_targets, decode_boxes, gaussian_radius

    bev = random_bev(rng)
    gts = [random_gt(rng, 12), random_gt(rng, 7)]
    gts[0][0][0, :2] = torch.tensor([30.0, -30.0])  # outside the 60 × 60 grid: clamped to its edge
    gts[0][1][0] = 1
    cell, origin, group, grid = (0.8, 0.8), (-24.0, -24.0), [1, 2], (60, 60)
    t = assign_targets(bev.indices, [g[0] for g in gts], [g[1] for g in gts], group, cell, origin, grid)
    idx = bev.indices.numpy()
    heatmap = np.zeros((len(idx), len(group)))
    expected = []
    for b, (boxes, labels) in enumerate(gts):
        rows = np.flatnonzero(idx[:, 0] == b)
        for box, label in zip(boxes.numpy().astype(np.float64), labels.numpy()):
            if label not in group:
                continue
            cx = min(max((box[0] - origin[0]) / cell[0], 0.0), grid[1] - 0.5)
            cy = min(max((box[1] - origin[1]) / cell[1], 0.0), grid[0] - 0.5)
            r = max(int(gaussian_radius(torch.tensor(box[3] / cell[0]), torch.tensor(box[4] / cell[1]), 0.1)), 2)
            sigma = (2 * r + 1) / 6
            d_centre = [(idx[v, 2] - cx) ** 2 + (idx[v, 1] - cy) ** 2 for v in rows]
            nearest = rows[int(np.argmin(d_centre))]
            for v, d in zip(rows, d_centre):
                d_near = (idx[v, 2] - idx[nearest, 2]) ** 2 + (idx[v, 1] - idx[nearest, 1]) ** 2
                heatmap[v, group.index(label)] = max(heatmap[v, group.index(label)], np.exp(-d / (2 * sigma ** 2)),
                                                     np.exp(-d_near / (2 * sigma ** 2)))
            offset = [cx - idx[nearest, 2], cy - idx[nearest, 1]]
            expected.append((nearest, group.index(label), offset, box))
    assert t.positive.tolist() == [e[0] for e in expected] and t.labels.tolist() == [e[1] for e in expected]
    np.testing.assert_allclose(t.heatmap.numpy(), heatmap, rtol=1e-5, atol=1e-6)
    assert (t.heatmap[t.positive, t.labels] == 1).all()
    np.testing.assert_allclose(t.regression[:, :2].numpy(), [e[2] for e in expected], atol=1e-4)
    decoded = decode_boxes(t.regression, bev.indices[t.positive], cell, origin).numpy()
    truth = np.array([e[3] for e in expected])
    truth[0, :2] = [(grid[1] - 0.5) * cell[0] + origin[0], origin[1]]  # where the clamped centre lies
    assert np.allclose(decoded[:, [0, 1, 2, 3, 4, 5, 7, 8]], truth[:, [0, 1, 2, 3, 4, 5, 7, 8]], atol=1e-4)
    assert np.allclose(np.cos(decoded[:, 6] - truth[:, 6]), 1, atol=1e-5)


@pytest.mark.parametrize("decode", ["nms", "local_max"])
def test_head_loss_reaches_every_parameter_and_predicts_on_cpu_in_eval_mode(decode):
    from perception3d.models import VoxelNeXtHead

    rng = np.random.default_rng(2)
    bev = random_bev(rng)
    head = VoxelNeXtHead(16, voxel_size=[0.1, 0.1, 0.2], point_cloud_range=[-24, -24, -5, 24, 24, 3], decode=decode)
    gts = [random_gt(rng, 10), random_gt(rng, 10)]
    losses = head.loss(bev, [g[0] for g in gts], [g[1] for g in gts])
    sum(losses.values()).backward()
    # a bias can sum to an exact zero over a few positives (L1 signs cancel): it must be reached; every other
    # parameter (convolution and BatchNorm weights) must move
    missing = [n for n, p in head.named_parameters()
               if p.grad is None or (not n.endswith(".bias") and not p.grad.abs().sum() > 0)]
    assert not missing, missing
    head.eval()
    detections = head.predict(bev)
    assert len(detections) == 2
    occupied = [set(map(tuple, bev.indices[bev.indices[:, 0] == b, 1:].tolist())) for b in range(2)]
    for b, det in enumerate(detections):
        assert det.boxes.shape[1] == 9 and len(det.boxes) == len(det.scores) == len(det.labels) > 0
        assert (det.scores > 0.1).all() and det.labels.max() < 10
        assert det.voxels.shape == (len(det.boxes), 2) and set(map(tuple, det.voxels.tolist())) <= occupied[b]
        # the cell's centre in metres: 0.1 m voxels × stride 8 = 0.8 m cells from the range's corner (-24, -24)
        expected_xy = (det.voxels.flip(1).double() + 0.5) * 0.8 - 24
        torch.testing.assert_close(det.voxel_xy.double(), expected_xy, rtol=0, atol=1e-5)


@pytest.mark.parametrize("decode", ["nms", "local_max"])
def test_decoding_equals_a_brute_force_reference(decode, rng):
    """Random head outputs: top-K over voxels × classes, boxes decoded here from voxel (i, j) at (i, j) cells,
    the post-centre range (x, y and z, narrower than the point range so that it cuts), score threshold, then
    greedy NMS over shapely IoU or a neighbour-window maximum loop, group by group, against the head's decode."""
    from shapely.geometry import Polygon

    from perception3d.models import VoxelNeXtHead
    from perception3d.structures import box_corners

    bev = random_bev(rng, batch_size=1, size=40, n=900)
    rng_range = [-16.0, -16.0, -5.0, 16.0, 16.0, 3.0]
    limit = [-12.0, -14.0, -0.5, 13.0, 12.0, 1.0]
    head = VoxelNeXtHead(16, voxel_size=[0.1, 0.1, 0.2], point_cloud_range=rng_range, decode=decode,
                         max_objects=60, score_thresh=0.3, nms_iou=0.2, nms_post_max=25,
                         local_max_kernels=(3, 5, 3, 1, 3, 3), post_center_range=limit)
    outs = [{"hm": torch.from_numpy(rng.normal(-1, 1.5, (len(bev.indices), len(g))).astype(np.float32)),
             "code": torch.from_numpy(np.concatenate([rng.uniform(-3, 3, (len(bev.indices), 2)),
                                                      rng.normal(0, 1, (len(bev.indices), 1)),
                                                      rng.uniform(-0.5, 1.5, (len(bev.indices), 3)),
                                                      rng.normal(0, 1, (len(bev.indices), 4))], 1).astype(np.float32))}
            for g in head.groups]
    (det,) = head.decode(bev.indices, outs, 1)

    idx = bev.indices.numpy()
    where = {tuple(c): i for i, c in enumerate(idx[:, 1:])}
    expected, cut = [], 0
    for g, (group, out) in enumerate(zip(head.groups, outs)):
        prob = torch.sigmoid(out["hm"]).numpy().astype(np.float64)
        if decode == "local_max":
            r = head.local_max_kernels[g] // 2
            peak = np.zeros_like(prob, dtype=bool)
            for i, (y, x) in enumerate(idx[:, 1:]):
                near = [where[(y + dy, x + dx)] for dy in range(-r, r + 1) for dx in range(-r, r + 1)
                        if (y + dy, x + dx) in where]
                peak[i] = prob[i] >= prob[near].max(axis=0)
            prob = prob * peak
        cand = sorted(((prob[v, k], v, k) for v in range(len(prob)) for k in range(prob.shape[1])),
                      key=lambda t: -t[0])[:head.max_objects]
        cand = [c for c in cand if c[0] > head.score_thresh]
        code = out["code"].numpy().astype(np.float64)
        # OpenPCDet's decode_bbox_from_voxels_nuscenes: voxel i sits at index i (its corner), centre = (i + offset)
        # × voxel size × stride + range min; sizes are exp of the log sizes; yaw = atan2(sin, cos)
        cell = 0.1 * 8
        boxes = np.array([[(idx[v, 2] + code[v, 0]) * cell + rng_range[0],
                           (idx[v, 1] + code[v, 1]) * cell + rng_range[1], code[v, 2], *np.exp(code[v, 3:6]),
                           np.arctan2(code[v, 7], code[v, 6]), code[v, 8], code[v, 9]]
                          for _, v, _ in cand]).reshape(-1, 9)
        inside = [i for i, b in enumerate(boxes) if all(limit[a] <= b[a] <= limit[a + 3] for a in range(3))]
        cut += len(boxes) - len(inside)
        kept = []
        for i in inside:
            if decode == "nms" and len(kept) == head.nms_post_max:
                break
            if decode == "nms":
                p = Polygon(box_corners(boxes[i:i + 1])[0, :4, :2])
                if any(p.intersection(q).area / p.union(q).area > head.nms_iou
                       for q in (Polygon(box_corners(boxes[j:j + 1])[0, :4, :2]) for j in kept)):
                    continue
            kept.append(i)
        expected += [(group[cand[i][2]], cand[i][1], cand[i][0], boxes[i]) for i in kept]
    assert len(expected) > 10 and cut > 5
    got = [(int(lab), where[tuple(v)], float(s)) for lab, v, s in zip(det.labels, det.voxels.tolist(), det.scores)]
    assert [(e[0], e[1]) for e in expected] == [(g[0], g[1]) for g in got]
    assert np.allclose([e[2] for e in expected], [g[2] for g in got], atol=1e-6)
    assert np.allclose(np.array([e[3] for e in expected])[:, [0, 1, 2, 3, 4, 5, 7, 8]],
                       det.boxes.numpy()[:, [0, 1, 2, 3, 4, 5, 7, 8]], atol=1e-4)
    assert np.allclose(np.cos(np.array([e[3][6] for e in expected]) - det.boxes.numpy()[:, 6]), 1, atol=1e-5)


def test_join_to_stride8_moves_stages_5_and_6_onto_the_stride_8_grid_by_hand():
    """OpenPCDet's VoxelNeXt: ``x_conv5.indices[:, 1:] *= 2``, ``x_conv6.indices[:, 1:] *= 4`` (z, y, x), then the
    three stages' voxels one after another; the height compression then sums what shares a (batch, y, x)."""
    from perception3d.models.backbones.sparse_resnet import join_to_stride8

    def stage(indices, features, shape):
        return spconv.SparseConvTensor(torch.tensor(features, dtype=torch.float32), torch.tensor(indices).int(),
                                       shape, 2)

    x4 = stage([[0, 1, 2, 4], [1, 0, 5, 1]], [[1.0], [2.0]], [6, 12, 12])  # stride 8
    x5 = stage([[0, 2, 1, 2], [1, 1, 3, 0]], [[10.0], [20.0]], [3, 6, 6])  # stride 16
    x6 = stage([[1, 1, 2, 1]], [[100.0]], [2, 3, 3])  # stride 32
    joined = join_to_stride8(x4, x5, x6)
    assert joined.indices.tolist() == [[0, 1, 2, 4], [1, 0, 5, 1],  # stage 4 as it was
                                       [0, 4, 2, 4], [1, 2, 6, 0],  # stage 5 × 2
                                       [1, 4, 8, 4]]  # stage 6 × 4
    assert joined.features[:, 0].tolist() == [1.0, 2.0, 10.0, 20.0, 100.0]
    assert list(joined.spatial_shape) == [6, 12, 12] and joined.batch_size == 2
    bev = height_compression(joined)
    cells = {tuple(i): f for i, f in zip(bev.indices.tolist(), bev.features[:, 0].tolist())}
    assert cells == {(0, 2, 4): 11.0, (1, 5, 1): 2.0, (1, 6, 0): 20.0, (1, 8, 4): 100.0}  # x4 + x5 share (0, 2, 4)


def test_gaussian_radius_equals_hand_computed_values():
    """CenterNet's (and OpenPCDet's ``centernet_utils.gaussian_radius``) smallest root,
    r3 = (b3 + √(b3² − 4 a3 c3)) / 2 with a3 = 4o, b3 = −2o(h + w), c3 = (o − 1)wh, o the min overlap, as those
    codes compute it.
    h = 2, w = 8, o = 0.1: b3 = −2, b3² − 4 a3 c3 = 4 + 23.04 = 27.04 = 5.2², r3 = (−2 + 5.2) / 2 = 1.6.
    A square of side s: b3² − 4 a3 c3 = 16 o s², so r3 = 2s(√o − o): s = 4, o = 0.1 → 8(√0.1 − 0.1);
    s = 10, o = 0.5 → 20(√0.5 − 0.5). The other two roots are larger (≥ (h + w) / 2) in all three."""
    from perception3d.models.heads import gaussian_radius

    height = torch.tensor([2.0, 4.0, 10.0], dtype=torch.float64)
    width = torch.tensor([8.0, 4.0, 10.0], dtype=torch.float64)
    by_hand = torch.tensor([1.6, 8 * (0.1 ** 0.5 - 0.1)], dtype=torch.float64)
    torch.testing.assert_close(gaussian_radius(height[:2], width[:2], 0.1), by_hand, rtol=0, atol=1e-12)
    torch.testing.assert_close(gaussian_radius(height[2:], width[2:], 0.5),
                               torch.tensor([20 * (0.5 ** 0.5 - 0.5)], dtype=torch.float64), rtol=0, atol=1e-12)


def test_focal_loss_equals_hand_computed_values():
    """CenterNet's focal loss (OpenPCDet's ``neg_loss_sparse``, α = 2, β = 4, sigmoid clamped to [1e-4, 1 − 1e-4]):
    a positive (target 1) costs −log(p)(1 − p)², any other voxel −log(1 − p)p²(1 − t)⁴; the sum over the number of
    positives (1 when there is none). By hand: logit 0 (p = 1/2) at a positive: ln2 / 4; logit ln3 (p = 3/4) at
    t = 1/2: −ln(1/4)(9/16)(1/16) = 9 ln2 / 128; logit −20 at a positive and +20 at t = 0 are clamped: each costs
    −ln(1e-4)(1 − 1e-4)²."""
    from perception3d.models.heads.targets import focal_loss

    ln2, clamped = np.log(2.0), -np.log(1e-4) * (1 - 1e-4) ** 2
    logits = torch.tensor([[0.0, np.log(3.0)], [-20.0, 20.0]])
    target = torch.tensor([[1.0, 0.5], [1.0, 0.0]])
    expected = (ln2 / 4 + 9 * ln2 / 128 + 2 * clamped) / 2  # two positives
    assert focal_loss(logits, target).item() == pytest.approx(expected, rel=1e-5)
    # no positive: the negatives' sum, not divided
    assert focal_loss(logits[:1, 1:], target[:1, 1:]).item() == pytest.approx(9 * ln2 / 128, rel=1e-5)
