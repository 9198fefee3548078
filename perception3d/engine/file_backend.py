"""An mmengine file backend for local paths whose writes are atomic (write a temporary file, then rename)."""
from __future__ import annotations

from pathlib import Path
from typing import Union

from mmengine.fileio.backends import LocalBackend, register_backend

from ..utils.io import atomic_write


class AtomicLocalBackend(LocalBackend):
    """LocalBackend whose ``put`` / ``put_text`` never leave a half-written file: a checkpoint killed while
    being saved leaves the previous file (or none), never a corrupt one. Select it with
    ``backend_args=dict(backend="atomic_local")`` (CheckpointHook in configs/_base_/default_runtime.py)."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write(filepath, obj)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = "utf-8") -> None:
        atomic_write(filepath, obj.encode(encoding))


register_backend("atomic_local", AtomicLocalBackend, force=True)
