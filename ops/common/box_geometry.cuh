// Rotated-box geometry shared by the IoU, NMS and points-in-boxes kernels. Boxes are rows of 9 doubles in
// perception3d's convention: x, y, z (gravity centre), dx, dy, dz, yaw, vx, vy. All arithmetic is in double,
// as in the numba twins (perception3d/ops/iou.py, points_in_boxes.py), so both paths agree.
#pragma once
#include <cuda_runtime.h>

namespace p3d {

constexpr int kBoxDim = 9;
constexpr double kClipEps = 1e-9;  // m: a corner this close to a clipping edge counts as on it

__device__ inline void box_corners(const double* box, double ox, double oy, double (*out)[2]) {
  const double c = cos((double)box[6]), s = sin((double)box[6]);
  const double hx = box[3] / 2.0, hy = box[4] / 2.0;
  const double u[4] = {hx, -hx, -hx, hx};
  const double v[4] = {hy, hy, -hy, -hy};
  for (int k = 0; k < 4; ++k) {
    out[k][0] = (double)box[0] - ox + c * u[k] - s * v[k];
    out[k][1] = (double)box[1] - oy + s * u[k] + c * v[k];
  }
}

// Area (m^2) shared by the BEV rectangles of a and b: a clipped by b's edges (Sutherland-Hodgman).
__device__ inline double bev_intersection(const double* a, const double* b) {
  if (a[3] <= 0.0 || a[4] <= 0.0 || b[3] <= 0.0 || b[4] <= 0.0) return 0.0;
  const double dx = (double)b[0] - a[0], dy = (double)b[1] - a[1];
  const double reach = 0.5 * (hypot((double)a[3], (double)a[4]) + hypot((double)b[3], (double)b[4]));
  if (dx * dx + dy * dy >= reach * reach) return 0.0;
  double poly[16][2], next[16][2], clip[4][2];
  box_corners(a, a[0], a[1], poly);
  box_corners(b, a[0], a[1], clip);
  int n = 4;
  for (int e = 0; e < 4; ++e) {
    const double x0 = clip[e][0], y0 = clip[e][1];
    double ex = clip[(e + 1) % 4][0] - x0, ey = clip[(e + 1) % 4][1] - y0;
    const double length = hypot(ex, ey);
    ex /= length;
    ey /= length;
    int m = 0;
    for (int k = 0; k < n; ++k) {
      const double px = poly[k][0], py = poly[k][1];
      const double qx = poly[(k + 1) % n][0], qy = poly[(k + 1) % n][1];
      const double dp = ex * (py - y0) - ey * (px - x0);
      const double dq = ex * (qy - y0) - ey * (qx - x0);
      const bool p_in = dp >= -kClipEps, q_in = dq >= -kClipEps;
      if (p_in) {
        next[m][0] = px;
        next[m][1] = py;
        ++m;
      }
      if (p_in != q_in) {
        const double t = dp / (dp - dq);
        next[m][0] = px + t * (qx - px);
        next[m][1] = py + t * (qy - py);
        ++m;
      }
    }
    n = m;
    if (n < 3) return 0.0;
    for (int k = 0; k < n; ++k) {
      poly[k][0] = next[k][0];
      poly[k][1] = next[k][1];
    }
  }
  double area = 0.0;
  for (int k = 0; k < n; ++k) area += poly[k][0] * poly[(k + 1) % n][1] - poly[(k + 1) % n][0] * poly[k][1];
  area = fmax(0.5 * area, 0.0);
  return fmin(area, fmin((double)a[3] * a[4], (double)b[3] * b[4]));
}

__device__ inline double box_iou(const double* a, const double* b, bool use_height) {
  double inter = bev_intersection(a, b);
  if (inter <= 0.0) return 0.0;
  double area_a = (double)a[3] * a[4], area_b = (double)b[3] * b[4];
  if (use_height) {
    const double top = fmin(a[2] + a[5] / 2.0, b[2] + b[5] / 2.0);
    const double bottom = fmax(a[2] - a[5] / 2.0, b[2] - b[5] / 2.0);
    if (top <= bottom) return 0.0;
    inter *= top - bottom;
    area_a *= a[5];
    area_b *= b[5];
  }
  const double uni = area_a + area_b - inter;
  return uni > 0.0 ? fmin(inter / uni, 1.0) : 0.0;
}

// A point on a face counts as inside, as in the devkit's points_in_box.
__device__ inline bool point_in_box(double px, double py, double pz, const double* box) {
  const double dx = px - box[0], dy = py - box[1];
  const double hx = box[3] / 2.0, hy = box[4] / 2.0;
  if (dx * dx + dy * dy > hx * hx + hy * hy) return false;
  if (fabs(pz - box[2]) > box[5] / 2.0) return false;
  const double c = cos((double)box[6]), s = sin((double)box[6]);
  return fabs(c * dx + s * dy) <= hx && fabs(-s * dx + c * dy) <= hy;
}

}  // namespace p3d
