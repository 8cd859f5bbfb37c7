"""Official PyTorch checkpoints → keras-instagan: keys, shapes, numerical parity, refusals.

The parity tests read official-format checkpoints of tiny networks and what the PyTorch networks
output on fixed inputs from `tests/data/official_tiny/` (written by `tests/make_reference_data.py`),
so they run without PyTorch; where PyTorch is installed, the tests marked so check that the stored
files are what the reference networks give.
"""

import ast
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from utils import command, max_diff, numpy

from keras_instagan import convert

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = os.path.join(HERE, "data", "official_state_dict_keys.txt")
OFFICIAL_TINY = os.path.join(HERE, "data", "official_tiny")


def official_keys(section):
    """`[(key, shape)]` of one section of the official state_dict listing."""
    rows, inside = [], False
    for line in open(KEYS):
        if line.startswith("#"):
            inside = line.startswith(section)
        elif inside and "\t" in line:
            key, shape = line.rstrip("\n").split("\t")
            rows.append((key, ast.literal_eval(shape)))
    return rows


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(os.path.join(OFFICIAL_TINY, "reference_outputs.npz")))


@pytest.fixture
def checkpoints(tmp_path):
    """A copy of the stored official-format checkpoints (epoch 200, G_A and D_A)."""
    return shutil.copytree(OFFICIAL_TINY, tmp_path / "official", ignore=shutil.ignore_patterns("*.npz"))


def test_reference_networks_have_the_official_keys():
    pytest.importorskip("torch")
    from keras_instagan import torch_reference

    def state_of(module):
        return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]

    assert state_of(torch_reference.ResnetSetGenerator(16, 9)) == official_keys("# SMALL netG_A")
    assert state_of(torch_reference.NLayerSetDiscriminator(16)) == official_keys("# SMALL netD_A")


def test_stored_reference_data_is_what_the_pytorch_networks_give(tmp_path, reference):
    pytest.importorskip("torch")
    import make_reference_data

    make_reference_data.make(tmp_path)
    for name in ("200_net_G_A.pth", "200_net_D_A.pth"):
        made, stored = (convert.load_state_dict(os.path.join(f, name)) for f in (tmp_path, OFFICIAL_TINY))
        assert made.keys() == stored.keys() and all(np.array_equal(made[k], stored[k]) for k in made)
    made = np.load(tmp_path / "reference_outputs.npz")
    for key, value in reference.items():
        # PyTorch's float rounding depends on its thread count (1.5e-6 apart on one core) and on what
        # ran before in the process: 3.9e-5 apart once on a pytest-xdist worker, 2026-12-04.
        np.testing.assert_allclose(made[key], value, atol=1e-4, err_msg=key)


def test_generator_parity(checkpoints, reference):
    generator = convert.generator_from_state_dict(convert.load_state_dict(checkpoints / "200_net_G_A.pth"))
    assert (generator.ngf, generator.n_blocks) == (4, 2)
    masks = reference["generator_input_masks"]
    out_image, out_masks = generator([reference["generator_input_image"], masks])
    expected = reference["generator_output"]
    assert max_diff(out_image, expected[..., :3]) <= 1e-4
    assert max_diff(out_masks, expected[..., 3:]) <= 1e-4
    assert np.all(masks[..., 1] == -1) and np.all(numpy(out_masks)[..., 1] == -1)


def test_discriminator_parity_after_one_power_iteration(checkpoints, reference):
    """One instance and one empty slot: each official spectral-norm layer iterates once, as ours does
    per call."""
    state = convert.load_state_dict(checkpoints / "200_net_D_A.pth")
    discriminator = convert.discriminator_from_state_dict(state)
    inputs = [reference["discriminator_input_image"], reference["discriminator_input_masks"]]
    assert max_diff(discriminator(inputs, training=True), reference["discriminator_output"]) <= 1e-4
    first = discriminator.feature_seg.layers[0]
    assert max_diff(first.u, reference["discriminator_first_u"]) <= 1e-5
    assert max_diff(reference["discriminator_first_u"], state["feature_seg.0.module.weight_u"]) > 1e-3


