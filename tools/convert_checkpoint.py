"""Convert another framework's checkpoint into one tools/test.py and tools/train.py load.

    python tools/convert_checkpoint.py openpcdet IN.pth OUT.pth [--config CONFIG]

openpcdet: a VoxelNeXt trained by OpenPCDet (its ``model_state``, e.g. the model zoo's
voxelnext_nuscenes_kernel1.pth) onto the VoxelNeXt of CONFIG (default
configs/voxelnext/voxelnext_voxel0075_nus.py, the same recipe). Every parameter and buffer is placed: spconv
weights of either layout (spconv >= 2.2 or older), the head's per-branch layers, biases before a BatchNorm folded
into its running mean; the result loads strictly (no missing, no unexpected entry) or nothing is written. The file
is read with torch.load(weights_only=True) and OUT is written atomically. As mmdetection3d's tools/model_converters.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_CONFIG = "configs/voxelnext/voxelnext_voxel0075_nus.py"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", choices=["openpcdet"], help="the framework that wrote IN")
    parser.add_argument("input", metavar="IN", help="the checkpoint to convert")
    parser.add_argument("output", metavar="OUT", help="where to write the converted checkpoint")
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / DEFAULT_CONFIG),
                        help=f"the config whose model receives the weights (default {DEFAULT_CONFIG})")
    return parser.parse_args(argv)


def read_openpcdet(path: str) -> tuple:
    """(model_state, description) of an OpenPCDet checkpoint; raises UserError naming the file otherwise."""
    import torch

    from perception3d.engine import UserError, load_checkpoint_file

    checkpoint = load_checkpoint_file(path)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model_state"), dict):
        keys = ", ".join(map(str, list(checkpoint)[:6])) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise UserError(f"{path} is not an OpenPCDet checkpoint: it has no 'model_state' (it holds {keys})")
    state = checkpoint["model_state"]
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: its model_state holds something other than tensors")
    about = f"OpenPCDet {checkpoint.get('version', 'of unknown version')}, epoch {checkpoint.get('epoch', '?')}"
    return state, about


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from perception3d.apis import init_model
    from perception3d.engine import UserError
    from perception3d.models.openpcdet_weights import ConversionError, convert_openpcdet_voxelnext
    from perception3d.utils.io import atomic_write

    try:
        state, about = read_openpcdet(args.input)
        model = init_model(args.config)
        try:
            converted = convert_openpcdet_voxelnext(state, model)
        except ConversionError as e:
            raise UserError(f"{args.input} does not convert to the model of {args.config}: {e}") from e
        model.load_state_dict(converted, strict=True)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    buffer = io.BytesIO()
    torch.save({"state_dict": converted, "meta": {"converted_from": str(args.input), "source": about,
                                                  "config": str(args.config)}}, buffer)
    atomic_write(args.output, buffer.getvalue())
    print(f"{args.input} ({about}, {len(state)} entries) -> {args.output}: {len(converted)} entries of "
          f"{Path(args.config).name}'s model, loaded strictly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
