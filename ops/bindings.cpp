// Python bindings of perception3d's CUDA kernels (module perception3d._ext, or perception3d_ext when built
// just in time). Each function is called by its entry point in perception3d/ops after the arguments are checked.
#include <torch/extension.h>

#include <vector>

std::vector<at::Tensor> voxelize_hard_cuda(const at::Tensor& points, const at::Tensor& vs, const at::Tensor& lo,
                                           const at::Tensor& grid, int64_t max_points, int64_t max_voxels);
std::vector<at::Tensor> voxelize_dynamic_cuda(const at::Tensor& points, const at::Tensor& vs, const at::Tensor& lo,
                                              const at::Tensor& grid);
at::Tensor box_iou_cuda(const at::Tensor& boxes_a, const at::Tensor& boxes_b, bool use_height);
at::Tensor nms_bev_cuda(const at::Tensor& boxes, const at::Tensor& order, double iou_thresh, int64_t post_max);
at::Tensor circle_nms_cuda(const at::Tensor& centers, const at::Tensor& order, double radius, int64_t post_max);
at::Tensor points_in_boxes_cuda(const at::Tensor& points, const at::Tensor& boxes);
at::Tensor points_in_boxes_mask_cuda(const at::Tensor& points, const at::Tensor& boxes);
at::Tensor sparse_local_max_cuda(const at::Tensor& coords, const at::Tensor& scores, const at::Tensor& offsets);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("voxelize_hard", &voxelize_hard_cuda, "hard voxelization: voxels, coords (z, y, x), counts, point_voxel");
  m.def("voxelize_dynamic", &voxelize_dynamic_cuda, "dynamic voxelization: point_voxel, coords (z, y, x)");
  m.def("box_iou", &box_iou_cuda, "rotated BEV (or 3D) IoU matrix");
  m.def("nms_bev", &nms_bev_cuda, "rotated NMS over candidates in score order");
  m.def("circle_nms", &circle_nms_cuda, "circle NMS over candidates in score order");
  m.def("points_in_boxes", &points_in_boxes_cuda, "index of the first box holding each point");
  m.def("points_in_boxes_mask", &points_in_boxes_mask_cuda, "(N, B) point-in-box mask");
  m.def("sparse_local_max", &sparse_local_max_cuda, "submanifold local-maximum mask");
}