def test_bad_checkpoints_are_listed(checkpoints):
    state = convert.load_state_dict(checkpoints / "200_net_G_A.pth")
    broken = dict(state)
    del broken["decoder_seg.3.bias"]
    broken["decoder_img.7.weight"] = broken["decoder_img.7.weight"][:, :5]
    broken["encoder_img.99.weight"] = np.zeros(1, "float32")
    with pytest.raises(ValueError) as error:
        convert.generator_from_state_dict(broken, "broken.pth")
    message = str(error.value)
    assert "missing: decoder_seg.3.bias" in message
    assert "unexpected: encoder_img.99.weight" in message
    assert "misshapen: decoder_img.7.weight" in message
    with pytest.raises(ValueError, match="not an official set discriminator"):
        convert.discriminator_from_state_dict(state)


def test_a_corrupt_second_file_or_a_used_folder_writes_nothing(checkpoints, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("G_A", "D_A"):
        (source / f"200_net_{name}.pth").write_bytes((checkpoints / f"200_net_{name}.pth").read_bytes())
    (source / "200_net_G_B.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="200_net_G_B.pth: refused"):
        convert.convert(source, 200, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    used = tmp_path / "used"
    used.mkdir()
    (used / "log.csv").write_text("epoch\n1\n")
    with pytest.raises(ValueError, match="used: not empty; convert into a new folder"):
        convert.convert(checkpoints, 200, used)
    assert os.listdir(used) == ["log.csv"]


def test_command_line_writes_a_run_directory(checkpoints, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(  # the instagan-convert command (python -m keras_instagan.convert is the same)
        [
            command("instagan-convert"),
            "--checkpoints_dir",
            str(checkpoints),
            "--epoch",
            "200",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"G_A.keras", "D_A.keras", "config.json"} <= set(os.listdir(out))
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_instagan.convert",
            "--checkpoints_dir",
            str(tmp_path),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert missing.returncode != 0 and "no latest_net_" in missing.stderr


def test_converted_run_translates_and_continues_training(checkpoints, tmp_path, reference):
    """The converted run directory is what `InstaGAN.from_run`, translate and train.py
    --continue_train take."""
    from keras_instagan import InstaGAN, training
    from keras_instagan.run import RunDirectory

    out = tmp_path / "run"
    assert convert.convert(checkpoints, 200, out) == ["D_A", "G_A"]
    model = InstaGAN.from_run(out)
    assert (model.ngf, model.n_blocks, model.ndf, model.n_layers, model.ins_per) == (4, 2, 4, 3, 2)
    # 3 slots, one empty: translate's first chunk holds both instances (largest first), the second
    # only empty slots, so the result is the official generator's one call on all three
    image, masks = reference["generator_input_image"], reference["generator_input_masks"]
    fake_image, fake_masks = model.translate(image, masks, "AtoB")
    assert max_diff(fake_image, reference["generator_output"][..., :3]) < 1e-4
    assert max_diff(fake_masks, reference["generator_output"][..., 3:]) < 1e-4

    config = {**vars(training.options(ngf=4, ndf=4, n_blocks=2)), "versions": {}}
    run = RunDirectory(out)
    assert training.check_continued_config(run, config)["epoch"] == "200"
    fresh = InstaGAN(ngf=4, ndf=4, n_blocks=2, pool_size=0)
    assert training.resume(fresh, run) == 0
    assert max_diff(fresh.G_A.weights[0], model.G_A.weights[0]) == 0
    with pytest.raises(training.TrainingError, match="--ngf: saved 4, now 16"):
        training.check_continued_config(run, {**config, "ngf": 16})
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        InstaGAN.from_run(checkpoints)
