"""What tools/train.py and tools/test.py check before mmengine's Runner starts: every user input is refused
with a message naming it and what is wrong, never a traceback from deep inside the Runner."""
from __future__ import annotations

import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import torch
from mmengine.config import Config

from ..utils.config import set_data_root

__all__ = ["UserError", "build_runner", "check_checkpoint", "check_config", "check_nuscenes_root",
           "find_resume_checkpoint", "load_checkpoint_file", "load_config", "require_writable_dir",
           "scale_schedule_lr", "set_epochs"]

# the tables nuscenes-devkit's NuScenes loads from <root>/<version>/
NUSCENES_TABLES = ("category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose",
                   "log", "scene", "sample", "sample_data", "sample_annotation", "map")


class UserError(Exception):
    """A problem with what the user typed or pointed at; the tools print it and exit with status 2."""


def load_config(path: str, cfg_options: Optional[dict] = None, data_root: Optional[str] = None,
                work_dir: Optional[str] = None) -> Config:
    """Reads ``path``, merges ``--cfg-options`` (``data_root=...`` among them rewrites every data_root, as
    ``--data-root`` does), sets ``work_dir`` (default ``work_dirs/<config stem>``) and the devkit evaluators'
    ``out_dir`` (default ``<work_dir>/eval``)."""
    if not Path(path).is_file():
        raise UserError(f"config file not found: {path}")
    try:
        cfg = Config.fromfile(path)
    except Exception as e:  # a syntax error or a missing _base_ file
        raise UserError(f"cannot read config {path}: {e}") from e
    options = dict(cfg_options or {})
    data_root = options.pop("data_root", data_root)
    if options:
        cfg.merge_from_dict(options)
    if data_root is not None:
        set_data_root(cfg, str(data_root).rstrip("/") + "/")
    cfg.work_dir = work_dir or cfg.get("work_dir") or str(Path("work_dirs") / Path(path).stem)
    for name in ("val_evaluator", "test_evaluator"):  # the devkit's files go to <work-dir>/eval unless named
        evaluators = cfg.get(name)
        for evaluator in evaluators if isinstance(evaluators, list) else [evaluators]:
            if isinstance(evaluator, dict) and evaluator.get("type") in ("NuScenesMetric", "LidarSegMetric"):
                evaluator.setdefault("out_dir", str(Path(cfg.work_dir) / "eval"))
    return cfg


def _datasets(node) -> Iterator[dict]:
    """Every dict of a config that names an ``ann_file`` (datasets, however wrapped)."""
    if isinstance(node, dict):
        if "ann_file" in node:
            yield node
        for value in node.values():
            yield from _datasets(value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _datasets(item)


def check_config(cfg: Config, loaders: Sequence[str]) -> None:
    """The model type is registered and each of ``loaders`` (e.g. "train_dataloader") has its info file."""
    from mmengine.registry import init_default_scope

    from ..registry import MODELS

    init_default_scope(cfg.get("default_scope", "perception3d"))
    model_type = cfg.get("model", {}).get("type")
    if model_type is None or MODELS.get(model_type) is None:
        raise UserError(f"config model type {model_type!r} is not a registered model; perception3d has: "
                        f"{', '.join(sorted(MODELS.module_dict))}")
    for name in loaders:
        if name not in cfg:
            raise UserError(f"config has no {name}")
        check_loader_numbers(cfg[name], name)
        for dataset in _datasets(cfg[name]):
            infos = Path(dataset.get("data_root") or "") / dataset["ann_file"]
            if not infos.is_file():
                raise UserError(f"{name}: no info file {infos} (data_root {dataset.get('data_root')!r}); create it "
                                f"with `python tools/create_data.py synthetic --out <root>` or `python "
                                f"tools/create_data.py nuscenes --root <root> --version <version>`, or point "
                                f"--data-root at a root that has it")


def check_loader_numbers(loader: dict, name: str) -> None:
    """A data loader's ``batch_size`` is a positive integer and its ``num_workers`` one of zero or more."""
    for key, least in (("batch_size", 1), ("num_workers", 0)):
        value = loader.get(key, least)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise UserError(f"{name}.{key} must be an integer of at least {least}, got {value!r} (config or "
                            f"--cfg-options)")


def build_runner(cfg: Config):
    """mmengine's ``Runner.from_cfg(cfg)``; a model or setting the config cannot build (a bad --cfg-options value,
    e.g. a backbone's channels) is a UserError naming the config and the first line of what the builder said."""
    from mmengine.runner import Runner

    try:
        return Runner.from_cfg(cfg)
    except (ValueError, TypeError, KeyError, IndexError, AssertionError) as e:
        said = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(f"config {cfg.filename}: cannot build it ({type(e).__name__}: {said})") from e


def check_nuscenes_root(root: str, version: str) -> None:
    """``root`` holds the devkit's ``<version>/`` tables (``category.json``, ``sample.json``, ...)."""
    tables = Path(root) / version
    if not Path(root).is_dir():
        raise UserError(f"--root {root}: no such folder")
    if not tables.is_dir():
        raise UserError(f"--root {root}: no {version}/ folder of nuScenes tables there (is --root the folder "
                        f"holding {version}/, samples/ and sweeps/, and --version right?)")
    missing = [t for t in NUSCENES_TABLES if not (tables / f"{t}.json").is_file()]
    if missing:
        raise UserError(f"--root {root}: {tables} lacks {len(missing)} of the nuScenes tables "
                        f"({', '.join(t + '.json' for t in missing)})")


def require_writable_dir(path: str, what: str = "work dir") -> None:
    """Creates ``path`` if needed and proves a file can be written there."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise UserError(f"{what} {path} cannot be written: {e.strerror or e}") from e


def _step(path: Path) -> int:
    match = re.fullmatch(r"(?:epoch|iter)_(\d+)\.pth", path.name)
    return int(match.group(1)) if match else -1


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` continues from: the one ``last_checkpoint`` names, or, if that file is
    missing, empty or points nowhere (a run killed while writing it), the newest ``epoch_N.pth`` /
    ``iter_N.pth`` in ``work_dir``. None when there is none."""
    pointer = Path(work_dir) / "last_checkpoint"
    if pointer.is_file():
        named = Path(pointer.read_text().strip())
        if named.name and named.is_file():
            return str(named)
    candidates: List[Path] = sorted((p for p in Path(work_dir).glob("*.pth") if _step(p) >= 0), key=_step)
    return str(candidates[-1]) if candidates else None


def load_checkpoint_file(path: str):
    """What ``path`` holds, read with ``torch.load(weights_only=True)`` (plus the mmengine allow-list) onto the
    CPU; raises UserError naming the file when it is missing or not a loadable checkpoint."""
    if not Path(path).is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path} is not a loadable checkpoint ({first})") from e


