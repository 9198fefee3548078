"""Sparse convolution on the CPU: kernel maps hashed in numba, gathers and large matrix multiplies in torch.

spconv's CPU path (``ConvAlgo.Native``) loops over the kernel offsets: per offset one single-threaded gather,
one small ``torch.mm`` and one scatter-add. Here a layer is, per :class:`Slab` of its kernel map,

    out[rows] += gather(features, slab.index) @ weight[:, slab.taps].view(C_out, taps·C_in)ᵀ

``out_map`` (N_out, K) holds, for each output voxel and kernel offset, the input row that feeds it, or N_in for
none (gathered as zeros). A slab is a set of offsets (a plane of the kernel, or the offsets of one occupancy
pattern) and the rows that have a neighbour there; the gathered (rows, taps·C_in) block goes through the BLAS
at full width, in row chunks of about 2 MiB that stay in the caches; there is no scatter anywhere. The backward
pass has the same shape: the input gradient gathers the output gradient through ``in_map`` (N_in, K; for a
submanifold convolution the mirror of ``out_map``), the weight gradient multiplies the output gradient by the
re-gathered inputs. Maps are built once per ``indice_key`` and reused by every layer sharing it, as spconv
reuses its rulebooks.

Conventions are spconv's (checked against it in ``tests/test_sparse_conv.py``): indices (N, 1+D) int32 rows
(batch, d0, .., dD-1) on ``spatial_shape``; weight (C_out, k0, .., kD-1, C_in) (spconv's KRSC); output voxel o
receives input voxel o·stride − padding + k·dilation through kernel offset k (row-major over the kernel dims);
output spatial size (in + 2·padding − dilation·(k − 1) − 1) // stride + 1.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import numba
import numpy as np
import torch
from numba import prange

from ._hash import EMPTY, find_or_slot, table_size

# rows of gathered features per matrix multiply: keeps the gathered block near 2 MiB, inside the cores' caches
# (measured: 2× faster than 16 MiB blocks at 16 channels, the same at 128)
CHUNK_BYTES = 2 << 20
# most offset patterns a map's rows may have for one matrix multiply per pattern (see cut_slabs)
MAX_PATTERNS = 32
# a kernel-plane slab less full than this is cut into one slab per offset (measured on MinkUNet-tiny's sparse
# 0.2 m voxels, slabs 40 % full: a training step 694 → 413 ms; neutral on the nuScenes VoxelNeXt config)
MIN_FILL = 0.5


@numba.njit(cache=True, parallel=True)
def _voxel_keys(indices, shape):
    """(N, 1+D) indices → (N,) int64 keys, batch-major row-major over ``shape``."""
    n = indices.shape[0]
    keys = np.empty(n, dtype=np.int64)
    for i in prange(n):
        key = np.int64(indices[i, 0])
        for d in range(shape.shape[0]):
            key = key * shape[d] + indices[i, d + 1]
        keys[i] = key
    return keys


@numba.njit(cache=True)
def _insert_all(keys, table_keys, table_rows):
    """Inserts every key with its row; returns the first row whose key was already there, or -1."""
    for i in range(keys.shape[0]):
        s = find_or_slot(table_keys, keys[i])
        if table_keys[s] != EMPTY:
            return i
        table_keys[s] = keys[i]
        table_rows[s] = i
    return -1


@numba.njit(cache=True, parallel=True)
def _submanifold_map(indices, shape, offsets, table_keys, table_rows, missing):
    """out_map (N, K): row of the voxel at indices[i] + offsets[k], ``missing`` where there is none."""
    n = indices.shape[0]
    n_k = offsets.shape[0]
    dims = shape.shape[0]
    out = np.empty((n, n_k), dtype=np.int32)
    for i in prange(n):
        for k in range(n_k):
            key = np.int64(indices[i, 0])
            inside = True
            for d in range(dims):
                c = indices[i, d + 1] + offsets[k, d]
                if c < 0 or c >= shape[d]:
                    inside = False
                    break
                key = key * shape[d] + c
            row = missing
            if inside:
                s = find_or_slot(table_keys, key)
                if table_keys[s] != EMPTY:
                    row = table_rows[s]
            out[i, k] = row
    return out


@numba.njit(cache=True, parallel=True)
def _strided_candidates(indices, out_shape, kernel, dilation, stride, padding):
    """(N_in, K) keys of the output voxel each input feeds through each kernel offset (-1: none): the output o
    with o·stride − padding + k·dilation = input, inside ``out_shape``. Per dimension only the taps that divide
    evenly are enumerated (1 or 2 of 3 for stride 2), then their combinations."""
    n = indices.shape[0]
    dims = out_shape.shape[0]
    n_k = 1
    for d in range(dims):
        n_k *= kernel[d]
    cand = np.full((n, n_k), -1, dtype=np.int64)
    block = 1024
    for first in prange((n + block - 1) // block):
        taps = np.empty((dims, kernel.max()), dtype=np.int64)  # the valid taps of each dim
        outs = np.empty((dims, kernel.max()), dtype=np.int64)  # their output coordinates
        counts = np.empty(dims, dtype=np.int64)
        picks = np.empty(dims, dtype=np.int64)
        for i in range(first * block, min(n, (first + 1) * block)):
            total = 1
            for d in range(dims):
                counts[d] = 0
                for t in range(kernel[d]):
                    v = indices[i, d + 1] + padding[d] - t * dilation[d]
                    if v >= 0 and v % stride[d] == 0 and v // stride[d] < out_shape[d]:
                        taps[d, counts[d]] = t
                        outs[d, counts[d]] = v // stride[d]
                        counts[d] += 1
                total *= counts[d]
            for c in range(total):  # every combination of valid taps: its offset index and output key
                rest = c
                for d in range(dims - 1, -1, -1):
                    picks[d] = rest % counts[d]
                    rest //= counts[d]
                k = 0
                key = np.int64(indices[i, 0])
                for d in range(dims):
                    k = k * kernel[d] + taps[d, picks[d]]
                    key = key * out_shape[d] + outs[d, picks[d]]
                cand[i, k] = key
    return cand


@numba.njit(cache=True)
def _number_outputs(cand, table_keys, table_rows):
    """Numbers the distinct candidate keys in order of first appearance. Returns (in_map with output rows and
    -1, keys of the outputs), or an empty in_map when the table gets over half full (retry with a larger one)."""
    n, n_k = cand.shape
    limit = table_keys.shape[0] // 2
    in_map = np.full((n, n_k), -1, dtype=np.int32)
    out_keys = np.empty(limit, dtype=np.int64)
    n_out = 0
    for i in range(n):
        for k in range(n_k):
            key = cand[i, k]
            if key < 0:
                continue
            s = find_or_slot(table_keys, key)
            if table_keys[s] == EMPTY:
                if n_out == limit:
                    return in_map[:0], out_keys[:0]
                table_keys[s] = key
                table_rows[s] = n_out
                out_keys[n_out] = key
                n_out += 1
            in_map[i, k] = table_rows[s]
    return in_map, out_keys[:n_out]


@numba.njit(cache=True, parallel=True)
def _transpose_map(in_map, n_out, missing_in, missing_out):
    """in_map (N_in, K) with -1 → (out_map (N_out, K) with ``missing_in``, in_map with ``missing_out``). Each
    (output, offset) has at most one input, so the parallel writes never collide."""
    n, n_k = in_map.shape
    out_map = np.full((n_out, n_k), missing_in, dtype=np.int32)
    for i in prange(n):
        for k in range(n_k):
            o = in_map[i, k]
            if o >= 0:
                out_map[o, k] = i
            else:
                in_map[i, k] = missing_out
    return out_map


@numba.njit(cache=True, parallel=True)
def _decode_keys(keys, shape):
    """(N,) keys → (N, 1+D) int32 indices."""
    n = keys.shape[0]
    dims = shape.shape[0]
    out = np.empty((n, dims + 1), dtype=np.int32)
    for i in prange(n):
        key = keys[i]
        for d in range(dims - 1, -1, -1):
            out[i, d + 1] = key % shape[d]
            key //= shape[d]
        out[i, 0] = key
    return out


@numba.njit(cache=True)
def _pairs_by_offset(index, taps_start, taps_stop, missing):
    """The (row, source) pairs of offsets taps_start..taps_stop-1 of ``index``, grouped by offset: (starts
    (n_taps + 1,), rows, sources), rows ascending within each offset."""
    m = index.shape[0]
    n_taps = taps_stop - taps_start
    starts = np.zeros(n_taps + 1, dtype=np.int64)
    for i in range(m):
        for t in range(n_taps):
            if index[i, taps_start + t] < missing:
                starts[t + 1] += 1
    for t in range(n_taps):
        starts[t + 1] += starts[t]
    rows = np.empty(starts[n_taps], dtype=np.int64)
    sources = np.empty((starts[n_taps], 1), dtype=np.int32)
    fill = starts[:n_taps].copy()
    for i in range(m):
        for t in range(n_taps):
            j = index[i, taps_start + t]
            if j < missing:
                rows[fill[t]] = i
                sources[fill[t], 0] = j
                fill[t] += 1
    return starts, rows, sources


@numba.njit(cache=True, parallel=True)
def _add_rows(out, rows, part):
    """out[rows[i]] += part[i]; ``rows`` holds each row once, so the parallel adds never collide."""
    c = out.shape[1]
    for i in prange(rows.shape[0]):
        r = rows[i]
        for t in range(c):
            out[r, t] += part[i, t]


@dataclass
class KernelMap:
    """Which input row feeds which output row through which kernel offset, for one layer geometry.

    ``out_map`` (N_out, K) int32: input row per output row and offset, N_in where none. ``in_map`` (N_in, K)
    int32: output row per input row and offset, N_out where none (made on first use for a submanifold map: the
    mirror of ``out_map``)."""
    out_map: torch.Tensor
    in_indices: torch.Tensor
    out_indices: torch.Tensor
    in_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]
    kernel_size: Tuple[int, ...]
    subm: bool
    _in_map: Optional[torch.Tensor] = field(default=None, repr=False)
    # slabs by the direction of the map it was made from; an inverse shares its map's, directions swapped
    _slabs: dict = field(default_factory=dict, repr=False)
    _swapped: bool = False

    @property
    def in_map(self) -> torch.Tensor:
        if self._in_map is None:  # submanifold: j feeds i through k ⇔ i feeds j through the mirrored offset
            self._in_map = self.out_map.flip(1).contiguous()
        return self._in_map

    def slabs(self, direction: str) -> List["Slab"]:
        """``out_map`` ("out") or ``in_map`` ("in") cut into the :class:`Slab`\ s of :func:`cut_slabs` (cached)."""
        key = {"out": "in", "in": "out"}[direction] if self._swapped else direction
        if key not in self._slabs:
            index = self.out_map if direction == "out" else self.in_map
            missing = len(self.in_indices) if direction == "out" else len(self.out_indices)
            self._slabs[key] = cut_slabs(index, self.kernel_size[0], missing, patterns=not self.subm)
        return self._slabs[key]

    def inverse(self) -> "KernelMap":
        """The map of the inverse convolution: from this map's outputs back to its inputs (sharing the slabs
        either has cut)."""
        return KernelMap(self.in_map, self.out_indices, self.in_indices, self.out_shape, self.in_shape,
                         self.kernel_size, self.subm, self.out_map, self._slabs, not self._swapped)


@dataclass
class Slab:
    """The offsets ``taps`` (a slice or an int64 list of the kernel's offsets) of a map, for the rows ``rows``
    (int64, None: all) that have a neighbour there: ``index`` (len(rows), len(taps)), the map's rows and
    columns."""
    rows: Optional[torch.Tensor]
    taps: Union[slice, torch.Tensor]
    index: torch.Tensor


def cut_slabs(index: torch.Tensor, n_slabs: int, missing: int, patterns: bool = True) -> List[Slab]:
    """``index`` (M, K) with ``missing`` for "none" → the :class:`Slab`\ s its matrix multiplies run over, so
    that they multiply few zeros:

    - where the rows have at most MAX_PATTERNS patterns of present offsets (a strided convolution's inputs: the
      parity of a voxel's coordinates fixes which offsets it feeds), one slab per pattern, zeros-free;
    - otherwise ``n_slabs`` slabs of K / n_slabs offsets (the first kernel dim), each keeping only the rows with
      a neighbour in it: a road voxel has none above or below it; a slab still less than MIN_FILL full becomes one
      slab per offset (spconv's way, zero-free, smaller multiplies). (Cutting such a slab along the next kernel
      dim instead was measured on the nuScenes config: no faster.)

    ``patterns``: look for few patterns at all (never the case for a submanifold map)."""
    valid = index < missing
    n_k = index.shape[1]
    if patterns and n_k < 63:
        codes = (valid.long() << torch.arange(n_k)).sum(1)
        seen, which = torch.unique(codes, return_inverse=True)  # the patterns present, and each row's
        if len(seen) <= MAX_PATTERNS:
            slabs = []
            for p, code in enumerate(seen.tolist()):
                if code == 0:
                    continue
                rows = (which == p).nonzero().squeeze(1)
                taps = torch.tensor([k for k in range(n_k) if code >> k & 1])
                every = len(rows) == len(index)
                slabs.append(Slab(None if every else rows, taps, index[rows][:, taps].contiguous()))
            return slabs
    per = n_k // n_slabs
    slabs = []
    for s in range(n_slabs):
        taps = slice(s * per, (s + 1) * per)
        block = index[:, taps]
        present = valid[:, taps].any(1)
        n_rows = int(present.sum())
        if n_rows == 0:
            continue
        if per > 1 and int(valid[:, taps].sum()) < MIN_FILL * n_rows * per:
            # too sparse for a slab: one zero-free multiply per offset, as spconv does
            starts, rows, sources = _pairs_by_offset(index.numpy(), taps.start, taps.stop, missing)
            for t in range(per):
                a, b = int(starts[t]), int(starts[t + 1])
                if b > a:
                    slabs.append(Slab(torch.from_numpy(rows[a:b]), slice(taps.start + t, taps.start + t + 1),
                                      torch.from_numpy(sources[a:b])))
        elif n_rows == len(index):
            slabs.append(Slab(None, taps, block.contiguous()))
        else:
            rows = present.nonzero().squeeze(1)
            slabs.append(Slab(rows, taps, block[rows].contiguous()))
    return slabs


def _kernel_taps(kernel_size: Sequence[int], dilation: Sequence[int]) -> np.ndarray:
    """(K, D) int64 offsets k·dilation, row-major over the kernel dims (the order of spconv's weight)."""
    return np.array(list(itertools.product(*[range(k) for k in kernel_size])), dtype=np.int64).reshape(
        -1, len(kernel_size)) * np.asarray(dilation, dtype=np.int64)


def output_shape(shape: Sequence[int], kernel_size, stride, padding, dilation) -> Tuple[int, ...]:
    """spconv's ``get_conv_output_size``: (in + 2·padding − dilation·(k − 1) − 1) // stride + 1 per dim."""
    return tuple((s + 2 * p - d * (k - 1) - 1) // st + 1
                 for s, k, st, p, d in zip(shape, kernel_size, stride, padding, dilation))


def _hash_table(size_for: int) -> Tuple[np.ndarray, np.ndarray]:
    """An empty table (keys, rows) for ``size_for`` keys."""
    n_slots = table_size(size_for)
    return np.full(n_slots, EMPTY, dtype=np.int64), np.empty(n_slots, dtype=np.int64)


def check_indices(indices: torch.Tensor, shape: Sequence[int], batch_size: int, n_features: int) -> None:
    """ValueError unless ``indices`` is (N, 1+D) int32, inside [0, batch_size) × ``shape``, with one row per
    feature row."""
    if indices.dtype != torch.int32:
        raise ValueError(f"sparse tensor indices must be int32, got {indices.dtype}")
    if indices.dim() != 2 or indices.shape[1] != len(shape) + 1:
        raise ValueError(f"sparse tensor indices must have shape (N, {len(shape) + 1}) (batch, then "
                         f"{len(shape)} spatial indices), got {tuple(indices.shape)}")
    if indices.shape[0] != n_features:
        raise ValueError(f"sparse tensor has {n_features} feature rows but {indices.shape[0]} index rows")
    if indices.shape[0] == 0:
        return
    low = indices.min(0).values
    high = indices.max(0).values
    if int(low.min()) < 0:
        raise ValueError(f"sparse tensor indices must be >= 0, got a minimum of {low.tolist()} (batch, spatial)")
    limits = [batch_size, *shape]
    if any(int(h) >= lim for h, lim in zip(high.tolist(), limits)):
        raise ValueError(f"sparse tensor indices outside the batch size and spatial shape {limits}: "
                         f"maximum {high.tolist()}")


def build_kernel_map(indices: torch.Tensor, shape: Sequence[int], batch_size: int, kernel_size: Sequence[int],
                     stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int],
                     subm: bool) -> KernelMap:
    """The kernel map of a convolution over the voxels ``indices`` (N, 1+D) int32 on ``shape``. Submanifold:
    outputs are the inputs, output i sees input indices[i] + (k − kernel_size // 2)·dilation. Otherwise: the
    outputs are every voxel of the output grid that some input reaches, numbered in order of first appearance."""
    idx = indices.cpu().numpy()
    grid = np.asarray(shape, dtype=np.int64)
    taps = _kernel_taps(kernel_size, dilation)
    n = len(idx)
    if subm:
        keys = _voxel_keys(idx, grid)
        table_keys, table_rows = _hash_table(n)
        duplicate = _insert_all(keys, table_keys, table_rows)
        if duplicate >= 0:
            raise ValueError(f"sparse tensor indices hold voxel {idx[duplicate].tolist()} more than once")
        centre = (np.asarray(kernel_size, dtype=np.int64) // 2) * np.asarray(dilation, dtype=np.int64)
        out_map = _submanifold_map(idx, grid, taps - centre, table_keys, table_rows, n)
        return KernelMap(torch.from_numpy(out_map), indices, indices, tuple(shape), tuple(shape),
                         tuple(kernel_size), True)
    out_shape = output_shape(shape, kernel_size, stride, padding, dilation)
    out_grid = np.asarray(out_shape, dtype=np.int64)
    cand = _strided_candidates(idx, out_grid, *(np.asarray(v, dtype=np.int64) for v in (kernel_size, dilation,
                                                                                         stride, padding)))
    expected = 2 * n  # outputs per input: < 1 for stride 2, up to K for a stride-1 convolution of scattered voxels
    while True:
        table_keys, table_rows = _hash_table(expected)
        in_map, out_keys = _number_outputs(cand, table_keys, table_rows)
        if len(in_map) == n:
            break
        expected *= 4
    out_map = _transpose_map(in_map, len(out_keys), n, len(out_keys))
    out_indices = torch.from_numpy(_decode_keys(out_keys, out_grid)).to(indices.device)
    return KernelMap(torch.from_numpy(out_map), indices, out_indices, tuple(shape), out_shape,
                     tuple(kernel_size), False, torch.from_numpy(in_map))


@numba.njit(cache=True, parallel=True)
def _gather_rows(source, index, out):
    """out[i, k·C:(k+1)·C] = source[index[i, k]], zeros where index[i, k] >= len(source)."""
    m, n_k = index.shape
    n, c = source.shape
    for i in prange(m):
        for k in range(n_k):
            r = index[i, k]
            if r < n:
                for t in range(c):
                    out[i, k * c + t] = source[r, t]
            else:
                for t in range(c):
                    out[i, k * c + t] = 0


def _gathered_blocks(source: torch.Tensor, index: torch.Tensor):
    """Yields (row slice, gathered (rows, K·C) block) over ``index`` (M, K) in chunks of about CHUNK_BYTES; the
    block's memory is reused from one chunk to the next."""
    m, n_k = index.shape
    src = source.detach().contiguous().numpy()
    idx = index.numpy()
    rows = max(64, CHUNK_BYTES // max(1, n_k * source.shape[1] * source.element_size()))
    buffer = torch.empty(min(rows, m), n_k * source.shape[1], dtype=source.dtype)
    for start in range(0, m, rows):
        stop = min(start + rows, m)
        block = buffer[:stop - start]
        _gather_rows(src, idx[start:stop], block.numpy())
        yield slice(start, stop), block


def _gather_mm(source: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Σ_k source[index[i, k]] @ weight_k for every row i: source (N, C), index (M, K) int32 with N for "none",
    weight (K·C, C_out) → (M, C_out). One gather and one matrix multiply per chunk of rows."""
    out = source.new_empty(index.shape[0], weight.shape[1])
    for rows, gathered in _gathered_blocks(source, index):
        torch.mm(gathered, weight, out=out[rows])
    return out


def _gather_t_mm(grad: torch.Tensor, source: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Σ_i grad[i]ᵀ ⊗ gathered source row i: grad (M, C_out), source (N, C), index (M, K) → (C_out, K·C)."""
    out = grad.new_zeros(grad.shape[1], index.shape[1] * source.shape[1])
    for rows, gathered in _gathered_blocks(source, index):
        out.addmm_(grad[rows].t(), gathered)
    return out


def _slab_conv(source: torch.Tensor, slabs: List[Slab], weight: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Σ over slabs of the slab's gathered ``source`` rows times its offsets' weights: source (N, C), weight
    (C_out, K, C) → (n_rows, C_out)."""
    c_out = weight.shape[0]
    out = source.new_zeros(n_rows, c_out)
    for slab in slabs:
        w = weight[:, slab.taps].reshape(c_out, -1).t()
        part = _gather_mm(source, slab.index, w)
        if slab.rows is None:
            out += part
        else:
            _add_rows(out.numpy(), slab.rows.numpy(), part.numpy())
    return out


class _GatherConv(torch.autograd.Function):
    """features (N_in, C_in), weight (C_out, K, C_in) → (N_out, C_out) through a KernelMap."""

    @staticmethod
    def forward(ctx, features, weight, kmap: KernelMap):
        ctx.save_for_backward(features, weight)
        ctx.kmap = kmap
        return _slab_conv(features, kmap.slabs("out"), weight, len(kmap.out_indices))

    @staticmethod
    def backward(ctx, grad_out):
        features, weight = ctx.saved_tensors
        kmap = ctx.kmap
        c_out, n_k, c_in = weight.shape
        grad_out = grad_out.contiguous()
        grad_features = grad_weight = None
        if ctx.needs_input_grad[0]:
            # input j receives Σ_k W_kᵀ grad_out[in_map[j, k]]: the same computation with W (K, C_out, C_in)
            grad_features = _slab_conv(grad_out, kmap.slabs("in"), weight.permute(2, 1, 0), len(features))
        if ctx.needs_input_grad[1]:
            grad_weight = weight.new_zeros(c_out, n_k, c_in)
            for slab in kmap.slabs("out"):
                grad = grad_out if slab.rows is None else grad_out.index_select(0, slab.rows)
                grad_weight[:, slab.taps] += _gather_t_mm(grad, features, slab.index).view(c_out, -1, c_in)
        return grad_features, grad_weight, None


def gather_conv(features: torch.Tensor, weight: torch.Tensor, kmap: KernelMap) -> torch.Tensor:
    """The convolution of ``features`` (N_in, C_in) with ``weight`` (C_out, *kernel, C_in) over ``kmap`` →
    (N_out, C_out), differentiable in both."""
    c_out, c_in = weight.shape[0], weight.shape[-1]
    return _GatherConv.apply(features.contiguous(), weight.reshape(c_out, -1, c_in), kmap)
