// Rotated BEV and 3D IoU matrices on CUDA, twin of perception3d/ops/iou.py: one thread per box pair.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

#include "../common/box_geometry.cuh"

namespace {

__global__ void box_iou_kernel(const double* __restrict__ a, int64_t na, const double* __restrict__ b, int64_t nb,
                               bool use_height, float* __restrict__ out) {
  const int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (k >= na * nb) return;
  const int64_t i = k / nb, j = k % nb;
  out[k] = (float)p3d::box_iou(a + i * p3d::kBoxDim, b + j * p3d::kBoxDim, use_height);
}

}  // namespace

at::Tensor box_iou_cuda(const at::Tensor& boxes_a, const at::Tensor& boxes_b, bool use_height) {
  TORCH_CHECK(boxes_a.is_cuda() && boxes_b.is_cuda(), "boxes must be CUDA tensors");
  TORCH_CHECK(boxes_a.size(1) == p3d::kBoxDim && boxes_b.size(1) == p3d::kBoxDim, "boxes must be (N, 9)");
  const c10::cuda::CUDAGuard guard(boxes_a.device());
  auto a = boxes_a.to(at::kDouble).contiguous(), b = boxes_b.to(at::kDouble).contiguous();
  const int64_t na = a.size(0), nb = b.size(0);
  auto out = at::zeros({na, nb}, a.options().dtype(at::kFloat));
  if (na * nb == 0) return out;
  const int threads = 256;
  box_iou_kernel<<<(int)((na * nb + threads - 1) / threads), threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      a.data_ptr<double>(), na, b.data_ptr<double>(), nb, use_height, out.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}
