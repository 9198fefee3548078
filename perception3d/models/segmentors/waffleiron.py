"""WaffleIron (Puy, Boulch, Marlet, ICCV 2023): point-cloud semantic segmentation by 2-D factorised mixing.

Reference: github.com/valeoai/WaffleIron (v0.3.1, commit bcd387c). The network is rebuilt from the reference's
``waffleiron/embedding.py`` (``Embedding``), ``waffleiron/backbone.py`` (``ChannelMix``, ``SpatialMix``,
``DropPath``, ``WaffleIron``), ``waffleiron/segmenter.py`` (``Segmenter``) and the parts of the data loader that
build the network's inputs (``datasets/pc_dataset.py``: ``prepare_input_features``, ``Crop``, ``get_occupied_2d_cells``,
the KD-tree neighbours, the validation ``upsample``), which here run inside ``forward`` on raw points.

Module and parameter names mirror the reference's ``Segmenter`` (``embed.*``, ``waffleiron.channel_mix.<l>.*``,
``waffleiron.spatial_mix.<l>.*``, ``classif.*``) with the same shapes, so a reference checkpoint's ``net`` state dict
(without DataParallel's ``module.`` prefix) loads with ``load_state_dict(strict=True)``. Pointwise (1x1) convolutions
are stored as the reference's Conv1d/Conv2d but evaluated as matrix products on point-major (N, C) tensors, and the
reference's BatchNorm2d of the neighbourhood embedding are BatchNorm1d over (N * K, C) (same statistics, same keys).

Values and where the reference sets them (``configs/WaffleIron-48-384__nuscenes.yaml`` unless a file is named):
  width 384 (``waffleiron.nb_channels``), depth 48 (``waffleiron.depth``), projections along z, y, x, i.e. planes
  (x, y), (x, z), (y, z) repeated over depth (``waffleiron.dim_proj: [2, 1, 0]``; ``pc_dataset.py`` ``lut_axis_plane``),
  grids 166x166, 166x16, 166x16 (``waffleiron.grids_size``) over fov x, y in [-50, 50] m, z in [-5, 5] m
  (``waffleiron.fov_xyz``), drop path 0.2, the same in every block (``waffleiron.drop``; ``backbone.py`` passes one
  ``drop_path_prob`` to all blocks), 16 neighbours (``embedding.neighbors``), 5 inputs intensity, x, y, z, radius
  (``embedding.input_feat``/``size_input``; ``pc_dataset.py`` ``prepare_input_features``; raw values, no
  normalisation other than the embedding's first BatchNorm), 16 classes (``classif.nb_class``).

The reference's nuScenes training recipe, outside this module (for the data pipeline and the runner): one random
point per 0.1 m voxel (``embedding.voxel_size``; ``utils/transforms.py`` ``Voxelize``, first point at validation),
then at most 20k points, the 20k nearest to a random point of the cloud (``dataloader.max_points``;
``LimitNumPoints(random=True)``), rotations about z of the coordinates and, independently, of the x, y input
features, a flip of x or y with probability 2/3, a 0.9-1.1 scale of the x, y, z, radius input features only
(``augmentations``), crop to the fov; batch 4 (``dataloader.batch_size``); AdamW lr 1e-3, weight decay 0.003
(``optim``; ``launch_train.py`` ``get_optimizer``); per-iteration schedule linear warm-up over 4 epochs then cosine
to 1e-5 at epoch 45 (``scheduler``; ``utils/scheduler.py`` ``WarmupCosine``); loss cross entropy + 1.0 x
Lovász-softmax (``loss.lovasz``; ``utils/metrics.py`` ``SemSegLoss``); fp16 autocast (README).
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial import cKDTree
from torch import nn

from ...registry import MODELS

# pc_dataset.py ``lut_axis_plane``: projecting along axis d flattens the cloud onto the plane of the two other axes.
PLANE_OF_PROJECTION = {0: (1, 2), 1: (0, 2), 2: (0, 1)}
# utils/transforms.py ``Crop(eps=1e-4)``: a point is kept when min + eps < p < max - eps on x, y and z.
FOV_EPS = 1e-4
# waffleiron/helper_projection.py: a cell's mean is its sum times occupied / (count + 1e-6).
CELL_COUNT_EPS = 1e-6
INPUT_FEATURES = {"intensity": 1, "height": 1, "xyz": 3, "radius": 1}


# --------------------------------------------------------------------------------------------------------------
# Geometry: 2-D cells, projection to a grid and back, neighbours. Separately callable (tests compare them to loops).
# --------------------------------------------------------------------------------------------------------------

def grid_cell_index(xyz: torch.Tensor, fov: Sequence[Sequence[float]], plane: Tuple[int, int],
                    grid_shape: Tuple[int, int]) -> torch.Tensor:
    """Flat index ``i * W + j`` of each point's cell on the ``grid_shape`` = (H, W) grid of ``plane`` = (axis_i,
    axis_j), the grid spanning ``fov`` = (min xyz, max xyz): ``i = floor((p_i - min_i) / ((max_i - min_i) / H))``,
    likewise j with W (``pc_dataset.py`` ``get_occupied_2d_cells``, in float64 like the reference's numpy).

    The reference crops the cloud to the fov first and asserts every index is inside the grid; here indices are
    clamped to [0, H - 1] x [0, W - 1], so a point outside the fov falls in the border cell nearest to it.
    """
    lo = torch.tensor([float(fov[0][a]) for a in plane], dtype=torch.float64, device=xyz.device)
    hi = torch.tensor([float(fov[1][a]) for a in plane], dtype=torch.float64, device=xyz.device)
    size = torch.tensor([int(g) for g in grid_shape], dtype=torch.float64, device=xyz.device)
    res = (hi - lo) / size
    quant = torch.floor((xyz[:, list(plane)].double() - lo) / res)
    quant = torch.minimum(quant.clamp(min=0), size - 1).long()
    return quant[:, 0] * int(grid_shape[1]) + quant[:, 1]


class GridProjection(NamedTuple):
    """Where each point goes on a batch of (H, W) grids: ``index`` (N,) = batch * H * W + cell, ``weight`` (N,) =
    1 / (points in that cell + 1e-6), so that scattering weighted features sums to the cell mean."""

    index: torch.Tensor
    weight: torch.Tensor
    batch_size: int
    grid_shape: Tuple[int, int]


def make_projection(cell: torch.Tensor, batch: torch.Tensor, batch_size: int,
                    grid_shape: Tuple[int, int]) -> GridProjection:
    """Projection of points with cell indices ``cell`` (N,) (see :func:`grid_cell_index`) in samples ``batch`` (N,),
    each sample its own grid (``helper_projection.py`` ``get_all_projections_*``: counts per cell, then
    weight = occupied / (count + 1e-6); here every point is occupied, there is no zero padding)."""
    H, W = int(grid_shape[0]), int(grid_shape[1])
    index = batch.long() * (H * W) + cell.long()
    count = torch.bincount(index, minlength=batch_size * H * W)
    weight = 1.0 / (count[index].double() + CELL_COUNT_EPS)
    return GridProjection(index, weight.float(), int(batch_size), (H, W))


def scatter_to_grid(feat: torch.Tensor, proj: GridProjection) -> torch.Tensor:
    """Point features (N, C) → (B, C, H, W) grids holding the mean of the features of each cell's points (0 in
    empty cells). The result is a channels-last view (no copy) of a (B, H, W, C) buffer."""
    (H, W), B, C = proj.grid_shape, proj.batch_size, feat.shape[1]
    src = feat * proj.weight.to(feat.dtype).unsqueeze(1)
    buf = feat.new_zeros(B * H * W, C).index_add(0, proj.index, src)
    return buf.view(B, H, W, C).permute(0, 3, 1, 2)


def gather_from_grid(grid: torch.Tensor, proj: GridProjection) -> torch.Tensor:
    """(B, C, H, W) grids → (N, C): each point reads the features of its own cell (the reference's "inflate")."""
    B, C, H, W = grid.shape
    return grid.permute(0, 2, 3, 1).reshape(B * H * W, C).index_select(0, proj.index)


def knn_indices(xyz: torch.Tensor, k: int) -> torch.Tensor:
    """(N, k) indices of each point's k nearest neighbours in ``xyz`` (N, 3), nearest first, the point itself left
    out: the reference queries k + 1 neighbours with scipy's cKDTree and drops the first (``pc_dataset.py``
    ``kdtree.query(pc[:, :3], k=self.num_neighbors + 1)``; ``embedding.py`` loops from neighbour 1). A cloud with
    at most k points repeats its farthest neighbour (the max over neighbours is unchanged); a single point is its
    own neighbour."""
    n = xyz.shape[0]
    pts = xyz.detach().double().cpu().numpy()
    kq = min(k + 1, n)
    _, idx = cKDTree(pts).query(pts, k=[*range(1, kq + 1)])
    idx = np.asarray(idx, dtype=np.int64).reshape(n, kq)
    idx = idx[:, 1:] if kq > 1 else idx
    if idx.shape[1] < k:
        idx = np.concatenate([idx, np.repeat(idx[:, -1:], k - idx.shape[1], axis=1)], axis=1)
    return torch.from_numpy(idx).to(xyz.device)


def in_fov_mask(xyz: torch.Tensor, fov: Sequence[Sequence[float]]) -> torch.Tensor:
    """(N,) bool: the points the reference keeps (``utils/transforms.py`` ``Crop``: min + 1e-4 < p < max - 1e-4 on
    x, y and z)."""
    lo = torch.tensor([float(v) for v in fov[0]], dtype=xyz.dtype, device=xyz.device)
    hi = torch.tensor([float(v) for v in fov[1]], dtype=xyz.dtype, device=xyz.device)
    return ((xyz[:, :3] > lo + FOV_EPS) & (xyz[:, :3] < hi - FOV_EPS)).all(dim=1)


def build_input_features(points: torch.Tensor, input_feat: Sequence[str]) -> torch.Tensor:
    """(N, C) points (x, y, z, intensity, ...) → (N, F) network inputs in ``input_feat`` order, as
    ``pc_dataset.py`` ``prepare_input_features``: "intensity" column 3 (the reference's ``pc[:, 3:]``, which for
    nuScenes is the raw 0-255 intensity alone; later columns such as a time lag are not used), "xyz" columns 0-2,
    "height" column 2, "radius" the euclidean norm of x, y, z. No normalisation."""
    cols = []
    for name in input_feat:
        if name == "intensity":
            cols.append(points[:, 3:4])
        elif name == "xyz":
            cols.append(points[:, :3])
        elif name == "height":
            cols.append(points[:, 2:3])
        elif name == "radius":
            cols.append(torch.linalg.vector_norm(points[:, :3], dim=1, keepdim=True))
    return torch.cat(cols, dim=1)


def _pointwise(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 Conv1d/Conv2d applied to point-major features (..., C_in) → (..., C_out)."""
    return F.linear(x, conv.weight.flatten(1), conv.bias)


# --------------------------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------------------------

class DropPath(nn.Module):
    """Stochastic depth per sample (``backbone.py`` ``DropPath``, from DINO): in training, a sample's residual is
    multiplied by floor(keep + U[0, 1)) / keep, keep = 1 - drop_prob, i.e. dropped with probability drop_prob and
    rescaled otherwise; identity in eval mode or with drop_prob 0. With drop_prob 1 the residual is zeroed (the
    reference divides by keep = 0 and returns NaN)."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = float(drop_prob)
        self.keep_prob = 1.0 - self.drop_prob

    def extra_repr(self) -> str:
        return f"prob={self.drop_prob}"

    def forward(self, x: torch.Tensor, batch: torch.Tensor, batch_size: int) -> torch.Tensor:
        """x (N, C) residuals of the points of ``batch_size`` samples, ``batch`` (N,) each point's sample."""
        if not self.training or self.drop_prob == 0.0:
            return x
        if self.keep_prob <= 0.0:
            return x * 0.0
        keep = torch.floor(self.keep_prob + torch.rand(batch_size, dtype=x.dtype, device=x.device))
        return x * (keep / self.keep_prob)[batch].unsqueeze(1)


class Embedding(nn.Module):
    """Point tokens from input features and their 16-NN (``embedding.py`` ``Embedding``).

    x ← BN(x); point = conv1(x); neigh = max_k conv2(x[n_k] - x) with conv2 = BN, 1x1 (no bias), BN, ReLU,
    1x1 (no bias); out = final([point, neigh]) (1x1 with bias)."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(channels_in)
        self.conv1 = nn.Conv1d(channels_in, channels_out, 1)
        self.conv2 = nn.Sequential(
            nn.BatchNorm1d(channels_in),  # the reference's BatchNorm2d over (B, C, N, K): same stats and keys
            nn.Conv2d(channels_in, channels_out, 1, bias=False),
            nn.BatchNorm1d(channels_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels_out, channels_out, 1, bias=False),
        )
        self.final = nn.Conv1d(2 * channels_out, channels_out, 1, bias=True)

    def forward(self, x: torch.Tensor, neighbors: torch.Tensor) -> torch.Tensor:
        """x (N, C_in), neighbors (N, K) row indices into x → (N, C_out)."""
        x = self.norm(x)
        point_emb = _pointwise(self.conv1, x)
        N, K = neighbors.shape
        rel = (x[neighbors] - x.unsqueeze(1)).reshape(N * K, -1)
        bn_in, conv_a, bn_mid, relu, conv_b = self.conv2
        h = _pointwise(conv_b, relu(bn_mid(_pointwise(conv_a, bn_in(rel)))))
        neigh_emb = h.view(N, K, -1).amax(dim=1)
        return _pointwise(self.final, torch.cat((point_emb, neigh_emb), dim=1))


class ChannelMix(nn.Module):
    """tokens ← tokens + DropPath(LayerScale(1x1(ReLU(1x1(BN(tokens)))))) (``backbone.py`` ``ChannelMix``)."""

    def __init__(self, channels: int, drop_path_prob: float, layer_scale: Optional[float] = None):
        super().__init__()
        self.norm = nn.BatchNorm1d(channels)
        self.mlp = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.ReLU(inplace=True),
                                 nn.Conv1d(channels, channels, 1))
        # LayerScale: a per-channel gain stored as a depthwise 1x1 conv without bias (the reference's ``scale``)
        self.scale = nn.Conv1d(channels, channels, 1, bias=False, groups=channels)
        if layer_scale is not None:
            nn.init.constant_(self.scale.weight, float(layer_scale))
        self.drop_path = DropPath(drop_path_prob)

    def forward(self, tokens: torch.Tensor, batch: torch.Tensor, batch_size: int) -> torch.Tensor:
        h = _pointwise(self.mlp[2], self.mlp[1](_pointwise(self.mlp[0], self.norm(tokens))))
        return tokens + self.drop_path(h * self.scale.weight.view(1, -1), batch, batch_size)


class SpatialMix(nn.Module):
    """tokens ← tokens + DropPath(LayerScale(inflate(DWConv3x3(ReLU(DWConv3x3(flatten(BN(tokens)))))))), flatten =
    mean of the points of each 2-D cell, inflate = each point reads its cell (``backbone.py`` ``SpatialMix``). The
    reference applies LayerScale on the grid before inflating; a per-channel gain commutes with the gather."""

    def __init__(self, channels: int, grid_shape: Tuple[int, int], drop_path_prob: float,
                 layer_scale: Optional[float] = None):
        super().__init__()
        self.grid_shape = tuple(int(g) for g in grid_shape)
        self.norm = nn.BatchNorm1d(channels)
        self.ffn = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
        )
        self.scale = nn.Conv1d(channels, channels, 1, bias=False, groups=channels)
        if layer_scale is not None:
            nn.init.constant_(self.scale.weight, float(layer_scale))
        self.drop_path = DropPath(drop_path_prob)

    def extra_repr(self) -> str:
        return f"(grid): [{self.grid_shape[0]}, {self.grid_shape[1]}]"

    def forward(self, tokens: torch.Tensor, proj: GridProjection, batch: torch.Tensor) -> torch.Tensor:
        grid = self.ffn(scatter_to_grid(self.norm(tokens), proj))
        residual = gather_from_grid(grid, proj) * self.scale.weight.view(1, -1)
        return tokens + self.drop_path(residual, batch, proj.batch_size)


class WaffleIronBackbone(nn.Module):
    """``depth`` x (SpatialMix on grid ``l % len(grids_shape)``, ChannelMix) (``backbone.py`` ``WaffleIron``)."""

    def __init__(self, channels: int, depth: int, grids_shape: Sequence[Tuple[int, int]], drop_path_prob: float,
                 layer_scale: Optional[float] = None):
        super().__init__()
        self.depth = depth
        self.grids_shape = [tuple(g) for g in grids_shape]
        self.channel_mix = nn.ModuleList(
            [ChannelMix(channels, drop_path_prob, layer_scale) for _ in range(depth)])
        self.spatial_mix = nn.ModuleList(
            [SpatialMix(channels, self.grids_shape[d % len(self.grids_shape)], drop_path_prob, layer_scale)
             for d in range(depth)])

    def forward(self, tokens: torch.Tensor, projections: Sequence[GridProjection],
                batch: torch.Tensor) -> torch.Tensor:
        for d, (smix, cmix) in enumerate(zip(self.spatial_mix, self.channel_mix)):
            proj = projections[d % len(projections)]
            tokens = smix(tokens, proj, batch)
            tokens = cmix(tokens, batch, proj.batch_size)
        return tokens


class PreparedBatch(NamedTuple):
    """Inputs of the network for a batch (see :meth:`WaffleIron.prepare`): ``feats`` (M, in_channels) of the M
    points kept over all samples, ``neighbors`` (M, K) rows into feats, ``batch`` (M,) sample of each point,
    ``projections`` one :class:`GridProjection` per plane of ``dim_proj``, ``upsample`` per sample (N_i,) the row of
    feats whose logits each input point takes."""

    feats: torch.Tensor
    neighbors: Optional[torch.Tensor]
    batch: Optional[torch.Tensor]
    projections: List[GridProjection]
    upsample: List[torch.Tensor]


# --------------------------------------------------------------------------------------------------------------
# Segmenter
# --------------------------------------------------------------------------------------------------------------

def _check_args(in_channels, num_classes, width, depth, num_neighbors, grid_shape, fov, drop_path, dim_proj,
                input_feat, out_of_fov):
    def bad(name, msg):
        raise ValueError(f"WaffleIron: {name} {msg}")

    for name, v in (("in_channels", in_channels), ("num_classes", num_classes), ("width", width),
                    ("depth", depth), ("num_neighbors", num_neighbors)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            bad(name, f"must be a positive int, got {v!r}")
    unknown = [f for f in input_feat if f not in INPUT_FEATURES]
    if unknown or not input_feat:
        bad("input_feat", f"must be a non-empty list of {sorted(INPUT_FEATURES)}, got {list(input_feat)!r}")
    n_feat = sum(INPUT_FEATURES[f] for f in input_feat)
    if in_channels != n_feat:
        bad("in_channels", f"is {in_channels} but input_feat {list(input_feat)} builds {n_feat} features")
    try:
        fov_ok = len(fov) == 2 and len(fov[0]) == 3 and len(fov[1]) == 3
    except TypeError:
        fov_ok = False
    if not fov_ok:
        bad("fov", f"must be ((x_min, y_min, z_min), (x_max, y_max, z_max)), got {fov!r}")
    for a in range(3):
        if not float(fov[0][a]) < float(fov[1][a]):
            bad("fov", f"min must be below max on axis {a}, got {fov!r}")
    if len(dim_proj) == 0 or any(d not in PLANE_OF_PROJECTION for d in dim_proj):
        bad("dim_proj", f"must list projection axes among 0, 1, 2, got {dim_proj!r}")
    try:
        shapes_ok = len(grid_shape) == len(dim_proj) and all(
            len(g) == 2 and all(isinstance(s, (int, np.integer)) and s >= 1 for s in g) for g in grid_shape)
    except TypeError:
        shapes_ok = False
    if not shapes_ok:
        bad("grid_shape", f"must hold one (H, W) pair of positive ints per projection of dim_proj "
                          f"{list(dim_proj)} ({len(dim_proj)}), got {grid_shape!r}")
    if not 0.0 <= float(drop_path) <= 1.0:
        bad("drop_path", f"must be in [0, 1], got {drop_path!r}")
    if out_of_fov not in ("nearest", "clamp"):
        bad("out_of_fov", f"must be 'nearest' or 'clamp', got {out_of_fov!r}")


@MODELS.register_module()
class WaffleIron(nn.Module):
    """WaffleIron segmenter on raw point clouds: embedding, backbone, pointwise classifier (``segmenter.py``).

    ``forward(points)``: one float (N_i, C) tensor per sample, columns x, y, z (m, LiDAR frame), intensity (raw,
    0-255 for nuScenes), then any other columns (ignored) → one float (N_i, num_classes) tensor of logits per sample,
    one row per input point in input order. The network's inputs are built from the columns as ``input_feat`` says
    (default intensity, x, y, z, radius = ``in_channels`` 5, as ``configs/WaffleIron-48-384__nuscenes.yaml``), raw,
    normalised only by the embedding's first BatchNorm. Inside forward, without gradients: the crop to ``fov``,
    the ``num_neighbors``-NN of each point (scipy cKDTree on CPU, like the reference's data loader) and its 2-D cell
    on each plane. The samples of a batch are concatenated (BatchNorm statistics over their points; the reference
    zero-pads to the largest cloud and counts the padding in its BatchNorm statistics), each with its own grids.

    Points outside ``fov`` (``out_of_fov``): "nearest" (default, the reference) leaves them out of the network, as
    its ``Crop`` does, and gives them the logits of the nearest point inside, as its validation ``upsample`` does (a
    training loss on those rows is a choice of the caller: the reference drops them in training; see
    :meth:`in_fov`); a cloud with no point inside is run as with "clamp". "clamp" runs every point, each in the
    border cell nearest to it. Voxel thinning (0.1 m) and the 20k-point limit of the reference are data-pipeline
    steps, not done here.

    Args:
        in_channels: number of network input features built from ``input_feat`` (5 for the default).
        num_classes: number of classes (16 on nuScenes; ``classif.nb_class``).
        width: feature channels F (``waffleiron.nb_channels``, 384). depth: number of layers L (48).
        num_neighbors: neighbours of the embedding (``embedding.neighbors``, 16).
        grid_shape: (H, W) of the grid of each projection in ``dim_proj`` (``waffleiron.grids_size``).
        fov: ((x, y, z) min, (x, y, z) max) in m (``waffleiron.fov_xyz``).
        drop_path: stochastic-depth probability of every residual branch (``waffleiron.drop``, 0.2).
        layer_scale: initial value of the LayerScale gains; None (default) keeps the reference's initialisation,
            PyTorch's default for its depthwise 1x1 Conv1d, i.e. U(-1, 1) per channel.
        dim_proj: axis flattened by each projection, cycled over depth (``waffleiron.dim_proj``, [2, 1, 0]: planes
            (x, y), (x, z), (y, z)).
        input_feat: network inputs among "intensity", "xyz", "height", "radius" (``embedding.input_feat``).
        out_of_fov: "nearest" or "clamp", see above.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 384, depth: int = 48,
                 num_neighbors: int = 16,
                 grid_shape: Sequence[Tuple[int, int]] = ((166, 166), (166, 16), (166, 16)),
                 fov: Sequence[Sequence[float]] = ((-50, -50, -5), (50, 50, 5)), drop_path: float = 0.2,
                 layer_scale: Optional[float] = None, dim_proj: Sequence[int] = (2, 1, 0),
                 input_feat: Sequence[str] = ("intensity", "xyz", "radius"), out_of_fov: str = "nearest"):
        super().__init__()
        input_feat = [input_feat] if isinstance(input_feat, str) else list(input_feat)
        dim_proj = list(dim_proj)
        _check_args(in_channels, num_classes, width, depth, num_neighbors, grid_shape, fov, drop_path, dim_proj,
                    input_feat, out_of_fov)
        self.in_channels, self.num_classes, self.width, self.depth = in_channels, num_classes, width, depth
        self.num_neighbors = int(num_neighbors)
        self.grid_shape = [tuple(int(s) for s in g) for g in grid_shape]
        self.fov = (tuple(float(v) for v in fov[0]), tuple(float(v) for v in fov[1]))
        self.dim_proj = dim_proj
        self.planes = [PLANE_OF_PROJECTION[d] for d in dim_proj]
        self.input_feat = input_feat
        self.out_of_fov = out_of_fov
        self.min_columns = 4 if "intensity" in input_feat else 3

        self.embed = Embedding(in_channels, width)
        self.waffleiron = WaffleIronBackbone(width, depth, self.grid_shape, drop_path, layer_scale)
        self.classif = nn.Conv1d(width, num_classes, 1)

    def in_fov(self, points: torch.Tensor) -> torch.Tensor:
        """(N,) bool: the points of a cloud that the reference keeps (its ``Crop``) and the network sees."""
        return in_fov_mask(points[:, :3], self.fov)

    def _check_points(self, points):
        if isinstance(points, torch.Tensor) or not isinstance(points, (list, tuple)) or len(points) == 0:
            raise ValueError("WaffleIron.forward: points must be a non-empty list with one (N_i, C) tensor per "
                             "sample")
        for i, p in enumerate(points):
            if not isinstance(p, torch.Tensor) or p.dim() != 2:
                raise ValueError(f"WaffleIron.forward: points[{i}] must be a 2-D (N, C) tensor")
            if p.shape[1] < self.min_columns:
                raise ValueError(
                    f"WaffleIron.forward: points[{i}] has {p.shape[1]} columns; input_feat {self.input_feat} "
                    f"needs at least {self.min_columns} (x, y, z{', intensity' if self.min_columns == 4 else ''})")

    def prepare(self, points: List[torch.Tensor]) -> "PreparedBatch":
        """The network's inputs for a batch of raw clouds (what the reference's data loader and ``Collate`` build):
        the points kept (see ``out_of_fov``) concatenated over samples, their features, neighbours, samples and
        projections, and for every input point the row of the kept point whose logits it takes."""
        self._check_points(points)
        device = self.classif.weight.device
        points = [p.to(device=device, dtype=self.classif.weight.dtype) for p in points]
        kept, upsample, neighbors, batch, cells = [], [], [], [], [[] for _ in self.planes]
        offset = 0
        with torch.no_grad():
            for b, pts in enumerate(points):
                n = pts.shape[0]
                keep = self.in_fov(pts) if self.out_of_fov == "nearest" else None
                if keep is None or not bool(keep.any()) or bool(keep.all()):
                    keep_idx = torch.arange(n, device=device)
                    up = keep_idx
                else:
                    keep_idx = keep.nonzero().squeeze(1)
                    # the reference's validation ``upsample``: an original point takes its nearest kept point
                    up = torch.empty(n, dtype=torch.long, device=device)
                    up[keep_idx] = torch.arange(keep_idx.numel(), device=device)
                    out_idx = (~keep).nonzero().squeeze(1)
                    tree = cKDTree(pts[keep_idx, :3].double().cpu().numpy())
                    _, nn_idx = tree.query(pts[out_idx, :3].double().cpu().numpy(), k=1)
                    up[out_idx] = torch.as_tensor(np.asarray(nn_idx, dtype=np.int64), device=device)
                m = keep_idx.numel()
                kept.append(keep_idx)
                upsample.append(up + offset)
                if m:
                    xyz = pts[keep_idx, :3]
                    neighbors.append(knn_indices(xyz, self.num_neighbors) + offset)
                    for c, plane, shape in zip(cells, self.planes, self.grid_shape):
                        c.append(grid_cell_index(xyz, self.fov, plane, shape))
                    batch.append(torch.full((m,), b, dtype=torch.long, device=device))
                offset += m
            if offset:
                neighbors, batch = torch.cat(neighbors), torch.cat(batch)
                projections = [make_projection(torch.cat(c), batch, len(points), shape)
                               for c, shape in zip(cells, self.grid_shape)]
            else:
                neighbors, batch, projections = None, None, []
        feats = build_input_features(torch.cat([p[k] for p, k in zip(points, kept)]), self.input_feat)
        return PreparedBatch(feats, neighbors, batch, projections, upsample)

    def forward(self, points: List[torch.Tensor]) -> List[torch.Tensor]:
        prep = self.prepare(points)
        if prep.feats.shape[0] == 0:
            return [prep.feats.new_zeros((up.numel(), self.num_classes)) for up in prep.upsample]
        tokens = self.embed(prep.feats, prep.neighbors)
        tokens = self.waffleiron(tokens, prep.projections, prep.batch)
        logits = _pointwise(self.classif, tokens)
        return [logits[up] for up in prep.upsample]