def check_checkpoint(path: str, model: torch.nn.Module) -> dict:
    """Loads ``path`` (:func:`load_checkpoint_file`) and checks that its weights are this model's. Returns its
    state dict, ``module.`` prefixes (of a DDP-wrapped model) removed, ready for ``model.load_state_dict``;
    raises UserError naming the file and what is wrong."""
    checkpoint = load_checkpoint_file(path)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path} is not a checkpoint: it holds no state_dict of tensors")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of this model's {len(expected)} weights missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} weights this model does not have (e.g. {unexpected[0]})")
        if wrong:
            parts.append(f"{len(wrong)} of other shapes (e.g. {wrong[0]}: {tuple(state[wrong[0]].shape)} in the "
                         f"file, {tuple(expected[wrong[0]].shape)} in the model)")
        raise UserError(f"{path} holds the weights of another model: {'; '.join(parts)}")
    return state


def set_epochs(cfg: Config, epochs: int) -> None:
    """Trains ``epochs`` epochs with the config's schedule stretched or squeezed to fit (as OpenPCDet's
    ``--epochs`` does with its one-cycle): every epoch-based scheduler's begin, end and T_max scale by
    epochs / max_epochs, and a validation interval equal to max_epochs follows it."""
    if epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {epochs}")
    old = cfg.train_cfg.get("max_epochs")
    if old is None:
        raise UserError("--epochs needs an epoch-based train_cfg (max_epochs)")
    factor = epochs / old
    schedulers = cfg.get("param_scheduler") or []
    for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
        if not scheduler.get("by_epoch", True):
            raise UserError(f"--epochs cannot rescale the iteration-based scheduler {scheduler.get('type')}")
        for key in ("begin", "end", "T_max"):
            if key in scheduler:
                scheduler[key] = scheduler[key] * factor
    if cfg.train_cfg.get("val_interval") == old:
        cfg.train_cfg.val_interval = epochs
    cfg.train_cfg.max_epochs = epochs


def scale_schedule_lr(runner) -> Optional[float]:
    """Completes mmengine's ``auto_scale_lr`` for one-cycle schedules; call it between ``Runner.from_cfg`` and
    ``runner.train()``.

    With ``auto_scale_lr = dict(enable=True, base_batch_size=B)`` mmengine multiplies the optimizer's lr by
    (processes × batch_size) / B, but OneCycleLR starts from its own ``eta_max`` / div_factor and would undo it:
    every OneCycleLR's ``eta_max`` is scaled by the same ratio here, and the log says so. Returns the ratio (None
    when auto_scale_lr is off)."""
    auto = runner.auto_scale_lr
    if not auto or not auto.get("enable", False):
        return None
    loader = runner._train_dataloader
    batch = loader["batch_size"] if isinstance(loader, dict) else loader.batch_size
    ratio = runner.world_size * batch / auto["base_batch_size"]
    schedulers = runner.param_schedulers or []
    for spec in schedulers if isinstance(schedulers, list) else [schedulers]:
        if isinstance(spec, dict) and spec.get("type") == "OneCycleLR":
            runner.logger.info(f"auto_scale_lr: {runner.world_size} process(es) x {batch} samples = "
                               f"{runner.world_size * batch} per step against the recipe's "
                               f"{auto['base_batch_size']}: OneCycleLR peak lr {spec['eta_max']:g} -> "
                               f"{spec['eta_max'] * ratio:g}")
            spec["eta_max"] = spec["eta_max"] * ratio
    return ratio
