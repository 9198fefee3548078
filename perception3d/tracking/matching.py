"""Assignment of detections to tracks from an (N, T) cost matrix where inf marks a forbidden pair."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment


def greedy_match(cost: np.ndarray, order: Sequence[int]) -> List[Tuple[int, int]]:
    """Detections in ``order`` (e.g. by falling score) each take their nearest still free track with a finite
    cost → (detection, track) pairs."""
    cost = np.array(cost, dtype=np.float64)
    pairs = []
    for d in order:
        if not cost.shape[1]:
            break
        t = int(np.argmin(cost[d]))
        if np.isfinite(cost[d, t]):
            pairs.append((int(d), t))
            cost[:, t] = np.inf
    return pairs


def hungarian_match(cost: np.ndarray) -> List[Tuple[int, int]]:
    """The pairs of finite cost that minimise the total cost of a maximum matching (scipy's
    linear_sum_assignment; forbidden pairs carry a cost larger than any finite total)."""
    cost = np.asarray(cost, dtype=np.float64)
    finite = np.isfinite(cost)
    if not finite.any():
        return []
    big = cost[finite].sum() + 1.0
    rows, cols = linear_sum_assignment(np.where(finite, cost, big * (1 + cost.shape[0] + cost.shape[1])))
    return [(int(d), int(t)) for d, t in zip(rows, cols) if finite[d, t]]
