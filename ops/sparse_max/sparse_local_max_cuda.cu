// Submanifold local maximum on CUDA, twin of perception3d/ops/sparse_max.py. Coordinates become linear keys,
// sorted once; each entry binary-searches its window's neighbours among them (no hash, deterministic).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

namespace {

constexpr int kMaxDims = 4;  // batch + up to 3 spatial dimensions

__device__ inline int64_t find_key(const int64_t* sorted, int64_t n, int64_t key) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (sorted[mid] < key) lo = mid + 1; else hi = mid;
  }
  return (lo < n && sorted[lo] == key) ? lo : -1;
}

__global__ void local_max_kernel(const int64_t* __restrict__ coords, int64_t m, int dims,
                                 const int64_t* __restrict__ offsets, int64_t n_offsets,
                                 const int64_t* __restrict__ low, const int64_t* __restrict__ extent,
                                 const int64_t* __restrict__ sorted_keys, const int64_t* __restrict__ sorted_rows,
                                 const float* __restrict__ scores, int64_t k, bool* __restrict__ mask) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= m) return;
  for (int64_t o = 0; o < n_offsets; ++o) {
    int64_t key = 0;
    bool inside = true;
    for (int d = 0; d < dims; ++d) {
      const int64_t c = coords[i * dims + d] + offsets[o * dims + d];
      inside = inside && c >= low[d] && c < low[d] + extent[d];
      key = key * extent[d] + (c - low[d]);
    }
    if (!inside) continue;
    const int64_t at_ = find_key(sorted_keys, m, key);
    if (at_ < 0) continue;
    const int64_t j = sorted_rows[at_];
    for (int64_t c = 0; c < k; ++c) {
      if (scores[j * k + c] > scores[i * k + c]) mask[i * k + c] = false;
    }
  }
}

}  // namespace

at::Tensor sparse_local_max_cuda(const at::Tensor& coords, const at::Tensor& scores, const at::Tensor& offsets) {
  TORCH_CHECK(coords.is_cuda() && scores.is_cuda() && offsets.is_cuda(), "coords, scores, offsets must be on CUDA");
  TORCH_CHECK(coords.size(1) <= kMaxDims, "at most 3 spatial dimensions");
  const c10::cuda::CUDAGuard guard(coords.device());
  auto c = coords.to(at::kLong).contiguous();
  auto s = scores.to(at::kFloat).contiguous();
  auto off = offsets.to(at::kLong).contiguous();
  const int64_t m = c.size(0), dims = c.size(1);
  auto low = std::get<0>(c.min(0)).contiguous();
  auto extent = (std::get<0>(c.max(0)) - low + 1).contiguous();
  // linear keys, row-major over (batch, spatial...)
  auto strides = at::ones({dims}, c.options());
  for (int64_t d = dims - 2; d >= 0; --d) strides[d] = strides[d + 1] * extent[d + 1];
  auto keys = ((c - low) * strides).sum(1);
  auto [sorted_keys, sorted_rows] = at::sort(keys);
  auto mask = at::ones(s.sizes(), s.options().dtype(at::kBool));
  if (m == 0) return mask;
  const int threads = 256;
  local_max_kernel<<<(int)((m + threads - 1) / threads), threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      c.data_ptr<int64_t>(), m, (int)dims, off.data_ptr<int64_t>(), off.size(0), low.data_ptr<int64_t>(),
      extent.data_ptr<int64_t>(), sorted_keys.contiguous().data_ptr<int64_t>(),
      sorted_rows.contiguous().data_ptr<int64_t>(), s.data_ptr<float>(), s.size(1), mask.data_ptr<bool>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return mask;
}
