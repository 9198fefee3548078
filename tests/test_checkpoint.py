"""mmengine checkpoints resume under torch's ``weights_only`` default, which stays on."""
import pickle
import shutil

import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import perception3d  # noqa: F401  (allow-lists the mmengine checkpoint globals)

ITERS_PER_EPOCH = 4


class TinyModel(BaseModel):
    """A linear regressor with mmengine's ``forward(mode=...)`` contract."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x, y, mode="tensor"):
        out = self.fc(x)
        if mode == "loss":
            return {"loss": ((out - y) ** 2).mean()}
        return out


class Payload:
    """An arbitrary class no allow-list names."""


def collate(batch):
    xs, ys = zip(*batch)
    return {"x": torch.stack(xs), "y": torch.stack(ys)}


def make_loader():
    g = torch.Generator().manual_seed(0)
    n = 4 * ITERS_PER_EPOCH
    data = TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g))
    return DataLoader(data, batch_size=4, collate_fn=collate)


def make_runner(work_dir, max_epochs, name, resume=False):
    return Runner(
        model=TinyModel(),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=make_loader(),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type="Adam", lr=1e-3)),
        param_scheduler=dict(type="OneCycleLR", eta_max=1e-2, by_epoch=False),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)),
        log_level="ERROR",
        resume=resume,
    )


def test_resume_continues_from_saved_epoch(tmp_path):
    make_runner(tmp_path, 2, "first").train()
    runner = make_runner(tmp_path, 3, "resumed", resume=True)
    runner.load_or_resume()
    assert (runner.train_loop.epoch, runner.train_loop.iter) == (2, 2 * ITERS_PER_EPOCH)
    runner.train()
    assert (runner.train_loop.epoch, runner.train_loop.iter) == (3, 3 * ITERS_PER_EPOCH)
    adam_state = runner.optim_wrapper.optimizer.state_dict()["state"]
    assert all(s["step"].item() == 3 * ITERS_PER_EPOCH for s in adam_state.values())


def test_resume_matches_uninterrupted_run(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    make_runner(full, 3, "full").train()
    part.mkdir()
    shutil.copy(full / "epoch_2.pth", part / "epoch_2.pth")
    (part / "last_checkpoint").write_text(str(part / "epoch_2.pth"))
    make_runner(part, 3, "part", resume=True).train()
    expected = torch.load(full / "epoch_3.pth")
    got = torch.load(part / "epoch_3.pth")
    for key, value in expected["state_dict"].items():
        torch.testing.assert_close(got["state_dict"][key], value, rtol=0, atol=0)
    for key, state in expected["optimizer"]["state"].items():
        torch.testing.assert_close(got["optimizer"]["state"][key], state, rtol=0, atol=0)


def test_unlisted_class_is_still_refused(tmp_path):
    path = tmp_path / "payload.pth"
    torch.save({"payload": Payload()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_only_listed_class_methods_resolve(tmp_path):
    path = tmp_path / "method.pth"
    torch.save({"fn": HistoryBuffer.update}, path)
    with pytest.raises(pickle.UnpicklingError, match="refusing getattr"):
        torch.load(path)
