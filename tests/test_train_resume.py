"""Training killed with SIGKILL in the middle of an epoch and resumed with --resume ends exactly where an
uninterrupted run with the same seed ends: the same weights, the same metrics."""
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "configs" / "voxelnext" / "voxelnext_tiny_synthetic.py")


def train(root, work_dir, *extra, kill_at=None):
    """Runs tools/train.py for 2 short epochs; with ``kill_at`` (epoch, iteration) SIGKILLs it once that
    iteration is logged. Returns the output."""
    cmd = [sys.executable, str(ROOT / "tools" / "train.py"), TINY, "--data-root", root, "--work-dir", str(work_dir),
           "--seed", "3", "--deterministic", "--cfg-options", "train_cfg.max_epochs=2", "train_cfg.val_interval=2",
           "train_dataloader.dataset.indices=8", "val_dataloader.dataset.indices=2",
           "default_hooks.logger.interval=1", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if kill_at and f"Epoch(train) [{kill_at[0]}][{kill_at[1]}/" in line:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    out = "".join(lines)
    if kill_at:
        assert proc.returncode == -signal.SIGKILL, out[-3000:]
    else:
        assert proc.returncode == 0, out[-3000:]
    return out


def nds(out):
    return re.findall(r"NuScenes/NDS: ([0-9.]+)", out)


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(synthetic_root, tmp_path):
    whole = train(synthetic_root, tmp_path / "whole")
    killed_dir = tmp_path / "killed"
    train(synthetic_root, killed_dir, kill_at=(2, 2))
    assert (killed_dir / "epoch_1.pth").is_file() and not (killed_dir / "epoch_2.pth").exists()
    resumed = train(synthetic_root, killed_dir, "--resume")
    assert "resumed" in resumed.lower() or "Load checkpoint" in resumed
    a = torch.load(tmp_path / "whole" / "epoch_2.pth", map_location="cpu", weights_only=True)
    b = torch.load(killed_dir / "epoch_2.pth", map_location="cpu", weights_only=True)
    assert a["meta"]["iter"] == b["meta"]["iter"]
    different = [k for k in a["state_dict"] if not torch.equal(a["state_dict"][k], b["state_dict"][k])]
    assert not different, different[:5]
    assert nds(whole) and nds(whole) == nds(resumed)
