"""LiDAR semantic segmentation end to end on the CPU: tools/train.py trains each tiny segmentation config on the
session's lidarseg world, tools/test.py scores it with the devkit's LidarSegEval (mIoU >= 0.5 on mini_val) and
draws its frames, inference_segmentor on a point file gives what tools/test.py wrote for that frame, and
tools/visualize.py colours points by their classes; bad input to the tools is refused clearly."""
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
MINKUNET = "configs/minkunet/minkunet_tiny_synthetic.py"
WAFFLEIRON = "configs/waffleiron/waffleiron_tiny_synthetic.py"
# epochs over the seg world's 160 training frames at 2 per batch (80 iterations each): 640 and 800 iterations,
# measured at mIoU 0.544 and 0.544 (one core each)
EPOCHS = {MINKUNET: 8, WAFFLEIRON: 10}


def run(*args, timeout=1500):
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    return done.stdout


@pytest.mark.first(lane=0)  # both trainings on one worker, which builds their world; the detection one on the other
@pytest.mark.parametrize("config", [MINKUNET, WAFFLEIRON], ids=["minkunet", "waffleiron"])
def test_tiny_segmentation_config_trains_to_half_miou_and_the_tools_agree(config, seg_root, tmp_path):
    from nuscenes import NuScenes
    from nuscenes.eval.lidarseg.evaluate import LidarSegEval

    from perception3d.apis import inference_segmentor, init_model
    from perception3d.datasets import SEG_CLASSES

    work = tmp_path / "work"
    epochs = EPOCHS[config]
    run("tools/train.py", config, "--data-root", seg_root, "--work-dir", str(work), "--epochs", str(epochs),
        "--seed", "0", "--cfg-options", "train_cfg.val_interval=1000")
    checkpoint = str(work / f"epoch_{epochs}.pth")
    draw = config == MINKUNET  # the pictures once: they do not depend on the model
    out = run("tools/test.py", config, checkpoint, "--data-root", seg_root, "--work-dir", str(work),
              *(["--show-dir", str(work / "show")] if draw else []))
    metrics = json.loads((work / "eval" / "lidarseg_metrics.json").read_text())  # the devkit's result, as it is
    print(out[-1500:])
    assert f"mIoU {metrics['miou']:.4f}" in out
    assert metrics["miou"] >= 0.5, metrics
    # the devkit's own evaluation of the result files tools/test.py left gives the same numbers
    nusc = NuScenes("v1.0-mini", seg_root, verbose=False)
    assert LidarSegEval(nusc, str(work / "eval"), "mini_val").evaluate()["miou"] == pytest.approx(metrics["miou"],
                                                                                                  abs=1e-12)
    infos = pickle.loads((Path(seg_root) / "nuscenes_infos_val.pkl").read_bytes())["data_list"]
    if draw:
        pictures = sorted((work / "show").glob("*.png"))
        assert len(pictures) == len(infos)
        assert iio.imread(pictures[0]).shape[:2] == (640, 2 * 640 + 2)  # ground truth beside prediction
    # the programmatic face on the frame's file alone gives the classes tools/test.py wrote for it
    model = init_model(config, checkpoint)
    for info in infos[::40]:
        labels = inference_segmentor(model, os.path.join(seg_root, info["lidar_path"]))
        written = np.fromfile(work / "eval" / "lidarseg" / "mini_val" / f"{info['lidar_token']}_lidarseg.bin",
                              dtype=np.uint8)
        assert labels.shape == written.shape and (labels >= 1).all() and (labels <= len(SEG_CLASSES)).all()
        assert (labels == written).mean() > 0.999, (labels != written).sum()
    if not draw:
        return
    # and the classes colour a picture of that file
    picture = tmp_path / "file.png"
    run("tools/visualize.py", os.path.join(seg_root, infos[0]["lidar_path"]), "--model", config, checkpoint,
        "--colour-by", "label", "--mode", "bev", "--out", str(picture))
    assert picture.is_file()


def _colours_in(image: np.ndarray) -> set:
    return {tuple(c) for c in np.unique(image.reshape(-1, 3), axis=0)}


