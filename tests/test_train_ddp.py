"""Two-process training with torch.distributed (gloo on the CPU) launched by tools/dist_train.sh."""
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).parents[1]
TINY = ROOT / "configs" / "voxelnext" / "voxelnext_tiny_synthetic.py"


def test_two_process_gloo_training_splits_the_data_syncs_the_weights_and_the_loss_falls(synthetic_root, tmp_path):
    config = tmp_path / "ddp.py"
    config.write_text(f"_base_ = [{str(TINY)!r}]\n"
                      "custom_imports = dict(imports=['perception3d.engine', 'ddp_probe'], allow_failed_imports=False)\n"
                      "custom_hooks = [dict(type='RecordTokens')]\n")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               PYTHONPATH=f"{ROOT / 'tests'}:{os.environ.get('PYTHONPATH', '')}", MASTER_PORT="29517")
    out = subprocess.run(
        ["bash", str(ROOT / "tools" / "dist_train.sh"), str(config), "2", "--data-root", synthetic_root,
         "--work-dir", str(tmp_path / "work"), "--seed", "0", "--cfg-options", "train_cfg.max_epochs=1",
         "train_dataloader.dataset.indices=32", "train_dataloader.num_workers=1", "val_cfg=None",
         "val_dataloader=None", "val_evaluator=None", "default_hooks.logger.interval=1",
         "default_hooks.checkpoint.save_best=None"], env=env, capture_output=True, text=True, timeout=900)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert "Distributed training: True" in log
    seen = [json.loads((tmp_path / "work" / f"tokens_rank{r}.json").read_text()) for r in range(2)]
    infos = pickle.loads((Path(synthetic_root) / "nuscenes_infos_train.pkl").read_bytes())["data_list"]
    epoch = sorted(info["token"] for info in infos[:32])  # the dataset's indices=32: its first 32 frames
    # the sampler hands each rank its own half of the shuffled epoch: no sample twice, none left out
    twice = set(seen[0]) & set(seen[1])
    assert len(seen[0]) == len(seen[1]) == 16 and not twice, (len(seen[0]), len(seen[1]), twice)
    assert sorted(seen[0] + seen[1]) == epoch, set(epoch) - set(seen[0] + seen[1])
    weights = [torch.load(tmp_path / "work" / f"weights_rank{r}.pth") for r in range(2)]
    for when in ("start", "first_step", "end"):  # DDP broadcasts the start and averages every step's gradients
        differ = [name for name, w in weights[0][when].items() if not torch.equal(w, weights[1][when][name])]
        assert not differ, (when, differ)
    moved = [name for name, w in weights[0]["start"].items() if not torch.equal(w, weights[0]["first_step"][name])]
    assert moved, "the first step changed no weight"
    losses = [float(x) for x in re.findall(r"Epoch\(train\) \[1\]\[\d+/\d+\].*? loss: ([0-9.]+)", log)]
    assert len(losses) >= 6 and sum(losses[-3:]) < sum(losses[:3]), losses
    assert (tmp_path / "work" / "epoch_1.pth").is_file()
