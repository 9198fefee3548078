"""Test instrumentation for the DDP test: each rank records the sample tokens it trains on."""
import json
from pathlib import Path

from mmengine.dist import get_rank
from mmengine.hooks import Hook

from perception3d.registry import HOOKS


@HOOKS.register_module()
class RecordTokens(Hook):
    def __init__(self):
        self.tokens = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.tokens += [s.token for s in data_batch["data_samples"]]

    def after_train(self, runner):
        Path(runner.work_dir, f"tokens_rank{get_rank()}.json").write_text(json.dumps(self.tokens))
