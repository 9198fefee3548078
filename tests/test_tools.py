"""tools/train.py and tools/test.py as users call them: clear errors for bad input, checkpoints checked at the
door."""
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from tool_module import load_tool as tool

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "configs" / "voxelnext" / "voxelnext_tiny_synthetic.py")
FULL = str(ROOT / "configs" / "voxelnext" / "voxelnext_voxel0075_nus.py")


class Payload:
    """A class no allow-list names: a pickle holding it is refused by weights_only."""


def run(name, argv, capsys):
    code = tool(name).main(argv)
    return code, capsys.readouterr().err


def test_train_refuses_bad_input_with_one_clear_message(synthetic_root, tmp_path, capsys):
    code, err = run("train", [str(tmp_path / "nope.py")], capsys)
    assert code == 2 and "config file not found" in err and "nope.py" in err

    bad_model = tmp_path / "bad_model.py"
    bad_model.write_text(f"_base_ = [{TINY!r}]\nmodel = dict(type='VoxelNeXtt')\n")
    code, err = run("train", [str(bad_model), "--data-root", synthetic_root, "--work-dir", str(tmp_path / "w")], capsys)
    assert code == 2 and "'VoxelNeXtt' is not a registered model" in err

    empty_root = tmp_path / "empty_root"
    empty_root.mkdir()
    code, err = run("train", [TINY, "--data-root", str(empty_root), "--work-dir", str(tmp_path / "w")], capsys)
    assert code == 2 and "no info file" in err and "nuscenes_infos_train.pkl" in err and "create_data.py" in err

    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, err = run("train", [TINY, "--data-root", synthetic_root, "--work-dir", str(locked / "w")], capsys)
        assert code == 2 and "cannot be written" in err
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    code, err = run("train", [TINY, "--data-root", synthetic_root, "--work-dir", str(a_file / "w")], capsys)
    assert code == 2 and "work dir" in err and "cannot be written" in err

    if not torch.cuda.is_available():
        code, err = run("train", [TINY, "--data-root", synthetic_root, "--work-dir", str(tmp_path / "w"), "--amp"],
                        capsys)
        assert code == 2 and "--amp needs a CUDA GPU" in err


def test_test_refuses_files_that_are_not_this_models_checkpoint(synthetic_root, tmp_path, capsys):
    from mmengine.config import Config

    from perception3d.registry import MODELS

    args = ["--data-root", synthetic_root, "--work-dir", str(tmp_path / "w")]
    code, err = run("test", [TINY, str(tmp_path / "missing.pth")] + args, capsys)
    assert code == 2 and "checkpoint not found" in err

    not_a_checkpoint = tmp_path / "points.pth"
    shutil.copy(next((ROOT / "tests" / "data" / "nuscenes_frame").glob("*.pcd.bin")), not_a_checkpoint)
    code, err = run("test", [TINY, str(not_a_checkpoint)] + args, capsys)
    assert code == 2 and "points.pth is not a loadable checkpoint" in err

    hostile = tmp_path / "hostile.pth"
    torch.save({"state_dict": {}, "payload": Payload()}, hostile)
    code, err = run("test", [TINY, str(hostile)] + args, capsys)
    assert code == 2 and "not a loadable checkpoint" in err

    other = tmp_path / "full_model.pth"
    torch.save({"state_dict": MODELS.build(Config.fromfile(FULL).model).state_dict()}, other)
    code, err = run("test", [TINY, str(other)] + args, capsys)
    assert code == 2 and "holds the weights of another model" in err and "other shapes" in err


