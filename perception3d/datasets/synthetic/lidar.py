"""A ray-casting LiDAR for the synthetic world (numba).

The world is a ground plane at global z = 0 plus primitives, each row of a
float64 (P, 8) parameter array with a kind:

- ``BOX``: cx, cy, cz, hx, hy, hz, cos(yaw), sin(yaw) (half sizes in m);
- ``CYLINDER`` (vertical): cx, cy, z_bottom, z_top, radius, 0, 0, 0;
- ``SPHERE``: cx, cy, cz, radius, 0, 0, 0, 0.

The sensor models a 32-beam spinning LiDAR like nuScenes' HDL-32E: every ray is
written, as nuScenes writes it, so a frame always holds beams × azimuths points;
a ray with no return lands at ``NO_RETURN_XYZ`` next to the sensor.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numba
import numpy as np

BOX, CYLINDER, SPHERE = 0, 1, 2
GROUND = -1  # primitive index of a ground return
MISS = -2  # primitive index of a ray without return
NO_RETURN_XYZ = (0.0, -0.45, -0.01)  # where nuScenes' LIDAR_TOP writes a ray without return (sensor frame)
N_BINS = 360  # azimuth bins used to cull primitives per ray


@dataclass(frozen=True)
class LidarModel:
    """Beam geometry and noise of the simulated sensor."""

    n_beams: int = 32
    elevation_top_deg: float = 10.0
    elevation_bottom_deg: float = -30.0
    n_azimuth: int = 1084
    max_range: float = 100.0
    range_noise_std: float = 0.02  # m, along the ray
    dropout: float = 0.01  # probability that a ray returns nothing

    def beam_elevations(self) -> np.ndarray:
        """(n_beams,) elevation angles in rad, ring 0 the lowest beam."""
        return np.deg2rad(np.linspace(self.elevation_bottom_deg, self.elevation_top_deg, self.n_beams))

    @functools.lru_cache(maxsize=4)
    def ray_directions(self) -> np.ndarray:
        """float64 (n_azimuth * n_beams, 3) unit directions in the sensor frame, azimuth-major (cached: read-only)."""
        az = np.linspace(0.0, 2 * np.pi, self.n_azimuth, endpoint=False)
        el = self.beam_elevations()
        a, e = np.meshgrid(az, el, indexing="ij")
        rays = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=-1).reshape(-1, 3)
        rays.setflags(write=False)
        return rays

    @functools.lru_cache(maxsize=4)
    def rings(self) -> np.ndarray:
        """float32 (n_azimuth * n_beams,) ring index of each ray, in the order of ``ray_directions`` (cached)."""
        rings = np.tile(np.arange(self.n_beams, dtype=np.float32), self.n_azimuth)
        rings.setflags(write=False)
        return rings


@numba.njit(cache=True)
def _wrap(a):
    return (a + math.pi) % (2 * math.pi) - math.pi


@numba.njit(cache=True)
def _azimuth_span(kind, p, ox, oy):
    """Centre azimuth and half width (rad) of a primitive seen from (ox, oy); half width pi = all around."""
    cx = p[0] - ox
    cy = p[1] - oy
    dist = math.sqrt(cx * cx + cy * cy)
    centre = math.atan2(cy, cx)
    if kind == BOX:
        c, s = p[6], p[7]
        lx = c * cx + s * cy
        ly = -s * cx + c * cy
        if abs(lx) <= p[3] + 1e-6 and abs(ly) <= p[4] + 1e-6:
            return centre, math.pi
        half = 0.0
        for sx in (-1.0, 1.0):
            for sy in (-1.0, 1.0):
                px = cx + c * sx * p[3] - s * sy * p[4]
                py = cy + s * sx * p[3] + c * sy * p[4]
                half = max(half, abs(_wrap(math.atan2(py, px) - centre)))
        return centre, half
    radius = p[4] if kind == CYLINDER else p[3]
    if dist <= radius + 1e-6:
        return centre, math.pi
    return centre, math.asin(radius / dist)


@numba.njit(cache=True)
def bin_primitives(kinds, params, ox, oy):
    """CSR lists (start (N_BINS+1,), items) of the primitives overlapping each azimuth bin."""
    n = kinds.shape[0]
    lo = np.empty(n, dtype=np.int64)
    hi = np.empty(n, dtype=np.int64)
    width = 2 * math.pi / N_BINS
    counts = np.zeros(N_BINS + 1, dtype=np.int64)
    for i in range(n):
        centre, half = _azimuth_span(kinds[i], params[i], ox, oy)
        if half >= math.pi / 2:
            lo[i], hi[i] = 0, N_BINS - 1
        else:
            lo[i] = int(math.floor((centre - half + math.pi) / width))
            hi[i] = int(math.floor((centre + half + math.pi) / width))
        for b in range(lo[i], hi[i] + 1):
            counts[b % N_BINS + 1] += 1
    start = np.cumsum(counts)
    fill = start[:-1].copy()
    items = np.empty(start[-1], dtype=np.int64)
    for i in range(n):
        for b in range(lo[i], hi[i] + 1):
            k = b % N_BINS
            items[fill[k]] = i
            fill[k] += 1
    return start, items


@numba.njit(cache=True)
def _hit(kind, p, ox, oy, oz, dx, dy, dz):
    """Distance along the unit ray to the primitive (inf if missed) and |cos| of the incidence angle."""
    inf = np.inf
    if kind == BOX:
        rx, ry, rz = ox - p[0], oy - p[1], oz - p[2]
        c, s = p[6], p[7]
        lo = (c * rx + s * ry, -s * rx + c * ry, rz)
        ld = (c * dx + s * dy, -s * dx + c * dy, dz)
        half = (p[3], p[4], p[5])
        tmin, tmax, cosang = -inf, inf, 0.0
        for k in range(3):
            if abs(ld[k]) < 1e-12:
                if abs(lo[k]) > half[k]:
                    return inf, 0.0
                continue
            t1 = (-half[k] - lo[k]) / ld[k]
            t2 = (half[k] - lo[k]) / ld[k]
            if t1 > t2:
                t1, t2 = t2, t1
            if t1 > tmin:
                tmin, cosang = t1, abs(ld[k])
            tmax = min(tmax, t2)
        if tmax < tmin or tmin <= 1e-6:
            return inf, 0.0
        return tmin, cosang
    if kind == CYLINDER:
        best, cosang = inf, 0.0
        fx, fy = ox - p[0], oy - p[1]
        a = dx * dx + dy * dy
        if a > 1e-12:
            b = fx * dx + fy * dy
            c = fx * fx + fy * fy - p[4] * p[4]
            disc = b * b - a * c
            if disc >= 0.0:
                t = (-b - math.sqrt(disc)) / a
                z = oz + t * dz
                if t > 1e-6 and p[2] <= z <= p[3]:
                    best = t
                    cosang = abs(((fx + t * dx) * dx + (fy + t * dy) * dy) / p[4])
        if dz < -1e-12:  # top cap, seen from above
            t = (p[3] - oz) / dz
            hx, hy = fx + t * dx, fy + t * dy
            if 1e-6 < t < best and hx * hx + hy * hy <= p[4] * p[4]:
                best, cosang = t, -dz
        return best, cosang
    # sphere
    fx, fy, fz = ox - p[0], oy - p[1], oz - p[2]
    b = fx * dx + fy * dy + fz * dz
    c = fx * fx + fy * fy + fz * fz - p[3] * p[3]
    disc = b * b - c
    if disc < 0.0:
        return inf, 0.0
    t = -b - math.sqrt(disc)
    if t <= 1e-6:
        return inf, 0.0
    nx, ny, nz = fx + t * dx, fy + t * dy, fz + t * dz
    return t, abs((nx * dx + ny * dy + nz * dz) / p[3])


@numba.njit(cache=True)
def cast_rays(origin, directions, kinds, params, max_range):
    """Casts unit rays (R, 3) from ``origin`` (global frame).

    Returns range (R,) in m (inf for no return), index of the primitive hit (R,)
    (``GROUND``, ``MISS`` or a row of ``params``) and |cos| of the incidence angle (R,).
    """
    ox, oy, oz = origin[0], origin[1], origin[2]
    start, items = bin_primitives(kinds, params, ox, oy)
    width = 2 * math.pi / N_BINS
    n = directions.shape[0]
    rng = np.full(n, np.inf)
    hit = np.full(n, MISS, dtype=np.int64)
    cosang = np.zeros(n)
    for r in range(n):
        dx, dy, dz = directions[r, 0], directions[r, 1], directions[r, 2]
        best, best_i, best_cos = max_range, MISS, 0.0
        if dz < -1e-12:
            t = -oz / dz
            if t < best:
                best, best_i, best_cos = t, GROUND, -dz
        k = int(math.floor((math.atan2(dy, dx) + math.pi) / width)) % N_BINS
        for j in range(start[k], start[k + 1]):
            i = items[j]
            t, c = _hit(kinds[i], params[i], ox, oy, oz, dx, dy, dz)
            if t < best:
                best, best_i, best_cos = t, i, c
        if best_i != MISS:
            rng[r], hit[r], cosang[r] = best, best_i, best_cos
    return rng, hit, cosang


@numba.njit(cache=True)
def count_unoccluded_rays(origin, directions, kinds, params, owner, n_owners, max_range):
    """Per owner (object index, -1 for none), the number of rays that would hit it if nothing occluded it."""
    ox, oy, oz = origin[0], origin[1], origin[2]
    start, items = bin_primitives(kinds, params, ox, oy)
    width = 2 * math.pi / N_BINS
    counts = np.zeros(n_owners, dtype=np.int64)
    for r in range(directions.shape[0]):
        dx, dy, dz = directions[r, 0], directions[r, 1], directions[r, 2]
        ground = -oz / dz if dz < -1e-12 else np.inf
        k = int(math.floor((math.atan2(dy, dx) + math.pi) / width)) % N_BINS
        last = -1
        for j in range(start[k], start[k + 1]):
            i = items[j]
            o = owner[i]
            if o < 0 or o == last:
                continue
            t, _ = _hit(kinds[i], params[i], ox, oy, oz, dx, dy, dz)
            if t < max_range and t < ground:
                counts[o] += 1
                last = o
    return counts
