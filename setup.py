"""Installs perception3d.

The CUDA kernels whose sources live in ``ops/`` are compiled here when torch
has CUDA and nvcc is found (or ``FORCE_CUDA=1``); otherwise the package installs
as pure Python and every op runs its numba CPU twin.
"""
import os
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def read_version() -> str:
    scope: dict = {}
    exec((ROOT / "perception3d" / "version.py").read_text(), scope)
    return scope["__version__"]


def cuda_extensions():
    """The CUDA extension built from ops/, or nothing where CUDA is absent."""
    sources = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "ops").rglob("*.cu"))
    sources += sorted(str(p.relative_to(ROOT)) for p in (ROOT / "ops").rglob("*.cpp"))
    if not sources:
        return [], {}
    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CUDAExtension
    except ImportError:
        return [], {}
    want = os.environ.get("FORCE_CUDA", "0") == "1" or (torch.cuda.is_available() and CUDA_HOME)
    if not want:
        return [], {}
    # Architectures come from TORCH_CUDA_ARCH_LIST (read by torch), never hard-coded here.
    ext = CUDAExtension(
        name="perception3d._ext",
        sources=sources,
        # no --use_fast_math: voxel indices and IoUs must match the CPU twins bit for bit
        extra_compile_args={"cxx": ["-O3"], "nvcc": ["-O3"]},
    )
    return [ext], {"build_ext": BuildExtension}


ext_modules, cmdclass = cuda_extensions()

setup(
    name="perception3d",
    version=read_version(),
    description="Fully sparse LiDAR 3D detection and tracking on nuScenes",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["perception3d", "perception3d.*"]),
    install_requires=[
        # GPU users keep their own CUDA build of torch; spconv's wheel name carries
        # the CUDA version (spconv-cu120, spconv-cu121, ...), so it cannot be listed
        # here: see the README for which one to install.
        "torch>=2.1",
        "mmengine>=0.10,<0.11",
        "numba>=0.59",
        "numpy>=1.24,<2",
        "nuscenes-devkit>=1.1.11",
        "pandas>=2,<3",
        "motmetrics>=1.4",
        "open3d>=0.18",
        "shapely>=2.0",
        "matplotlib>=3.7",
        "imageio>=2.31",
        "tqdm>=4.60",
        "packaging>=23",
    ],
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
)
