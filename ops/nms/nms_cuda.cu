// Rotated-box NMS and circle NMS on CUDA, twin of perception3d/ops/nms.py. A kernel fills a bit mask of
// "candidate j (later in score order) is suppressed by candidate i"; one block then walks the candidates in
// order on the device, so no per-box loop runs on the CPU and the kept indices never leave the GPU.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

#include "../common/box_geometry.cuh"

namespace {

constexpr int kBits = 64;

// mask[i * words + w] bit t: candidate i suppresses candidate w * 64 + t (only for later candidates).
template <typename Suppresses>
__global__ void suppression_mask_kernel(int64_t n, int64_t words, Suppresses suppresses,
                                        unsigned long long* __restrict__ mask) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  const int64_t w = blockIdx.y;
  if (i >= n) return;
  unsigned long long bits = 0;
  for (int t = 0; t < kBits; ++t) {
    const int64_t j = w * kBits + t;
    if (j > i && j < n && suppresses(i, j)) bits |= 1ULL << t;
  }
  mask[i * words + w] = bits;
}

// Greedy pass in one block: candidate i is kept unless a kept, earlier one suppressed it.
__global__ void greedy_keep_kernel(const unsigned long long* __restrict__ mask, int64_t n, int64_t words,
                                   const int64_t* __restrict__ order, int64_t post_max,
                                   unsigned long long* __restrict__ removed, int64_t* __restrict__ keep,
                                   int64_t* __restrict__ n_keep) {
  __shared__ bool kept_now;
  __shared__ int64_t count;
  if (threadIdx.x == 0) count = 0;
  for (int64_t w = threadIdx.x; w < words; w += blockDim.x) removed[w] = 0;
  __syncthreads();
  for (int64_t i = 0; i < n; ++i) {
    if (threadIdx.x == 0) {
      kept_now = count < post_max && !((removed[i / kBits] >> (i % kBits)) & 1ULL);
      if (kept_now) keep[count++] = order[i];
    }
    __syncthreads();
    if (kept_now) {
      for (int64_t w = threadIdx.x; w < words; w += blockDim.x) removed[w] |= mask[i * words + w];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) *n_keep = count;
}

struct IouAbove {
  const double* boxes;
  const int64_t* order;
  double thresh;
  __device__ bool operator()(int64_t i, int64_t j) const {
    return p3d::box_iou(boxes + order[i] * p3d::kBoxDim, boxes + order[j] * p3d::kBoxDim, false) > thresh;
  }
};

struct CloserThan {
  const double* centers;
  const int64_t* order;
  double radius2;
  __device__ bool operator()(int64_t i, int64_t j) const {
    const double dx = centers[order[i] * 2] - centers[order[j] * 2];
    const double dy = centers[order[i] * 2 + 1] - centers[order[j] * 2 + 1];
    return dx * dx + dy * dy < radius2;
  }
};

template <typename Suppresses>
at::Tensor greedy_nms(const at::Tensor& order, Suppresses suppresses, int64_t post_max) {
  const int64_t n = order.size(0);
  const int64_t words = (n + kBits - 1) / kBits;
  auto opts = order.options();
  auto mask = at::empty({n * words}, opts);  // int64 storage viewed as 64-bit words
  auto stream = c10::cuda::getCurrentCUDAStream();
  const int threads = 128;
  const dim3 grid((unsigned)((n + threads - 1) / threads), (unsigned)words);
  suppression_mask_kernel<<<grid, threads, 0, stream>>>(
      n, words, suppresses, reinterpret_cast<unsigned long long*>(mask.data_ptr<int64_t>()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  auto removed = at::empty({words}, opts);
  auto keep = at::empty({std::min(n, post_max)}, opts);
  auto n_keep = at::zeros({1}, opts);
  greedy_keep_kernel<<<1, 256, 0, stream>>>(
      reinterpret_cast<const unsigned long long*>(mask.data_ptr<int64_t>()), n, words, order.data_ptr<int64_t>(),
      post_max, reinterpret_cast<unsigned long long*>(removed.data_ptr<int64_t>()), keep.data_ptr<int64_t>(),
      n_keep.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return keep.slice(0, 0, n_keep.item<int64_t>());  // the one device-to-host copy: the kept count
}

}  // namespace

at::Tensor nms_bev_cuda(const at::Tensor& boxes, const at::Tensor& order, double iou_thresh, int64_t post_max) {
  TORCH_CHECK(boxes.is_cuda() && order.is_cuda(), "boxes and order must be CUDA tensors");
  const c10::cuda::CUDAGuard guard(boxes.device());
  auto b = boxes.to(at::kDouble).contiguous();
  auto o = order.to(at::kLong).contiguous();
  return greedy_nms(o, IouAbove{b.data_ptr<double>(), o.data_ptr<int64_t>(), iou_thresh}, post_max);
}

at::Tensor circle_nms_cuda(const at::Tensor& centers, const at::Tensor& order, double radius, int64_t post_max) {
  TORCH_CHECK(centers.is_cuda() && order.is_cuda(), "centers and order must be CUDA tensors");
  const c10::cuda::CUDAGuard guard(centers.device());
  auto c = centers.to(at::kDouble).contiguous();
  auto o = order.to(at::kLong).contiguous();
  return greedy_nms(o, CloserThan{c.data_ptr<double>(), o.data_ptr<int64_t>(), radius * radius}, post_max);
}
