"""The ways a user resumes training: ``--resume`` when ``last_checkpoint`` is missing, empty or names a deleted
file (the newest epoch file is taken), ``--resume CKPT``, and a process killed while it saves a checkpoint,
which must leave the previous checkpoint loadable."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from perception3d.engine import find_resume_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "configs" / "voxelnext" / "voxelnext_tiny_synthetic.py")


def touch_checkpoints(work, *names):
    work.mkdir(parents=True, exist_ok=True)
    for name in names:
        (work / name).write_bytes(b"x")


@pytest.mark.parametrize("pointer", [None, "", "deleted"])
def test_resume_falls_back_to_the_newest_epoch_file_when_last_checkpoint_is_useless(tmp_path, pointer):
    work = tmp_path / "work"
    touch_checkpoints(work, "epoch_2.pth", "epoch_10.pth", "epoch_9.pth", "best_NuScenes_NDS_epoch_9.pth",
                      ".epoch_11.pth.abc.tmp")  # 10 > 9 by number, not by name; a save killed mid-write is no epoch
    if pointer is not None:
        (work / "last_checkpoint").write_text(str(work / "epoch_11.pth") if pointer == "deleted" else pointer)
    assert find_resume_checkpoint(str(work)) == str(work / "epoch_10.pth")


def test_resume_takes_the_file_last_checkpoint_names_and_none_in_an_empty_dir(tmp_path):
    work = tmp_path / "work"
    touch_checkpoints(work, "epoch_1.pth", "epoch_2.pth")
    (work / "last_checkpoint").write_text(str(work / "epoch_1.pth") + "\n")
    assert find_resume_checkpoint(str(work)) == str(work / "epoch_1.pth")
    assert find_resume_checkpoint(str(tmp_path / "nothing_here")) is None


def train(root, work, epochs, *extra):
    """tools/train.py on 4 training frames (2 iterations per epoch), no validation; returns its output."""
    cmd = [sys.executable, "tools/train.py", TINY, "--data-root", root, "--work-dir", str(work), "--seed", "1",
           "--cfg-options", f"train_cfg.max_epochs={epochs}", "train_cfg.val_interval=100",
           "train_dataloader.dataset.indices=4", "default_hooks.logger.interval=1", *extra]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout + run.stderr


def saved_at(path):
    meta = torch.load(path, map_location="cpu", weights_only=True)["meta"]
    return meta["epoch"], meta["iter"]


def test_resume_from_a_named_checkpoint_and_past_a_deleted_one(synthetic_root, tmp_path):
    first = tmp_path / "first"
    train(synthetic_root, first, 2)
    assert saved_at(first / "epoch_2.pth") == (2, 4)

    # --resume CKPT: a new work dir continues from epoch 1 of the first run, not from the beginning
    named = tmp_path / "named"
    out = train(synthetic_root, named, 3, "--resume", str(first / "epoch_1.pth"))
    assert re.search(r"resumed epoch: 1, iter: 2", out), out[-2000:]
    assert not (named / "epoch_1.pth").exists() and saved_at(named / "epoch_3.pth") == (3, 6)

    # --resume while last_checkpoint names a file that is gone: the newest epoch file left (epoch 1)
    (first / "epoch_2.pth").unlink()
    assert Path((first / "last_checkpoint").read_text().strip()).name == "epoch_2.pth"
    out = train(synthetic_root, first, 3, "--resume")
    assert re.search(r"resumed epoch: 1, iter: 2", out), out[-2000:]
    assert saved_at(first / "epoch_3.pth") == (3, 6)


SAVER = """
import sys, torch
from mmengine.runner.checkpoint import save_checkpoint
import perception3d.engine  # registers the atomic_local backend
path, size = sys.argv[1], int(sys.argv[2])
save_checkpoint({"meta": {"epoch": 1}, "state_dict": {"w": torch.zeros(4)}}, path,
                backend_args=dict(backend="atomic_local"))
print("first saved", flush=True)
big = {"meta": {"epoch": 2}, "state_dict": {"w": torch.ones(size)}}
while True:
    save_checkpoint(big, path, backend_args=dict(backend="atomic_local"))
"""


def writing_began(folder, path, first_size):
    """True once the second save shows on disk: the checkpoint's own file changed (a save writing it in place)
    or another file in its folder holds bytes (a save writing beside it)."""
    try:
        return path.stat().st_size != first_size or any(p != path and p.stat().st_size > 0 for p in folder.iterdir())
    except FileNotFoundError:  # renamed or replaced while we looked
        return True


def test_a_process_killed_while_saving_leaves_a_loadable_checkpoint(tmp_path):
    """The CheckpointHook's backend (configs/_base_/default_runtime.py): SIGKILL lands while a 200 MB checkpoint
    is being written over an existing one; the file under the checkpoint's name loads whole."""
    path = tmp_path / "epoch_1.pth"
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(path), str(50_000_000)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # mmengine may log before it
            if line.strip() == "first saved":
                break
        assert path.is_file(), "the first save failed"
        first = path.stat().st_size
        deadline = time.time() + 120
        while not writing_began(tmp_path, path, first):
            assert time.time() < deadline and proc.poll() is None, "the second save never started writing"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    saved = torch.load(path, map_location="cpu", weights_only=True)
    assert saved["meta"]["epoch"] in (1, 2)
    assert saved["state_dict"]["w"].numel() == (4 if saved["meta"]["epoch"] == 1 else 50_000_000)