def test_train_scales_the_one_cycle_peak_to_the_batch_and_says_so(synthetic_root, tmp_path, capsys):
    """The recipe's lr is for 32 samples per step (8 GPUs × 4); one process with the config's 4 per step trains at
    4/32 of it. mmengine's auto_scale_lr scales only the optimizer's lr, which OneCycleLR overwrites from its
    eta_max: tools/train.py scales eta_max too, and the log says so."""
    from mmengine.runner import Runner

    from perception3d.engine import scale_schedule_lr

    train = tool("train")
    cfg = train.setup(train.parse_args([FULL, "--data-root", synthetic_root, "--work-dir", str(tmp_path / "w")]))
    assert cfg.auto_scale_lr == {"enable": True, "base_batch_size": 32} and cfg.train_dataloader.batch_size == 4
    runner = Runner.from_cfg(cfg)
    assert scale_schedule_lr(runner) == 4 / 32
    one_cycle = next(s for s in runner.param_schedulers if s["type"] == "OneCycleLR")
    assert one_cycle["eta_max"] == pytest.approx(1e-3 * 4 / 32)
    log = (Path(runner.log_dir) / f"{Path(runner.log_dir).name}.log").read_text()
    assert "OneCycleLR peak lr 0.001 -> 0.000125" in log and "1 process(es) x 4 samples = 4 per step" in log

    tiny = train.setup(train.parse_args([TINY, "--data-root", synthetic_root, "--work-dir", str(tmp_path / "t")]))
    assert scale_schedule_lr(Runner.from_cfg(tiny)) is None  # the tiny config keeps its own, measured peak


def one_error_line(code, err):
    """The tool returned 2 (an exception escaping its main() fails the call) with one ``error:`` line → that
    line."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1, (code, err[-3000:])
    return lines[0]


def test_bad_cfg_options_and_data_roots_are_one_line_errors(synthetic_root, tiny_checkpoint, tmp_path, capsys):
    """Values --cfg-options can set that the Runner cannot use, and a --root without nuScenes tables (the devkit's
    bare AssertionError), end as the tools' other errors do: one line naming what is wrong, exit status 2."""
    common = ["--data-root", synthetic_root, "--work-dir", str(tmp_path / "w"), "--cfg-options"]
    cases = [("train", [TINY] + common + ["train_dataloader.batch_size=-1"],
              "train_dataloader.batch_size must be an integer of at least 1, got -1"),
             ("train", [TINY] + common + ["model.backbone.channels=[16,32]"],
              "cannot build it (ValueError: channels must be 6 stage widths"),
             ("test", [TINY, str(tiny_checkpoint)] + common + ["test_dataloader.batch_size=0"],
              "test_dataloader.batch_size must be an integer of at least 1, got 0"),
             ("test", [TINY, str(tiny_checkpoint)] + common + ["model.backbone.channels=[16,32]"],
              "cannot build it (ValueError: channels must be 6 stage widths"),
             ("train", [TINY.replace("voxelnext_tiny", "voxelnext_focal_tiny")] + common +
              ["model.backbone.focal.kernel_size=4"], "cannot build it (ValueError: focal kernel_size must be one of "
                                                      "(3, 5), got 4"),
             ("train", [TINY] + common + ["model.backbone.focal.stages=[1,7]"],
              "backbone focal stages must be distinct stage numbers 1-6")]
    for name, argv, message in cases:
        line = one_error_line(*run(name, argv, capsys))
        assert message in line, (name, argv, line)
    empty_root = tmp_path / "no_tables"
    empty_root.mkdir()
    line = one_error_line(*run("create_data", ["nuscenes", "--root", str(empty_root), "--version", "v1.0-mini"],
                               capsys))
    assert f"--root {empty_root}: no v1.0-mini/ folder of nuScenes tables" in line, line
    (empty_root / "v1.0-mini").mkdir()
    (empty_root / "v1.0-mini" / "sample.json").write_text("[]")
    line = one_error_line(*run("create_data", ["nuscenes", "--root", str(empty_root), "--version", "v1.0-mini"],
                               capsys))
    assert "lacks 12 of the nuScenes tables" in line and "category.json" in line, line


def test_test_out_must_name_a_pickle(synthetic_root, tiny_checkpoint, tmp_path, capsys):
    code, err = run("test", [TINY, str(tiny_checkpoint), "--data-root", synthetic_root, "--work-dir",
                             str(tmp_path / "w"), "--out", str(tmp_path / "dets.json")], capsys)
    assert code == 2 and f"--out must name a .pkl file, got {tmp_path / 'dets.json'}" in err
    assert not (tmp_path / "dets.json").exists()


