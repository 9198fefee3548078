"""The kernels against independent references, on fresh random inputs each run: spconv's PointToVoxel,
shapely polygons, brute-force loops and torch.autograd.gradcheck. The CUDA twins answer the same checks."""
import numpy as np
import pytest
import shapely.geometry
import torch
from spconv.pytorch.utils import PointToVoxel

from perception3d.ops import (bev_iou, circle_nms, iou_3d, nms_bev, points_in_boxes, points_in_boxes_mask,
                              scatter_max, scatter_mean, sparse_local_max, voxelize_dynamic, voxelize_hard)
from perception3d.structures import bev_corners

VOXEL = [0.2, 0.2, 0.25]
RANGE = [-8.0, -6.0, -2.0, 8.0, 6.0, 1.0]
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")



def random_points(rng, n):
    """Points around and beyond RANGE (x, y, z, intensity, time), a fifth of them on voxel faces."""
    pts = np.empty((n, 5), dtype=np.float32)
    pts[:, :3] = rng.uniform(np.array(RANGE[:3]) - 1, np.array(RANGE[3:]) + 1, (n, 3))
    on_face = rng.random(n) < 0.2
    lo, vs = np.array(RANGE[:3]), np.array(VOXEL)
    pts[on_face, :3] = (lo + np.round((pts[on_face, :3] - lo) / vs) * vs).astype(np.float32)
    pts[:, 3:] = rng.random((n, 2))
    return pts


def random_boxes(rng, n, spread=6.0):
    boxes = np.zeros((n, 9))
    boxes[:, :2] = rng.uniform(-spread, spread, (n, 2))
    boxes[:, 2] = rng.uniform(-1, 1, n)
    boxes[:, 3:6] = rng.uniform(0.2, 5, (n, 3))
    boxes[:, 6] = rng.uniform(-np.pi, np.pi, n)
    boxes[:, 7:] = rng.normal(size=(n, 2))
    return boxes


def spconv_voxels(points, max_points, max_voxels):
    generator = PointToVoxel(VOXEL, RANGE, points.shape[1], max_voxels, max_points)
    return generator(torch.from_numpy(points))


@pytest.mark.parametrize("max_points, max_voxels", [(5, 20000), (2, 20000), (10, 300)])
def test_voxelize_hard_equals_spconv(rng, max_points, max_voxels):
    """Outside points, points on voxel faces, full voxels (max_points) and too many voxels (max_voxels)."""
    points = random_points(rng, 30000)
    points[rng.integers(0, 30000, 2000)] = points[:2000]  # denser voxels
    points[:40, :3] = rng.uniform(0.01, 0.19, (40, 3))  # the first voxel seen holds more than max_points
    voxels, coords, counts = voxelize_hard(points, VOXEL, RANGE, max_points, max_voxels)
    ref_voxels, ref_coords, ref_counts = spconv_voxels(points, max_points, max_voxels)
    assert torch.equal(coords, ref_coords) and torch.equal(counts, ref_counts)
    assert torch.equal(voxels, ref_voxels)
    assert len(coords) == min(max_voxels, len(ref_coords)) and counts.max() == max_points


def test_voxelize_hard_empty_and_outside_only():
    empty = voxelize_hard(np.zeros((0, 4), np.float32), VOXEL, RANGE, 5, 100)
    assert [tuple(t.shape) for t in empty] == [(0, 5, 4), (0, 3), (0,)]
    outside = np.full((10, 4), 100.0, np.float32)
    assert len(voxelize_hard(outside, VOXEL, RANGE, 5, 100)[1]) == 0


def test_voxelize_dynamic_keeps_every_point_in_its_voxel(rng):
    points = random_points(rng, 20000)
    point_voxel, coords = voxelize_dynamic(points, VOXEL, RANGE)
    ref = ((points[:, :3].astype(np.float32) - np.float32(RANGE[:3])) / np.float32(VOXEL))
    ref = np.floor(ref).astype(np.int64)[:, ::-1]  # z, y, x
    grid = np.round((np.float32(RANGE[3:]) - np.float32(RANGE[:3])) / np.float32(VOXEL)).astype(int)[::-1]
    inside = ((ref >= 0) & (ref < grid)).all(axis=1)
    assert np.array_equal(point_voxel.numpy() >= 0, inside)
    assert np.array_equal(coords.numpy()[point_voxel.numpy()[inside]], ref[inside])
    assert len(np.unique(coords.numpy(), axis=0)) == len(coords)
    # first-seen order and coordinates are spconv's, with nothing dropped
    _, ref_coords, _ = spconv_voxels(points, 1, len(points))
    assert torch.equal(coords, ref_coords)


