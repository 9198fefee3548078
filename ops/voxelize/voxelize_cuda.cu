// Hard and dynamic voxelization on CUDA, twin of perception3d/ops/voxelize.py. Voxel keys come from one
// kernel (float arithmetic exactly as spconv's PointToVoxel and the numba twin); voxels are numbered in the
// order of their first point with a sort (no dense grid table, no hash), so the result is deterministic and
// equal to the CPU path.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

#include <limits>
#include <tuple>

namespace {

template <typename T>
__global__ void voxel_keys_kernel(const T* __restrict__ points, int64_t n, int64_t stride, T vz, T vy, T vx, T lz,
                                  T ly, T lx, int64_t gz, int64_t gy, int64_t gx, int64_t* __restrict__ keys,
                                  int32_t* __restrict__ zyx) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= n) return;
  const T* p = points + i * stride;
  // (p - min) / size in the points' precision, then floor: no fused multiply-add can apply here
  const int64_t cz = (int64_t)floor((p[2] - lz) / vz);
  const int64_t cy = (int64_t)floor((p[1] - ly) / vy);
  const int64_t cx = (int64_t)floor((p[0] - lx) / vx);
  zyx[i * 3 + 0] = (int32_t)cz;
  zyx[i * 3 + 1] = (int32_t)cy;
  zyx[i * 3 + 2] = (int32_t)cx;
  const bool inside = cz >= 0 && cz < gz && cy >= 0 && cy < gy && cx >= 0 && cx < gx;
  keys[i] = inside ? (cz * gy + cy) * gx + cx : -1;
}

template <typename T>
__global__ void fill_voxels_kernel(const T* __restrict__ points, int64_t stride, const int64_t* __restrict__ order,
                                   const int64_t* __restrict__ slot, const int64_t* __restrict__ point_voxel,
                                   int64_t n, int64_t max_points, T* __restrict__ voxels) {
  const int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (k >= n) return;
  const int64_t i = order[k];
  const int64_t v = point_voxel[i];
  if (v < 0 || slot[k] >= max_points) return;
  T* out = voxels + (v * max_points + slot[k]) * stride;
  for (int64_t c = 0; c < stride; ++c) out[c] = points[i * stride + c];
}

constexpr int kThreads = 256;

int blocks_for(int64_t n) { return (int)((n + kThreads - 1) / kThreads); }

