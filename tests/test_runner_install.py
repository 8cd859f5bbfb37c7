"""`instagan-runner` (runner/) as a distribution of its own: installed into a fresh virtual
environment it brings no TensorFlow, Keras or PyTorch, names its extras when ONNX Runtime is missing,
and `instagan-translate` gives the runner's result. Needs PyPI (or a pip cache) for its packages."""

import json
import os
import shutil
import subprocess
import venv

import keras
import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

from instagan_runner import Runner  # noqa: E402
from keras_instagan import SetGenerator, export  # noqa: E402

RUNNER_SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runner")


def pip(environment, *args):
    result = subprocess.run(
        [os.path.join(environment, "bin", "python"), "-m", "pip", "install", "-q", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def installed(environment):
    listing = subprocess.run(
        [os.path.join(environment, "bin", "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {package["name"].lower().replace("_", "-") for package in json.loads(listing.stdout)}


@pytest.mark.slow
def test_runner_installs_alone_and_translates(tmp_path):
    from PIL import Image

    keras.utils.set_random_seed(0)
    model = export.export_onnx(SetGenerator(ngf=4, n_blocks=1), str(tmp_path / "G_A.onnx"), 2)
    (tmp_path / "G_A.onnx.json").write_text(json.dumps({"ins_per": 2}))
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    masks = [np.zeros((32, 32), bool) for _ in range(3)]
    masks[0][4:20, 4:16], masks[1][18:30, 10:28], masks[2][2:8, 20:30] = True, True, True
    Image.fromarray(image).save(tmp_path / "in.png")
    for k, mask in enumerate(masks):
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / f"m{k}.png")
    arguments = ["--model", model, "--image", tmp_path / "in.png", "--out", tmp_path / "out" / "x.png"]
    arguments += ["--masks", *(tmp_path / f"m{k}.png" for k in range(3))]

    source = shutil.copytree(RUNNER_SOURCE, tmp_path / "runner", ignore=shutil.ignore_patterns("build"))
    environment = str(tmp_path / "venv")
    venv.create(environment, with_pip=True)
    translate = [os.path.join(environment, "bin", "instagan-translate"), *map(str, arguments)]

    pip(environment, str(source))
    assert installed(environment).isdisjoint({"onnxruntime", "onnxruntime-gpu"})
    result = subprocess.run(translate, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "instagan-runner[cpu]" in result.stderr and "instagan-runner[gpu]" in result.stderr

    pip(environment, f"{source}[cpu]")
    packages = installed(environment)
    assert "onnxruntime" in packages and "instagan-runner" in packages
    assert packages.isdisjoint({"tensorflow", "tensorflow-cpu", "keras", "tf-keras", "torch", "jax"})
    result = subprocess.run(translate, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]

    expected, expected_masks = Runner(model).translate(image, masks)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "x.png")), expected)
    for k, mask in enumerate(expected_masks):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / f"x_{k}.png")) > 0, mask)
