"""Open-addressing hash table of int64 keys → int32 slots, for the numba kernels (the CUDA twins use the same
scheme with atomicCAS). Keys are non-negative; -1 marks an empty slot."""
from __future__ import annotations

import numba
import numpy as np

EMPTY = -1


def table_size(n: int) -> int:
    """A power of two at least twice ``n`` (load factor ≤ 0.5)."""
    return 1 << max(4, int(2 * max(n, 1) - 1).bit_length())


@numba.njit(cache=True, inline="always")
def _slot(key, mask):
    # splitmix64 finaliser: spreads neighbouring voxel keys over the table
    h = np.uint64(key)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    return np.int64(h & np.uint64(mask))


@numba.njit(cache=True, inline="always")
def find_or_slot(keys, key):
    """Slot holding ``key``, or the empty slot where it would go (check ``keys[slot] == EMPTY``)."""
    mask = keys.shape[0] - 1
    s = _slot(key, mask)
    while keys[s] != key and keys[s] != EMPTY:
        s = (s + 1) & mask
    return s