def test_test_score_thresholds_filter_the_submission_the_dump_and_the_pictures(synthetic_root, tiny_checkpoint,
                                                                             tmp_path, capsys):
    """tools/test.py on the first val frame (test_dataloader.dataset.indices=1): --score-thr leaves the predictions
    below it out of --out and the submission, --show-score-thr draws from its score up. Reference: the same weights
    run on the same frame here, without the tool, and the thresholds applied here; the picture drawn here from
    the predictions this test keeps (LidarVisualizer with no threshold of its own)."""
    import json

    import numpy as np
    from mmengine.dataset import pseudo_collate
    from PIL import Image

    from perception3d.apis import init_model
    from perception3d.datasets import NuScenesDataset
    from perception3d.datasets.transforms import LoadPoints, LoadSweeps
    from perception3d.evaluation import load_detections
    from perception3d.registry import DATASETS
    from perception3d.visualization import LidarVisualizer

    model = init_model(TINY, str(tiny_checkpoint))
    dataset = DATASETS.build(dict(model.cfg.test_dataloader.dataset, data_root=synthetic_root))
    (det,) = model.test_step(pseudo_collate([dataset[0]]))
    order = np.argsort(-det.scores.numpy(), kind="stable")
    scores, boxes, labels = det.scores.numpy()[order], det.boxes.numpy()[order], det.labels.numpy()[order]
    score_thr, show_thr = float(np.quantile(scores, 0.5)), float(np.quantile(scores, 0.9))
    assert len(scores) > 20 and scores[-1] < score_thr < show_thr < 0.3  # each threshold cuts; 0.3: the default

    work = tmp_path / "w"
    code, err = run("test", [TINY, str(tiny_checkpoint), "--data-root", synthetic_root, "--work-dir", str(work),
                             "--out", str(work / "dets.pkl"), "--score-thr", str(score_thr), "--show-dir",
                             str(tmp_path / "show"), "--show-score-thr", str(show_thr), "--cfg-options",
                             "test_dataloader.dataset.indices=1", "test_dataloader.num_workers=0",
                             "test_dataloader.persistent_workers=False"], capsys)
    assert code == 0, err
    kept = scores >= score_thr
    (frame,) = load_detections(str(work / "dets.pkl"))["frames"]
    assert frame["token"] == dataset.get_data_info(0)["token"]
    np.testing.assert_allclose(frame["scores"], scores[kept], rtol=0, atol=1e-6)
    np.testing.assert_allclose(frame["boxes"], boxes[kept], rtol=0, atol=1e-4)
    submitted = json.loads((work / "eval" / "results_nusc.json").read_text())["results"][frame["token"]]
    assert sorted(r["detection_score"] for r in submitted) == pytest.approx(sorted(scores[kept]), abs=1e-6)

    shown = scores >= show_thr
    truth = NuScenesDataset(synthetic_root, "nuscenes_infos_val.pkl", test_mode=True)
    sample = LoadSweeps(1)(LoadPoints()(truth.make_sample(truth.get_data_info(0))))
    expected = LidarVisualizer(name="reference", score_thr=0.0).draw_frame(sample.points, sample.gt_boxes,
                                                                          frame["boxes"][shown[kept]],
                                                                          frame["labels"][shown[kept]])
    picture = np.asarray(Image.open(tmp_path / "show" / f"{frame['token']}.png").convert("RGB"))
    # Open3D's offscreen renderer dithers: two draws of one frame differ by up to 2 levels here and there; a box
    # drawn or not changes pixels by over 100
    assert np.abs(picture.astype(int) - expected).max() <= 4


def test_user_facing_text_points_at_files_a_clone_has(capsys):
    """The README and tools/visualize.py --help name docs a user who clones the project has (docs/...), never
    ../shared/, which lives outside the repository."""
    import re

    with pytest.raises(SystemExit):
        tool("visualize").parse_args(["--help"])
    texts = {"README.md": (ROOT / "README.md").read_text(), "visualize --help": capsys.readouterr().out}
    for name, text in texts.items():
        assert "../shared" not in text, name
        named = set(re.findall(r"(?<![\w/.])((?:docs|tests/data)/[\w./-]+\w)", text))
        assert any(n.startswith("docs/") for n in named), name
        assert all((ROOT / n).exists() for n in named), (name, [n for n in named if not (ROOT / n).exists()])
