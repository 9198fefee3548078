"""A sampler that hands every index with the seed of its augmentation."""
from __future__ import annotations

from typing import Iterator, NamedTuple, Tuple

from mmengine.dataset import DefaultSampler

from ..registry import DATA_SAMPLERS


class SampleKey(NamedTuple):
    """An index into a dataset and the entropy its random transforms draw from."""

    index: int
    entropy: Tuple[int, ...]


@DATA_SAMPLERS.register_module()
class SeededSampler(DefaultSampler):
    """mmengine's DefaultSampler (shuffled by seed and epoch, split across ranks) yielding :class:`SampleKey`
    (index, (seed, epoch, index)): each sample's augmentation depends on nothing else, not on the worker that
    loads it nor on what ran before, so a run resumed at an epoch boundary replays the original exactly."""

    def __iter__(self) -> Iterator[SampleKey]:
        for index in super().__iter__():
            yield SampleKey(int(index), (self.seed, self.epoch, int(index)))
