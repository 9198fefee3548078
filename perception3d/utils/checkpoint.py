"""Lets mmengine checkpoints load under torch's ``weights_only`` default.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``, which refuses
every global that is not allow-listed. mmengine 0.10.7 stores ``HistoryBuffer``
objects (numpy arrays plus their statistics methods) and a numpy scalar ``eta``
in ``message_hub``, and ``OneCycleParamScheduler`` stores its anneal function in
its state dict, so ``Runner(resume=True)`` fails with ``UnpicklingError``. This
module allow-lists exactly those globals and nothing more.
"""
import functools
import pickle

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler
from packaging.version import Version

# Functions pickled (protocol 2) as ``getattr(owner, name)`` because they live in a class.
_PICKLED_METHODS = {
    HistoryBuffer: ("min", "max", "current", "mean"),
    OneCycleParamScheduler: ("_annealing_cos", "_annealing_linear"),
}


def _pickled_method(owner, name):
    """Stand-in for ``builtins.getattr`` that resolves only ``_PICKLED_METHODS``.

    Allow-listing the real ``getattr`` would let a checkpoint read any
    attribute of any object it can reach.
    """
    if isinstance(owner, type) and name in _PICKLED_METHODS.get(owner, ()):
        return getattr(owner, name)
    raise pickle.UnpicklingError(f"refusing getattr({owner!r}, {name!r}) in a checkpoint")


@functools.cache
def allow_mmengine_checkpoint_classes() -> None:
    """Allow-list the globals an mmengine 0.10.7 checkpoint holds (torch >= 2.6 only).

    Found by saving a real ``Runner`` checkpoint (Adam, OneCycleLR, epoch-based
    loop) and resuming it. Idempotent; later calls return at once.
    """
    if Version(torch.__version__).release < (2, 6):
        return  # weights_only is off by default there, and (obj, name) entries are unknown
    torch.serialization.add_safe_globals([
        HistoryBuffer,
        OneCycleParamScheduler,
        (_pickled_method, "builtins.getattr"),
        np.ndarray,
        np.dtype,
        np.dtypes.Float64DType,
        np.dtypes.Int64DType,
        np.core.multiarray._reconstruct,
        np.core.multiarray.scalar,
    ])