def test_scatter_mean_and_max_match_loops_and_gradcheck(rng):
    n, c, m = 300, 3, 40
    features = torch.from_numpy(rng.normal(size=(n, c)))
    features[:20] = features[20:40]  # ties inside a voxel
    index = torch.from_numpy(rng.integers(-1, m - 5, n))  # -1: dropped points; the last voxels stay empty
    mean = scatter_mean(features, index, m)
    top, argmax = scatter_max(features, index, m)
    for v in range(m):
        rows = np.flatnonzero(index.numpy() == v)
        if len(rows) == 0:
            assert not mean[v].any() and not top[v].any() and (argmax[v] == n).all()
            continue
        assert torch.allclose(mean[v], features[rows].mean(0))
        assert torch.equal(top[v], features[rows].max(0).values)
        for k in range(c):  # the first point reaching the maximum
            assert argmax[v, k] == rows[np.argmax(features[rows, k].numpy())]
    f = torch.from_numpy(rng.normal(size=(n, c))).requires_grad_(True)  # no ties: max is differentiable
    assert torch.autograd.gradcheck(lambda x: scatter_mean(x, index, m), (f,))
    assert torch.autograd.gradcheck(lambda x: scatter_max(x, index, m)[0], (f,))


def shapely_iou(boxes_a, boxes_b, use_height=False):
    pa = [shapely.geometry.Polygon(c) for c in bev_corners(boxes_a)]
    pb = [shapely.geometry.Polygon(c) for c in bev_corners(boxes_b)]
    out = np.zeros((len(pa), len(pb)))
    for i, p in enumerate(pa):
        for j, q in enumerate(pb):
            inter = p.intersection(q).area
            va, vb = p.area, q.area
            if use_height:
                a, b = boxes_a[i], boxes_b[j]
                inter *= max(0.0, min(a[2] + a[5] / 2, b[2] + b[5] / 2) - max(a[2] - a[5] / 2, b[2] - b[5] / 2))
                va, vb = va * a[5], vb * b[5]
            union = va + vb - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def edge_case_boxes(rng):
    boxes = random_boxes(rng, 80)
    boxes[1] = boxes[0]  # identical
    boxes[2] = boxes[0]
    boxes[2, 6] = boxes[0, 6] + np.pi  # the same rectangle, heading turned around
    boxes[3, 6], boxes[4, 6] = np.pi, -np.pi
    boxes[4, :6] = boxes[3, :6]
    boxes[5:8, 3:5] = 1e-3  # tiny
    boxes[6] = boxes[5]  # tiny and identical
    boxes[8, 3] = 0.0  # degenerate: no area
    boxes[9:12, :2] += 1000.0  # far from the origin
    boxes[10, :6] = boxes[9, :6] + [0.3, 0.1, 0.0, 0.0, 0.0, 0.0]
    return boxes


@pytest.mark.parametrize("use_height", [False, True])
def test_box_iou_matches_shapely_on_edge_cases(rng, use_height):
    boxes = edge_case_boxes(rng)
    ours = (iou_3d if use_height else bev_iou)(boxes, boxes).numpy()
    ref = shapely_iou(boxes, boxes, use_height)
    assert np.abs(ours - ref).max() < 1e-5
    assert ours.max() <= 1.0 and ours.min() >= 0.0
    assert ours[0, 1] == pytest.approx(1.0, abs=1e-6) and ours[0, 2] == pytest.approx(1.0, abs=1e-6)
    assert ours[3, 4] == pytest.approx(1.0, abs=1e-6) and ours[8, 8] == 0.0
    assert ours[5, 6] == pytest.approx(1.0, abs=1e-5)


