"""Test instrumentation for the DDP test: each rank records the sample tokens it trains on and its weights."""
import json
from pathlib import Path

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from perception3d.registry import HOOKS


def parameters(runner) -> dict:
    """A copy of the model's parameters (name → tensor), without the DDP wrapper's ``module.`` prefix."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@HOOKS.register_module()
class RecordTokens(Hook):
    """Writes ``tokens_rank{r}.json`` (the tokens of the rank's samples, in training order) and
    ``weights_rank{r}.pth`` (its parameters before training, after the first optimizer step and at the end)."""

    def __init__(self):
        self.tokens = []
        self.weights = {}

    def before_train(self, runner):
        self.weights["start"] = parameters(runner)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.tokens += [s.token for s in data_batch["data_samples"]]

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if "first_step" not in self.weights:
            self.weights["first_step"] = parameters(runner)

    def after_train(self, runner):
        self.weights["end"] = parameters(runner)
        Path(runner.work_dir, f"tokens_rank{get_rank()}.json").write_text(json.dumps(self.tokens))
        torch.save(self.weights, Path(runner.work_dir, f"weights_rank{get_rank()}.pth"))
