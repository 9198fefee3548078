"""A constant-velocity Kalman filter over many tracks at once, in the ground plane. Each detection measures both
a track's centre and its velocity; x and y are filtered alike and apart, so one (position, velocity) covariance
per track serves both axes, held as three numbers (var_p, cov_pv, var_v). The arrays are updated in place."""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np


@numba.njit(cache=True)
def _predict_kernel(xy, velocity, cov, dt, q):
    for t in range(xy.shape[0]):
        xy[t, 0] += velocity[t, 0] * dt
        xy[t, 1] += velocity[t, 1] * dt
        p, pv, v = cov[t, 0], cov[t, 1], cov[t, 2]
        cov[t, 0] = p + 2 * dt * pv + dt * dt * v + q * dt ** 4 / 4
        cov[t, 1] = pv + dt * v + q * dt ** 3 / 2
        cov[t, 2] = v + q * dt * dt


@numba.njit(cache=True)
def _correct_kernel(xy, velocity, cov, rows, measured_xy, measured_velocity, r_p, r_v):
    for i in range(rows.shape[0]):
        t = rows[i]
        p, pv, v = cov[t, 0], cov[t, 1], cov[t, 2]
        sp, sv = p + r_p, v + r_v  # innovation covariance [[sp, pv], [pv, sv]]
        det = sp * sv - pv * pv
        k_pp, k_pv = (p * sv - pv * pv) / det, (pv * sp - p * pv) / det  # gain = cov @ inverse(innovation cov)
        k_vp, k_vv = (pv * sv - v * pv) / det, (v * sp - pv * pv) / det
        for axis in range(2):
            dp = measured_xy[i, axis] - xy[t, axis]
            dv = measured_velocity[i, axis] - velocity[t, axis]
            xy[t, axis] += k_pp * dp + k_pv * dv
            velocity[t, axis] += k_vp * dp + k_vv * dv
        cov[t, 0] = (1 - k_pp) * p - k_pv * pv
        cov[t, 1] = (1 - k_pp) * pv - k_pv * v
        cov[t, 2] = (1 - k_vv) * v - k_vp * pv


@dataclass(frozen=True)
class ConstantVelocityFilter:
    """Noise levels (1 sigma, per axis): ``position`` (m) and ``velocity`` (m/s) of a detection; ``acceleration``
    (m/s²), the white acceleration that makes a track's velocity drift between frames. The defaults trust
    positions over a detector's velocities: the best of those measured (README, Tracking)."""

    position: float = 0.2
    velocity: float = 1.0
    acceleration: float = 0.5

    @property
    def start_cov(self) -> np.ndarray:
        """Covariance (3,) of a track that starts from one detection."""
        return np.array([self.position ** 2, 0.0, self.velocity ** 2])

    def gate_margin(self, cov: np.ndarray) -> np.ndarray:
        """How much farther (T,) m than a detection's 1 sigma the predicted centres of tracks with covariance
        ``cov`` (T, 3) are uncertain: a track that coasts unseen is matched within its class's gate plus this."""
        return np.maximum(np.sqrt(cov[:, 0]) - self.position, 0.0)

    def predict(self, xy: np.ndarray, velocity: np.ndarray, cov: np.ndarray, dt: float) -> None:
        """Moves tracks ``xy`` (T, 2) m, with ``velocity`` (T, 2) m/s and ``cov`` (T, 3), ``dt`` s ahead."""
        _predict_kernel(xy, velocity, cov, float(dt), self.acceleration ** 2)

    def correct(self, xy: np.ndarray, velocity: np.ndarray, cov: np.ndarray, rows: np.ndarray,
                measured_xy: np.ndarray, measured_velocity: np.ndarray) -> None:
        """Updates the tracks ``rows`` (M,) with one detection each: centres (M, 2) m, velocities (M, 2) m/s."""
        _correct_kernel(xy, velocity, cov, np.asarray(rows, np.int64), measured_xy, measured_velocity,
                        self.position ** 2, self.velocity ** 2)
