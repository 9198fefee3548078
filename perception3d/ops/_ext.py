"""The CUDA extension of the kernels in ``ops/``: built by setup.py where CUDA exists, else compiled on first use
(a cached JIT build under ``$PERCEPTION3D_EXT_DIR`` or ``~/.cache/perception3d``) when an op meets a CUDA tensor.
CPU tensors never touch it."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import List, Optional

SOURCE_DIR = Path(__file__).resolve().parents[2] / "ops"
_module = None


def sources() -> List[Path]:
    """The .cpp and .cu files of ``ops/`` (empty when the package was installed without them)."""
    if not SOURCE_DIR.is_dir():
        return []
    return sorted(p for p in SOURCE_DIR.rglob("*") if p.suffix in (".cpp", ".cu"))


def prebuilt():
    """The extension that setup.py built, or None."""
    try:
        from .. import _ext as module  # type: ignore[attr-defined]
    except ImportError:
        return None
    return module


def load():
    """The CUDA extension, built now (and cached) if setup.py did not build it. Raises RuntimeError saying
    what is missing when it cannot be built."""
    global _module
    if _module is not None:
        return _module
    module = prebuilt()
    if module is None:
        module = _jit_build()
    _module = module
    return module


def _jit_build():
    import torch
    from torch.utils import cpp_extension

    if torch.version.cuda is None:
        raise RuntimeError(f"perception3d's CUDA kernels need a CUDA build of torch; this is torch {torch.__version__}")
    if cpp_extension.CUDA_HOME is None:
        raise RuntimeError("perception3d's CUDA kernels are not built and nvcc was not found: set CUDA_HOME, or "
                           "reinstall with `FORCE_CUDA=1 pip install -e .` on a machine with the CUDA toolkit")
    files = sources()
    if not files:
        raise RuntimeError(f"perception3d's CUDA sources are missing (looked in {SOURCE_DIR})")
    digest = hashlib.sha1()
    for path in files:
        digest.update(path.read_bytes())
    digest.update(f"{torch.__version__} {torch.version.cuda}".encode())
    root = Path(os.environ.get("PERCEPTION3D_EXT_DIR", Path.home() / ".cache" / "perception3d"))
    build_dir = root / f"ext-{digest.hexdigest()[:12]}"
    build_dir.mkdir(parents=True, exist_ok=True)
    return cpp_extension.load(name="perception3d_ext", sources=[str(p) for p in files],
                              build_directory=str(build_dir), extra_cflags=["-O3"],
                              extra_cuda_cflags=["-O3"], verbose=False)


def status() -> Optional[str]:
    """How the CUDA kernels are available: "prebuilt", "JIT (on first CUDA call)" or None without CUDA."""
    if prebuilt() is not None:
        return "prebuilt"
    try:
        import torch
        from torch.utils import cpp_extension
    except ImportError:
        return None
    if torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None and sources():
        return "JIT (on first CUDA call)"
    return None
