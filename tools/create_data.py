"""Creates datasets and their infos.

    python tools/create_data.py synthetic --out DIR [--version v1.0-mini|v1.0-trainval] [--scenes N] [--val-scenes V]
        [--seed S]
    python tools/create_data.py nuscenes --root DIR --version V [--max-sweeps 10] [--workers N]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    syn = sub.add_parser("synthetic", help="write a synthetic nuScenes-format world (LiDAR only)")
    syn.add_argument("--out", required=True, help="data root to write (e.g. data/synthetic)")
    syn.add_argument("--version", default="v1.0-mini", choices=["v1.0-mini", "v1.0-trainval"])
    syn.add_argument("--scenes", type=int, default=None, help="number of scenes (default: all of the version's split lists)")
    syn.add_argument("--val-scenes", type=int, default=None,
                     help="how many of the scenes are val scenes (default: about 1 in 5)")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    syn.add_argument("--no-infos", action="store_true", help="do not create the infos and GT database afterwards")
    nus = sub.add_parser("nuscenes", help="create info .pkl files and the GT database of a nuScenes-format root")
    nus.add_argument("--root", required=True, help="nuScenes data root (holds v1.0-*/, samples/, sweeps/)")
    nus.add_argument("--version", default="v1.0-trainval", choices=["v1.0-mini", "v1.0-trainval", "v1.0-test"])
    nus.add_argument("--max-sweeps", type=int, default=10)
    nus.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from perception3d.engine import UserError

    try:
        return run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(args) -> int:
    """Does what ``args`` asks; raises UserError for a root that is not a nuScenes-format one."""
    from perception3d.engine import UserError, check_nuscenes_root

    if args.command == "synthetic":
        from perception3d.datasets.synthetic import create_synthetic_world

        try:
            summary = create_synthetic_world(args.out, args.version, args.scenes, args.seed, args.workers,
                                             n_val=args.val_scenes)
        except ValueError as e:
            raise UserError(str(e)) from e
        state = "already there, kept" if summary["reused"] else f"written in {summary['seconds']} s"
        print(f"synthetic world {args.version} at {args.out}: {state}")
        print(f"  scenes: {summary['splits']['train']} train + {summary['splits']['val']} val, "
              f"{summary['samples']} key frames, {summary['sweeps']} LiDAR sweeps, "
              f"{summary['annotations']} annotations of {summary['instances']} instances")
        if args.no_infos:
            return 0
        root, version, max_sweeps, workers = args.out, args.version, 10, args.workers
    else:
        check_nuscenes_root(args.root, args.version)
        root, version, max_sweeps, workers = args.root, args.version, args.max_sweeps, args.workers
    from perception3d.datasets.create_infos import create_infos

    create_infos(root, version, max_sweeps=max_sweeps, workers=workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
