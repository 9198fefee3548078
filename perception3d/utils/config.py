"""Helpers over mmengine configs."""
from __future__ import annotations

from typing import Any

from mmengine.config import Config


def set_data_root(cfg: Any, data_root: str) -> int:
    """Points every ``data_root`` key of a config (mmengine Config or nested dicts and lists) at ``data_root``.

    A config names its root once at the top, but mmengine resolves that name into each dataset and evaluator
    when the file is read; this rewrites all of them. Returns how many keys were set.
    """
    count = 0
    if isinstance(cfg, (dict, Config)):  # ConfigDict is a dict
        for key in list(cfg.keys()):
            if key == "data_root":
                cfg[key] = data_root
                count += 1
            else:
                count += set_data_root(cfg[key], data_root)
    elif isinstance(cfg, (list, tuple)):
        for item in cfg:
            count += set_data_root(item, data_root)
    return count