def greedy_reference(order, suppresses, post_max):
    keep = []
    for i in order:
        if all(not suppresses(k, i) for k in keep):
            keep.append(i)
        if len(keep) == post_max:
            break
    return keep


def test_nms_bev_equals_a_greedy_loop_over_shapely_iou(rng):
    boxes = random_boxes(rng, 150)
    boxes[10:20] = boxes[0:10]  # duplicates with equal scores: the first in input order wins
    scores = rng.random(150)
    scores[10:20] = scores[0:10]
    iou = shapely_iou(boxes, boxes)
    for thresh, pre_max, post_max in ((0.1, None, None), (0.5, 100, 30), (0.0, None, 5)):
        order = sorted(range(150), key=lambda i: (-scores[i], i))[:pre_max]
        ref = greedy_reference(order, lambda k, i: iou[k, i] > thresh, post_max)
        assert nms_bev(boxes, scores, thresh, pre_max, post_max).tolist() == ref


def test_circle_nms_equals_a_greedy_loop(rng):
    centers = rng.uniform(-10, 10, (400, 2))
    scores = np.round(rng.random(400), 2)  # many ties
    d = np.linalg.norm(centers[:, None] - centers[None], axis=2)
    order = sorted(range(400), key=lambda i: (-scores[i], i))
    ref = greedy_reference(order, lambda k, i: d[k, i] < 1.5, None)
    assert circle_nms(centers, scores, 1.5).tolist() == ref
    assert circle_nms(torch.from_numpy(centers), torch.from_numpy(scores), 1.5, post_max=7).tolist() == ref[:7]


def test_points_in_boxes_takes_tensors_and_matches_a_loop(rng):
    points = random_points(rng, 5000)
    boxes = random_boxes(rng, 30)
    mask = points_in_boxes_mask(torch.from_numpy(points), torch.from_numpy(boxes))
    index = points_in_boxes(torch.from_numpy(points), torch.from_numpy(boxes))
    assert isinstance(mask, torch.Tensor) and mask.shape == (5000, 30)
    p = points[:, :3].astype(np.float64)
    for b, box in enumerate(boxes):
        c, s = np.cos(box[6]), np.sin(box[6])
        d = p - box[:3]
        inside = ((np.abs(c * d[:, 0] + s * d[:, 1]) <= box[3] / 2) & (np.abs(-s * d[:, 0] + c * d[:, 1]) <= box[4] / 2)
                  & (np.abs(d[:, 2]) <= box[5] / 2))
        assert np.array_equal(mask[:, b].numpy(), inside)
    first = np.where(mask.any(1).numpy(), mask.numpy().argmax(1), -1)
    assert np.array_equal(index.numpy(), first)


def brute_force_local_max(coords, scores, kernel_size):
    r = kernel_size // 2
    mask = np.ones(scores.shape, bool)
    for i in range(len(coords)):
        near = (coords[:, 0] == coords[i, 0]) & (np.abs(coords[:, 1:] - coords[i, 1:]) <= r).all(axis=1)
        mask[i] = (scores[near] <= scores[i]).all(axis=0)
    return mask


@pytest.mark.parametrize("dims, kernel_size", [(2, 3), (2, 5), (3, 3)])
def test_sparse_local_max_equals_a_brute_force_loop(rng, dims, kernel_size):
    coords = np.concatenate([rng.integers(0, 2, (3000, 1)), rng.integers(0, 30, (3000, dims))], axis=1)
    coords = np.unique(coords, axis=0)
    coords = coords[rng.permutation(len(coords))].astype(np.int32)
    scores = np.round(rng.random((len(coords), 3)), 1).astype(np.float32)  # ties are kept on both sides
    mask = sparse_local_max(coords, scores, kernel_size)
    assert np.array_equal(mask.numpy(), brute_force_local_max(coords, scores, kernel_size))
    assert np.array_equal(sparse_local_max(coords, scores[:, 1], kernel_size).numpy(), mask[:, 1].numpy())
    assert sparse_local_max(coords[:0], scores[:0], kernel_size).shape == (0, 3)


