"""One random stream per process for the random transforms, so dataloader workers never repeat each other."""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
import torch.utils.data


class RandomTransform:
    """Base of the random transforms: ``self.rng`` is a numpy Generator owned by the current process.

    In a dataloader worker it is seeded from torch's seed of that worker (different for every worker and
    every epoch, reproducible under a fixed global seed), mixed with ``seed`` when one is given; in the main
    process from ``seed`` alone (None: fresh entropy). A transform forked into workers therefore never hands
    two workers the same augmentation.
    """

    def __init__(self, seed: Optional[int] = None):
        self.seed = seed
        self._rng: Optional[np.random.Generator] = None
        self._owner = None

    @property
    def rng(self) -> np.random.Generator:
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