def test_visualize_colours_points_by_their_ground_truth_or_predicted_classes(seg_root, tmp_path):
    from perception3d.datasets.lidarseg import SEG_CLASSES, SEG_COLOURS, load_point_labels

    info = pickle.loads((Path(seg_root) / "nuscenes_infos_val.pkl").read_bytes())["data_list"][3]
    truth = load_point_labels(os.path.join(seg_root, info["lidarseg_path"]),
                              os.path.getsize(os.path.join(seg_root, info["lidar_path"])) // 20)
    config = "configs/minkunet/minkunet_tiny_synthetic.py"
    picture = tmp_path / "gt.png"
    run("tools/visualize.py", config, "--data-root", seg_root, "--token", info["token"], "--colour-by", "label",
        "--mode", "bev", "--out", str(picture))
    colours = _colours_in(iio.imread(picture))
    present = {SEG_CLASSES[k - 1] for k in np.unique(truth) if k > 0}
    for name in ("driveable_surface", "manmade", "car"):  # big classes: their exact colour is drawn
        assert name in present and tuple(SEG_COLOURS[name]) in colours, name
    # a prediction folder: every point "vegetation" → no road colour left, vegetation's drawn
    folder = tmp_path / "pred" / "lidarseg" / "mini_val"
    folder.mkdir(parents=True)
    np.full(len(truth), SEG_CLASSES.index("vegetation") + 1, dtype=np.uint8).tofile(
        folder / f"{info['lidar_token']}_lidarseg.bin")
    picture = tmp_path / "pred.png"
    run("tools/visualize.py", config, "--data-root", seg_root, "--token", info["token"], "--colour-by", "label",
        "--pred", str(tmp_path / "pred"), "--mode", "bev", "--out", str(picture))
    colours = _colours_in(iio.imread(picture))
    assert tuple(SEG_COLOURS["vegetation"]) in colours and tuple(SEG_COLOURS["driveable_surface"]) not in colours


def test_segmentation_tools_refuse_bad_input(seg_root, tmp_path):
    from perception3d.apis import init_model

    config = "configs/minkunet/minkunet_tiny_synthetic.py"
    torch.manual_seed(0)
    checkpoint = tmp_path / "fresh.pth"
    torch.save({"state_dict": init_model(config).state_dict(), "meta": {}}, checkpoint)

    def refused(*args):
        done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 2, (done.stdout[-1000:], done.stderr[-2000:])
        return done.stderr

    assert "--out and --task track are for detection" in refused(
        "tools/test.py", config, str(checkpoint), "--data-root", seg_root, "--out", str(tmp_path / "r.pkl"))
    point_file = os.path.join(seg_root, pickle.loads((Path(seg_root) / "nuscenes_infos_val.pkl").read_bytes())
                              ["data_list"][0]["lidar_path"])
    assert "--colour-by label on a point file needs --model" in refused(
        "tools/visualize.py", point_file, "--colour-by", "label", "--out", str(tmp_path / "x.png"))
    assert "needs a segmentation model" in refused(
        "tools/visualize.py", point_file, "--colour-by", "label", "--model",
        "configs/voxelnext/voxelnext_tiny_synthetic.py", str(checkpoint), "--out", str(tmp_path / "x.png"))
    assert "does not match the 16 classes of the devkit's lidarseg mapping" in refused(
        "tools/train.py", config, "--data-root", seg_root, "--work-dir", str(tmp_path / "w"),
        "--cfg-options", "model.num_classes=17")
    bad_pred = tmp_path / "bad"
    (bad_pred / "lidarseg" / "mini_val").mkdir(parents=True)
    info = pickle.loads((Path(seg_root) / "nuscenes_infos_val.pkl").read_bytes())["data_list"][0]
    np.ones(5, dtype=np.uint8).tofile(bad_pred / "lidarseg" / "mini_val" / f"{info['lidar_token']}_lidarseg.bin")
    assert "5 classes (0-16 expected) for 34688 points" in refused(
        "tools/visualize.py", config, "--data-root", seg_root, "--index", "0", "--colour-by", "label",
        "--pred", str(bad_pred), "--out", str(tmp_path / "x.png"))
