"""Train a detector from an mmengine config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--epochs N] [--amp] [--data-root PATH]
                          [--cfg-options k=v ...] [--launcher none|pytorch|slurm] [--seed N] [--deterministic]

Logs, checkpoints (one per epoch, written atomically, and the best by NDS) and tensorboard events go to
work_dirs/<config stem>/ unless --work-dir says otherwise. --resume alone continues from the work dir's last
checkpoint with optimizer, lr schedule, iteration and the data order; --resume CKPT from that file.
Several processes: torchrun --nproc_per_node N tools/train.py CONFIG --launcher pytorch (or tools/dist_train.sh).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="config file, e.g. configs/voxelnext/voxelnext_tiny_synthetic.py")
    parser.add_argument("--work-dir", help="where logs and checkpoints go (default work_dirs/<config stem>)")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                        help="continue training: from the work dir's last checkpoint, or from CKPT")
    parser.add_argument("--epochs", type=int, help="train this many epochs, the schedule rescaled to fit")
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    parser.add_argument("--data-root", help="point every dataset, info file and evaluator of the config here")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE",
                        help="override config entries, e.g. train_cfg.max_epochs=2 data_root=data/nuscenes")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm"], default="none")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: drawn and logged)")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic algorithms, for runs that must repeat bit for bit")
    return parser.parse_args(argv)


def setup(args):
    """The checked config of ``args``, ready for ``Runner.from_cfg``."""
    import torch

    from perception3d.engine import (UserError, check_config, find_resume_checkpoint, load_config,
                                     require_writable_dir, set_epochs)

    cfg = load_config(args.config, args.cfg_options, args.data_root, args.work_dir)
    if args.epochs is not None:
        set_epochs(cfg, args.epochs)
    check_config(cfg, ["train_dataloader"] + (["val_dataloader"] if cfg.get("val_cfg") else []))
    require_writable_dir(cfg.work_dir)
    cfg.launcher = args.launcher
    if args.seed is not None or args.deterministic:
        cfg.randomness = dict(seed=args.seed if args.seed is not None else 0, deterministic=args.deterministic)
    if args.amp:
        if not torch.cuda.is_available():
            raise UserError("--amp needs a CUDA GPU: spconv has no fp16 path on the CPU; train without --amp")
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.loss_scale = "dynamic"
    if not torch.cuda.is_available():
        cfg.env_cfg.dist_cfg = dict(cfg.env_cfg.get("dist_cfg", {}), backend="gloo")
        if args.launcher != "none":  # mmengine would hand DDP a CUDA device id
            cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", device_ids=None, broadcast_buffers=False,
                                         find_unused_parameters=False)
    if args.resume == "auto":
        cfg.load_from = find_resume_checkpoint(cfg.work_dir)
        cfg.resume = cfg.load_from is not None
        if not cfg.resume:
            print(f"--resume: no checkpoint in {cfg.work_dir} yet; starting from the beginning", file=sys.stderr)
    elif args.resume:
        if not Path(args.resume).is_file():
            raise UserError(f"--resume: checkpoint not found: {args.resume}")
        cfg.load_from, cfg.resume = args.resume, True
    return cfg


def init_distributed_cpu(launcher: str) -> None:
    """mmengine's pytorch launcher pins a CUDA device; on a CPU machine join the gloo group here instead (the
    world size comes from the launcher's environment, never from a local device count)."""
    import torch
    import torch.distributed as dist

    if launcher == "pytorch" and not torch.cuda.is_available() and not dist.is_initialized():
        dist.init_process_group("gloo", rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmengine.model import is_model_wrapper

    from perception3d.engine import UserError, build_runner, check_checkpoint, scale_schedule_lr

    try:
        cfg = setup(args)
        init_distributed_cpu(args.launcher)
        runner = build_runner(cfg)
        scale_schedule_lr(runner)
        if cfg.get("load_from"):
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            check_checkpoint(cfg.load_from, model)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    runner.train()
    return 0


if __name__ == "__main__":
    sys.exit(main())
