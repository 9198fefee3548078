"""``python -m perception3d.collect_env`` reports the installed stack."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import spconv
import torch

ROOT = Path(__file__).resolve().parents[1]


def run_collect_env() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "perception3d.collect_env"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return result.stdout


def test_collect_env_reports_installed_versions():
    out = run_collect_env().splitlines()
    assert f"PyTorch: {torch.__version__}" in out
    assert f"spconv: {spconv.__version__}" in out
    assert "spconv distribution: spconv-cu120" in out
    line = next(line for line in out if line.startswith("perception3d CUDA kernels: "))
    if importlib.util.find_spec("perception3d._ext") is not None:
        assert line.startswith("perception3d CUDA kernels: built: voxelize_hard")
    elif torch.version.cuda is None:  # a CPU build of torch cannot build or load them
        assert line == "perception3d CUDA kernels: not built (CPU numba kernels only)"
    else:
        assert "sparse_local_max" in line
