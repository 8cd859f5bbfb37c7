"""The console commands of setup.cfg: each has --help and runs on a tiny case."""

import json
import os
import subprocess

import keras
import numpy as np
import pytest
from utils import command

COMMANDS = (
    "instagan-train",
    "instagan-evaluate",
    "instagan-plot-quality",
    "instagan-export",
    "instagan-convert",
    "instagan-translate",
)


def run(name, *args, timeout=600):
    result = subprocess.run([command(name), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name):
    assert run(name, "--help").startswith(f"usage: {name} ")


@pytest.mark.slow
def test_commands_on_a_tiny_run(tmp_path):
    from PIL import Image

    from keras_instagan import InstaGAN

    keras.utils.set_random_seed(0)
    model = InstaGAN(ngf=4, ndf=4, n_blocks=1)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {"ngf": 4, "ndf": 4, "n_blocks": 1, "fineSizeH": 32, "fineSizeW": 32, "ins_max": 4, "ins_per": 2}
        )
    )
    for network in (model.G_A, model.G_B, model.D_A, model.D_B):
        network.save(folder / f"{network.name}.keras")
    (folder / "log.csv").write_text("epoch,seconds,shape_instances_AtoB,shape_instances_BtoA\n1,60,0.5,0.6\n")

    run(
        "instagan-evaluate",
        "--run",
        folder,
        "--count",
        "4",
        "--classifier_count",
        "8",
        "--out",
        tmp_path / "eval",
    )
    assert "| run |" in (tmp_path / "eval.md").read_text()
    run("instagan-plot-quality", "--run", folder, "--out", tmp_path / "curves")
    assert os.path.getsize(tmp_path / "curves_shape_instances.png") > 1000
    run("instagan-export", "--run", folder, "--direction", "AtoB", "--format", "onnx")
    onnx = folder / "exported" / "G_A.onnx"
    assert onnx.exists()

    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(tmp_path / "in.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:20] = 255
    Image.fromarray(mask).save(tmp_path / "m0.png")
    run(
        "instagan-translate",
        "--model",
        onnx,
        "--image",
        tmp_path / "in.png",
        "--masks",
        tmp_path / "m0.png",
        "--out",
        tmp_path / "out.png",
    )
    assert Image.open(tmp_path / "out.png").size == (32, 32) and (tmp_path / "out_0.png").exists()
