"""Reports the environment perception3d runs in: ``python -m perception3d.collect_env``.

Versions other than torch's come from installed distribution metadata, so a
package that is missing (or fails to import) cannot crash the report.
"""
import importlib.metadata
import importlib.util
import platform

import torch
from packaging.version import Version

from perception3d import __version__

NOT_INSTALLED = "not installed"

_DISTRIBUTIONS = ("numba", "numpy", "mmengine", "nuscenes-devkit", "open3d", "shapely")


def _distribution(prefix: str) -> importlib.metadata.Distribution | None:
    """The first installed distribution whose name starts with ``prefix`` (spconv-cu120)."""
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower().startswith(prefix):
            return dist
    return None


def _installed(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return NOT_INSTALLED


def spconv_version() -> Version | None:
    """The installed spconv version (any spconv-cuXXX wheel), or None."""
    dist = _distribution("spconv")
    return Version(dist.version) if dist else None


def _torch_info() -> dict[str, str]:
    info = {
        "PyTorch": torch.__version__,
        "CUDA available": str(torch.cuda.is_available()),
        "torch CUDA": str(torch.version.cuda),
    }
    if torch.cuda.is_available():
        info["GPU"] = torch.cuda.get_device_name(0)
    return info


def _spconv_info() -> dict[str, str]:
    dist = _distribution("spconv")
    if dist is None:
        return {"spconv": NOT_INSTALLED}
    return {"spconv": str(spconv_version()), "spconv distribution": dist.metadata["Name"]}


KERNELS = ("voxelize_hard", "voxelize_dynamic", "box_iou", "nms_bev", "circle_nms", "points_in_boxes",
           "points_in_boxes_mask", "sparse_local_max")


def _kernels() -> str:
    """Which CUDA kernels the extension holds: prebuilt by setup.py, to be JIT-built on first use, or none."""
    from .ops import _ext

    state = _ext.status()
    if state is None:
        return "not built (CPU numba kernels only)"
    if state == "prebuilt":
        module = _ext.prebuilt()
        return "built: " + ", ".join(k for k in KERNELS if hasattr(module, k))
    return f"{state}: {', '.join(KERNELS)}"


def collect_env() -> dict[str, str]:
    """Report label -> value, in print order."""
    env = {
        "Python": platform.python_version(),
        "Platform": platform.platform(),
        "perception3d": __version__,
        **_torch_info(),
        **_spconv_info(),
    }
    cumm = _distribution("cumm")
    env["cumm"] = cumm.version if cumm else NOT_INSTALLED
    env.update({name: _installed(name) for name in _DISTRIBUTIONS})
    env["perception3d CUDA kernels"] = _kernels()
    return env


def main() -> None:
    """Print one ``label: value`` line per item."""
    for label, value in collect_env().items():
        print(f"{label}: {value}")


if __name__ == "__main__":
    main()
