// Points in rotated 3D boxes on CUDA, twin of perception3d/ops/points_in_boxes.py: one thread per point.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

#include "../common/box_geometry.cuh"

namespace {

__global__ void first_box_kernel(const float* __restrict__ points, int64_t n, const double* __restrict__ boxes,
                                 int64_t nb, int64_t* __restrict__ index) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= n) return;
  const double x = points[i * 3], y = points[i * 3 + 1], z = points[i * 3 + 2];
  int64_t found = -1;
  for (int64_t b = 0; b < nb && found < 0; ++b) {
    if (p3d::point_in_box(x, y, z, boxes + b * p3d::kBoxDim)) found = b;
  }
  index[i] = found;
}

__global__ void box_mask_kernel(const float* __restrict__ points, int64_t n, const double* __restrict__ boxes,
                                int64_t nb, bool* __restrict__ mask) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= n) return;
  const double x = points[i * 3], y = points[i * 3 + 1], z = points[i * 3 + 2];
  for (int64_t b = 0; b < nb; ++b) mask[i * nb + b] = p3d::point_in_box(x, y, z, boxes + b * p3d::kBoxDim);
}

}  // namespace

at::Tensor points_in_boxes_cuda(const at::Tensor& points, const at::Tensor& boxes) {
  TORCH_CHECK(points.is_cuda() && boxes.is_cuda() && points.size(1) == 3, "points (N, 3) and boxes must be on CUDA");
  const c10::cuda::CUDAGuard guard(points.device());
  auto p = points.to(at::kFloat).contiguous();
  auto b = boxes.to(at::kDouble).contiguous();
  auto index = at::full({p.size(0)}, -1, p.options().dtype(at::kLong));
  if (p.size(0) == 0 || b.size(0) == 0) return index;
  const int threads = 256;
  first_box_kernel<<<(int)((p.size(0) + threads - 1) / threads), threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      p.data_ptr<float>(), p.size(0), b.data_ptr<double>(), b.size(0), index.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return index;
}

at::Tensor points_in_boxes_mask_cuda(const at::Tensor& points, const at::Tensor& boxes) {
  TORCH_CHECK(points.is_cuda() && boxes.is_cuda() && points.size(1) == 3, "points (N, 3) and boxes must be on CUDA");
  const c10::cuda::CUDAGuard guard(points.device());
  auto p = points.to(at::kFloat).contiguous();
  auto b = boxes.to(at::kDouble).contiguous();
  auto mask = at::zeros({p.size(0), b.size(0)}, p.options().dtype(at::kBool));
  if (p.size(0) == 0 || b.size(0) == 0) return mask;
  const int threads = 256;
  box_mask_kernel<<<(int)((p.size(0) + threads - 1) / threads), threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      p.data_ptr<float>(), p.size(0), b.data_ptr<double>(), b.size(0), mask.data_ptr<bool>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return mask;
}
