"""tools/create_data.py (both subcommands, and the v1.0-test path without annotations) and tools/benchmark.py
(every mode, small sizes) run end to end as a user types them, checked against the devkit and their references."""
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from nuscenes import NuScenes
from nuscenes.utils import splits

ROOT = Path(__file__).resolve().parents[1]
TABLES_WITH_ANNOTATIONS = ("sample_annotation", "instance")


def run_tool(*args, timeout=900):
    run = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-3000:])
    return run.stdout


def link_sensor_data(src: Path, dst: Path):
    """A new data root that shares ``src``'s point files (symlinks) and has a copy of nothing else."""
    dst.mkdir(parents=True)
    for name in ("samples", "sweeps", "maps", "lidarseg"):
        if (src / name).exists():
            os.symlink(src / name, dst / name)


def infos(root: Path, split: str):
    return pickle.loads((root / f"nuscenes_infos_{split}.pkl").read_bytes())


def test_create_data_nuscenes_writes_the_infos_the_session_world_has(synthetic_root, tmp_path):
    """create_data.py nuscenes on a copy of the session's world (its tables, its point files): the info files
    hold one info per devkit sample of each split, equal to the infos the test session made through the API, and
    the GT database is written."""
    world = Path(synthetic_root)
    root = tmp_path / "root"
    link_sensor_data(world, root)
    shutil.copytree(world / "v1.0-mini", root / "v1.0-mini")
    out = run_tool("tools/create_data.py", "nuscenes", "--root", str(root), "--version", "v1.0-mini",
                   "--max-sweeps", "10", "--workers", "1")
    nusc = NuScenes("v1.0-mini", dataroot=str(root), verbose=False)
    for split in ("train", "val"):
        names = set(getattr(splits, f"mini_{split}"))
        expected = {s["token"] for s in nusc.sample if nusc.get("scene", s["scene_token"])["name"] in names}
        ours, session = infos(root, split), infos(world, split)
        assert {i["token"] for i in ours["data_list"]} == expected and expected
        assert f"nuscenes_infos_{split}.pkl: {len(expected)} key frames" in out
        for a, b in zip(ours["data_list"], session["data_list"]):
            assert a.keys() == b.keys() and a["token"] == b["token"]
            np.testing.assert_array_equal(a["gt_boxes"], b["gt_boxes"])
            assert [s["lidar_path"] for s in a["sweeps"]] == [s["lidar_path"] for s in b["sweeps"]]
    objects = pickle.loads((root / "nuscenes_dbinfos_train.pkl").read_bytes())["objects"]
    session = pickle.loads((world / "nuscenes_dbinfos_train.pkl").read_bytes())["objects"]
    assert "GT database:" in out and sum(map(len, objects.values())) > 0
    assert {k: len(v) for k, v in objects.items()} == {k: len(v) for k, v in session.items()}
    assert (root / "nuscenes_gt_database.bin").read_bytes() == (world / "nuscenes_gt_database.bin").read_bytes()


def test_create_data_nuscenes_on_a_test_split_without_annotations(synthetic_root, tmp_path):
    """A v1.0-test root (the devkit's test scene names, no sample_annotation or instance rows, as nuScenes ships
    its test split): one info per key frame with no ground truth, and no GT database."""
    world = Path(synthetic_root)
    root = tmp_path / "test_root"
    link_sensor_data(world, root)
    tables = root / "v1.0-test"
    shutil.copytree(world / "v1.0-mini", tables)
    for table in TABLES_WITH_ANNOTATIONS:
        (tables / f"{table}.json").write_text("[]")
    (tables / "lidarseg.json").unlink()  # nuScenes-lidarseg labels no test frame either
    scenes = json.loads((tables / "scene.json").read_text())
    for scene, name in zip(scenes, splits.test):
        scene["name"] = name
    (tables / "scene.json").write_text(json.dumps(scenes))
    out = run_tool("tools/create_data.py", "nuscenes", "--root", str(root), "--version", "v1.0-test",
                   "--workers", "1")
    samples = json.loads((tables / "sample.json").read_text())
    test = infos(root, "test")
    assert test["metainfo"]["version"] == "v1.0-test"
    assert sorted(i["token"] for i in test["data_list"]) == sorted(s["token"] for s in samples)
    assert all(len(i.get("gt_boxes", [])) == 0 for i in test["data_list"])
    assert not (root / "nuscenes_dbinfos_train.pkl").exists() and "GT database" not in out


def test_create_data_synthetic_writes_a_world_the_devkit_reads(tmp_path):
    """create_data.py synthetic, one scene without infos: the devkit reads the tables and the scene's LiDAR files
    (key frames and sweeps) all exist."""
    out_dir = tmp_path / "world"
    run_tool("tools/create_data.py", "synthetic", "--out", str(out_dir), "--version", "v1.0-mini", "--scenes", "1",
             "--seed", "7", "--workers", "1", "--no-infos")
    nusc = NuScenes("v1.0-mini", dataroot=str(out_dir), verbose=False)
    assert len(nusc.scene) == 1 and len(nusc.sample) >= 40
    lidar = [sd for sd in nusc.sample_data if sd["channel"] == "LIDAR_TOP"] if "channel" in nusc.sample_data[0] \
        else nusc.sample_data
    assert all((out_dir / sd["filename"]).is_file() for sd in lidar)
    assert not (out_dir / "nuscenes_infos_train.pkl").exists()


@pytest.mark.parametrize("mode, args, reference", [
    ("data", ["--frames", "2"], r"devkit from_file_multisweep \(load only\): +[0-9.]+ key frames/s +ratio [0-9.]+x"),
    ("ops", ["--repeat", "1"], r"spconv PointToVoxel, built \+ called: .* ratio ours/spconv [0-9.]+x time"),
    ("model", ["--config", "configs/voxelnext/voxelnext_tiny_synthetic.py", "--repeat", "1"],
     r"ours against spconv's CPU path, timed in turn \(2 each\): whole frame [0-9]+ ms → [0-9]+ ms, [0-9.]+x faster"
     r"(.|\n)*an exact float32 engine can make the frame at most [0-9.]+x faster(.|\n)*training iteration"
     r"(.|\n)*ours against spconv's CPU path, timed in turn: [0-9]+ ms → [0-9]+ ms per iteration"),
    ("sparse", ["--config", "configs/voxelnext/voxelnext_tiny_synthetic.py", "--repeat", "1"],
     r"SubMConv3d k3, stride 1 \(conv_input\) \(5 → 16, [0-9,]+\) +[0-9.]+ ms +[0-9.]+ ms +[0-9.]+x"),
    ("track", ["--boxes", "20", "--frames", "20"], r"frames/s .*1\.00x the default\)"),
    ("eval", ["--task", "det", "--scenes", "2", "--frames", "10", "--boxes", "40"],
     r"detection: 800 boxes; devkit +[0-9.]+ s, fast +[0-9.]+ s: .* every number equal to 1e-9: yes"),
])
def test_benchmark_mode_runs_and_prints_its_reference(mode, args, reference, synthetic_root):
    extra = ["--data-root", synthetic_root] if mode in ("data", "model") else []
    out = run_tool("tools/benchmark.py", mode, *args, *extra)
    assert re.search(reference, out), out[-3000:]
