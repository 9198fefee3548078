"""Two-process training with torch.distributed (gloo on the CPU) launched by tools/dist_train.sh."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
TINY = ROOT / "configs" / "voxelnext" / "voxelnext_tiny_synthetic.py"


def test_two_process_gloo_training_splits_the_data_and_the_loss_falls(synthetic_root, tmp_path):
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
    assert len(seen[0]) == len(seen[1]) > 0
    assert seen[0] != seen[1]  # DefaultSampler hands each rank its own share of the shuffled epoch
    losses = [float(x) for x in re.findall(r"Epoch\(train\) \[1\]\[\d+/\d+\].*? loss: ([0-9.]+)", log)]
    assert len(losses) >= 6 and sum(losses[-3:]) < sum(losses[:3]), losses
    assert (tmp_path / "work" / "epoch_1.pth").is_file()