@pytest.mark.parametrize("call, argument", [
    (lambda: voxelize_hard(np.zeros((5, 2), np.float32), VOXEL, RANGE, 5, 10), "points"),
    (lambda: voxelize_hard(np.zeros((5, 4), np.int32), VOXEL, RANGE, 5, 10), "points"),
    (lambda: voxelize_hard(np.zeros((5, 4), np.float32), [0.1, 0.0, 0.2], RANGE, 5, 10), "voxel_size"),
    (lambda: voxelize_hard(np.zeros((5, 4), np.float32), VOXEL, [0, 0, 0, -1, 1, 1], 5, 10), "pc_range"),
    (lambda: voxelize_hard(np.zeros((5, 4), np.float32), VOXEL, RANGE, 0, 10), "max_points_per_voxel"),
    (lambda: voxelize_dynamic(np.zeros((5, 4), np.float32), VOXEL, RANGE[:5]), "pc_range"),
    (lambda: bev_iou(np.zeros((3, 7)), np.zeros((3, 9))), "boxes_a"),
    (lambda: nms_bev(np.zeros((3, 9)), np.zeros(4), 0.5), "scores"),
    (lambda: nms_bev(np.zeros((3, 9)), np.zeros(3), 1.5), "iou_thresh"),
    (lambda: nms_bev(np.zeros((3, 9)), np.zeros(3), 0.5, post_max=0), "post_max"),
    (lambda: circle_nms(np.zeros((3, 2)), np.zeros(3), -1.0), "radius"),
    (lambda: scatter_mean(torch.zeros(4, 2), torch.zeros(4, dtype=torch.int32), 3), "index"),
    (lambda: sparse_local_max(np.zeros((4, 3), np.float32), np.zeros(4), 3), "coords"),
    (lambda: sparse_local_max(np.zeros((4, 3), np.int32), np.zeros(4), 2), "kernel_size"),
    (lambda: points_in_boxes(torch.zeros(4, 3), torch.zeros(2, 9, dtype=torch.float64).to("meta")), "devices"),
])
def test_bad_arguments_name_themselves(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


@needs_cuda
def test_cuda_twins_equal_the_cpu_path(rng):
    points = random_points(rng, 50000)
    cpu = voxelize_hard(points, VOXEL, RANGE, 5, 20000)
    gpu = voxelize_hard(torch.from_numpy(points).cuda(), VOXEL, RANGE, 5, 20000)
    assert all(torch.equal(a, b.cpu()) for a, b in zip(cpu, gpu))
    cpu = voxelize_dynamic(points, VOXEL, RANGE)
    gpu = voxelize_dynamic(torch.from_numpy(points).cuda(), VOXEL, RANGE)
    assert all(torch.equal(a, b.cpu()) for a, b in zip(cpu, gpu))
    boxes = edge_case_boxes(rng)
    for op in (bev_iou, iou_3d):
        assert torch.allclose(op(boxes, boxes), op(torch.from_numpy(boxes).cuda(), torch.from_numpy(boxes).cuda())
                              .cpu(), atol=1e-5)
    scores = rng.random(len(boxes))
    assert torch.equal(nms_bev(boxes, scores, 0.2), nms_bev(torch.from_numpy(boxes).cuda(),
                                                             torch.from_numpy(scores).cuda(), 0.2).cpu())
    assert torch.equal(circle_nms(boxes, scores, 2.0), circle_nms(torch.from_numpy(boxes).cuda(),
                                                                   torch.from_numpy(scores).cuda(), 2.0).cpu())
    pts, bx = torch.from_numpy(points), torch.from_numpy(random_boxes(rng, 40))
    assert torch.equal(points_in_boxes(pts, bx), points_in_boxes(pts.cuda(), bx.cuda()).cpu())
    assert torch.equal(points_in_boxes_mask(pts, bx), points_in_boxes_mask(pts.cuda(), bx.cuda()).cpu())
    coords = torch.from_numpy(np.unique(np.concatenate([rng.integers(0, 2, (5000, 1)),
                                                        rng.integers(0, 60, (5000, 2))], 1), axis=0)).int()
    s = torch.from_numpy(np.round(rng.random((len(coords), 2)), 1)).float()
    assert torch.equal(sparse_local_max(coords, s, 3), sparse_local_max(coords.cuda(), s.cuda(), 3).cpu())
