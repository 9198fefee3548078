"""File writing that never leaves a half-written file behind."""
from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Union


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Union[str, Path], data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``path``, then renames it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_pickle(path: Union[str, Path], obj: Any) -> None:
    """Pickles ``obj`` to ``path`` atomically (highest protocol)."""
    atomic_write(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