// Keys of the points, and every point's voxel in first-seen order (-1 outside or beyond max_voxels).
std::tuple<at::Tensor, at::Tensor, at::Tensor> assign_voxels(const at::Tensor& points, const at::Tensor& vs,
                                                             const at::Tensor& lo, const at::Tensor& grid,
                                                             int64_t max_voxels) {
  const int64_t n = points.size(0);
  auto keys = at::empty({n}, points.options().dtype(at::kLong));
  auto zyx = at::empty({n, 3}, points.options().dtype(at::kInt));
  auto g = grid.to(at::kCPU, at::kLong);
  auto g_ = g.accessor<int64_t, 1>();
  auto stream = c10::cuda::getCurrentCUDAStream();
  if (n > 0) {
    AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "voxel_keys", [&] {
      auto v = vs.to(at::kCPU, points.scalar_type());
      auto l = lo.to(at::kCPU, points.scalar_type());
      auto v_ = v.accessor<scalar_t, 1>();
      auto l_ = l.accessor<scalar_t, 1>();
      voxel_keys_kernel<scalar_t><<<blocks_for(n), kThreads, 0, stream>>>(
          points.data_ptr<scalar_t>(), n, points.size(1), v_[0], v_[1], v_[2], l_[0], l_[1], l_[2], g_[0], g_[1],
          g_[2], keys.data_ptr<int64_t>(), zyx.data_ptr<int32_t>());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  auto inside = keys.ge(0);
  auto rows = at::nonzero(inside).squeeze(1);
  auto point_voxel = at::full({n}, -1, keys.options());
  if (rows.numel() == 0) return {point_voxel, at::empty({0, 3}, zyx.options()), rows};
  at::Tensor unique_keys, inverse;
  std::tie(unique_keys, inverse, std::ignore) = at::_unique2(keys.index({rows}), true, true, false);
  const int64_t m = unique_keys.numel();
  // first point of each voxel, then voxels ranked by it
  auto first = at::full({m}, n, keys.options()).scatter_reduce_(0, inverse, rows, "amin", true);
  auto by_first = std::get<1>(at::sort(first, /*stable=*/true, 0, false));
  auto rank = at::empty_like(by_first).scatter_(0, by_first, at::arange(m, by_first.options()));
  auto voxel_of_row = rank.index({inverse});
  auto kept = voxel_of_row.lt(max_voxels);
  point_voxel.index_put_({rows}, at::where(kept, voxel_of_row, at::full_like(voxel_of_row, -1)));
  const int64_t n_voxels = std::min<int64_t>(m, max_voxels);
  auto coords = zyx.index({first.index({by_first.slice(0, 0, n_voxels)})});
  return {point_voxel, coords, rows};
}

}  // namespace

std::vector<at::Tensor> voxelize_hard_cuda(const at::Tensor& points, const at::Tensor& vs, const at::Tensor& lo,
                                           const at::Tensor& grid, int64_t max_points, int64_t max_voxels) {
  TORCH_CHECK(points.is_cuda() && points.dim() == 2 && points.size(1) >= 3, "points must be a CUDA (N, C>=3) tensor");
  const c10::cuda::CUDAGuard guard(points.device());
  auto pts = points.contiguous();
  at::Tensor point_voxel, coords;  // not structured bindings: the dispatch lambda below captures them
  std::tie(point_voxel, coords, std::ignore) = assign_voxels(pts, vs, lo, grid, max_voxels);
  const int64_t m = coords.size(0), n = pts.size(0), c = pts.size(1);
  auto voxels = at::zeros({m, max_points, c}, pts.options());
  auto counts = at::zeros({m}, pts.options().dtype(at::kInt));
  if (m == 0) return {voxels, coords, counts, point_voxel};
  // points grouped by voxel, arrival order kept inside a group; slot = place in the group
  auto order = std::get<1>(at::sort(point_voxel, /*stable=*/true, 0, false));
  auto sorted_voxel = point_voxel.index({order});
  auto group_start = at::searchsorted(sorted_voxel, sorted_voxel, /*out_int32=*/false, /*right=*/false);
  auto slot = at::arange(n, order.options()) - group_start;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(pts.scalar_type(), "fill_voxels", [&] {
    fill_voxels_kernel<scalar_t><<<blocks_for(n), kThreads, 0, stream>>>(
        pts.data_ptr<scalar_t>(), c, order.data_ptr<int64_t>(), slot.data_ptr<int64_t>(),
        point_voxel.data_ptr<int64_t>(), n, max_points, voxels.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  auto valid = point_voxel.ge(0);
  auto per_voxel = at::zeros({m}, point_voxel.options()).index_add_(0, point_voxel.index({valid}),
                                                                    at::ones_like(point_voxel.index({valid})));
  counts.copy_(per_voxel.clamp_max(max_points));
  return {voxels, coords, counts, point_voxel};
}

std::vector<at::Tensor> voxelize_dynamic_cuda(const at::Tensor& points, const at::Tensor& vs, const at::Tensor& lo,
                                              const at::Tensor& grid) {
  TORCH_CHECK(points.is_cuda() && points.dim() == 2 && points.size(1) >= 3, "points must be a CUDA (N, C>=3) tensor");
  const c10::cuda::CUDAGuard guard(points.device());
  at::Tensor point_voxel, coords;
  std::tie(point_voxel, coords, std::ignore) = assign_voxels(points.contiguous(), vs, lo, grid,
                                                             std::numeric_limits<int64_t>::max());
  return {point_voxel, coords};
}
