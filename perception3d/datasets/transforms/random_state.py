"""Where the random transforms draw from: a generator per sample when the sampler seeds samples (training:
augmentation is a pure function of seed, epoch and index, so a resumed run repeats it exactly), otherwise one
stream per process, so dataloader workers never repeat each other."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional, Sequence

import numpy as np
import torch.utils.data

_sample_rng: Optional[np.random.Generator] = None


@contextlib.contextmanager
def seeded_sample(entropy: Sequence[int]) -> Iterator[None]:
    """Within the block every RandomTransform draws from one generator seeded by ``entropy`` (e.g. seed, epoch,
    index), in pipeline order."""
    global _sample_rng
    previous, _sample_rng = _sample_rng, np.random.default_rng(list(entropy))
    try:
        yield
    finally:
        _sample_rng = previous


class RandomTransform:
    """Base of the random transforms: ``self.rng`` is a numpy Generator.

    Inside :func:`seeded_sample` it is that sample's generator. Otherwise it is owned by the current process:
    in a dataloader worker seeded from torch's seed of that worker (different for every worker and every
    epoch), mixed with ``seed`` when one is given; in the main process from ``seed`` alone (None: fresh
    entropy). A transform forked into workers therefore never hands two workers the same augmentation.
    """

    def __init__(self, seed: Optional[int] = None):
        self.seed = seed
        self._rng: Optional[np.random.Generator] = None
        self._owner = None

    @property
    def rng(self) -> np.random.Generator:
        if _sample_rng is not None:
            return _sample_rng
        worker = torch.utils.data.get_worker_info()
        owner = (os.getpid(), None if worker is None else worker.seed)
        if self._rng is None or owner != self._owner:
            if worker is None:
                entropy = self.seed
            else:
                entropy = [worker.seed] if self.seed is None else [worker.seed, self.seed]
            self._rng = np.random.default_rng(entropy)
            self._owner = owner
        return self._rng
