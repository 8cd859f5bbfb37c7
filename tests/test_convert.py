"""Official PyTorch checkpoints → keras-instagan: keys, shapes, numerical parity, refusals."""

import ast
import os
import subprocess
import sys

import numpy as np
import pytest
from utils import command, max_diff, numpy, random_image, random_masks

from keras_instagan import convert

torch = pytest.importorskip("torch")
import torch_reference  # noqa: E402

KEYS = os.path.join(os.path.dirname(__file__), "data", "official_state_dict_keys.txt")


def official_keys(section):
    """`[(key, shape)]` of one section of the official state_dict listing."""
    if not os.path.exists(KEYS):
        pytest.skip(f"{KEYS} not present")
    rows, inside = [], False
    for line in open(KEYS):
        if line.startswith("#"):
            inside = line.startswith(section)
        elif inside and "\t" in line:
            key, shape = line.rstrip("\n").split("\t")
            rows.append((key, ast.literal_eval(shape)))
    return rows


def state_of(module):
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def test_reference_networks_have_the_official_keys():
    assert state_of(torch_reference.ResnetSetGenerator(16, 9)) == official_keys("# SMALL netG_A")
    assert state_of(torch_reference.NLayerSetDiscriminator(16)) == official_keys("# SMALL netD_A")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("official")
    generator, discriminator = (
        torch_reference.ResnetSetGenerator(8, 9),
        torch_reference.NLayerSetDiscriminator(8),
    )
    torch.save(generator.state_dict(), folder / "200_net_G_A.pth")
    torch.save(discriminator.state_dict(), folder / "200_net_D_A.pth")
    return folder, generator, discriminator


def to_torch(image, masks):
    return torch.from_numpy(np.concatenate([image, masks], -1).transpose(0, 3, 1, 2).copy())


def test_generator_parity(checkpoints):
    folder, reference, _ = checkpoints
    state = convert.load_state_dict(folder / "200_net_G_A.pth")
    generator = convert.generator_from_state_dict(state)
    assert (generator.ngf, generator.n_blocks) == (8, 9)
    rng = np.random.default_rng(0)
    image, masks = random_image(rng, 1, 64, 96), random_masks(rng, 1, 64, 96, 3, empty={(0, 1)})
    with torch.no_grad():
        expected = reference(to_torch(image, masks)).numpy().transpose(0, 2, 3, 1)
    out_image, out_masks = generator([image, masks])
    assert max_diff(out_image, expected[..., :3]) <= 1e-4
    assert max_diff(out_masks, expected[..., 3:]) <= 1e-4
    assert np.all(numpy(out_masks)[..., 1] == -1)


def test_discriminator_parity_after_one_power_iteration(checkpoints):
    folder, _, reference = checkpoints
    discriminator = convert.discriminator_from_state_dict(convert.load_state_dict(folder / "200_net_D_A.pth"))
    rng = np.random.default_rng(1)
    # one instance and one empty slot: each official SN layer iterates once, as ours does per call
    image, masks = random_image(rng, 1, 64, 96), random_masks(rng, 1, 64, 96, 2, empty={(0, 1)})
    reference = torch_reference.NLayerSetDiscriminator(8)
    reference.load_state_dict(torch.load(folder / "200_net_D_A.pth"))
    with torch.no_grad():
        expected = reference(to_torch(image, masks)).numpy().transpose(0, 2, 3, 1)
    assert max_diff(discriminator([image, masks], training=True), expected) <= 1e-4
    first = discriminator.feature_seg.layers[0]
    assert max_diff(first.u, reference.feature_seg[0].module.weight_u.numpy()) <= 1e-5


def test_bad_checkpoints_are_listed(checkpoints, tmp_path):
    folder, _, _ = checkpoints
    state = convert.load_state_dict(folder / "200_net_G_A.pth")
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
    folder, _, _ = checkpoints
    source = tmp_path / "source"
    source.mkdir()
    for name in ("G_A", "D_A"):
        (source / f"200_net_{name}.pth").write_bytes((folder / f"200_net_{name}.pth").read_bytes())
    (source / "200_net_G_B.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="200_net_G_B.pth: refused"):
        convert.convert(source, 200, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    used = tmp_path / "used"
    used.mkdir()
    (used / "log.csv").write_text("epoch\n1\n")
    with pytest.raises(ValueError, match="used: not empty; convert into a new folder"):
        convert.convert(folder, 200, used)
    assert os.listdir(used) == ["log.csv"]


def test_command_line_writes_a_run_directory(checkpoints, tmp_path):
    folder, _, _ = checkpoints
    out = tmp_path / "run"
    result = subprocess.run(  # the instagan-convert command (python -m keras_instagan.convert is the same)
        [
            command("instagan-convert"),
            "--checkpoints_dir",
            str(folder),
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


def test_converted_run_translates_and_continues_training(checkpoints, tmp_path):
    """The converted run directory is what `InstaGAN.from_run`, translate and train.py
    --continue_train take."""
    from keras_instagan import InstaGAN
    from keras_instagan.cli import train

    folder, generator, _ = checkpoints
    out = tmp_path / "run"
    assert convert.convert(folder, 200, out) == ["D_A", "G_A"]
    model = InstaGAN.from_run(out)
    assert (model.ngf, model.n_blocks, model.ndf, model.n_layers, model.ins_per) == (8, 9, 8, 3, 2)
    rng = np.random.default_rng(3)
    image, masks = random_image(rng, 1, 32, 48), random_masks(rng, 1, 32, 48, 2)
    masks = masks[..., np.argsort(-(masks + 1).sum(axis=(0, 1, 2)))]  # one chunk, largest first
    with torch.no_grad():
        expected = generator(to_torch(image, masks)).numpy().transpose(0, 2, 3, 1)
    fake_image, fake_masks = model.translate(image, masks, "AtoB")
    assert max_diff(fake_image, expected[..., :3]) < 1e-4
    assert max_diff(fake_masks, expected[..., 3:]) < 1e-4

    config = {**vars(train.parse_args(["--ngf", "8", "--ndf", "8", "--n_blocks", "9"])), "versions": {}}
    assert train.check_continued_config(str(out), config)["epoch"] == "200"
    fresh = InstaGAN(ngf=8, ndf=8, n_blocks=9, pool_size=0)
    assert train.resume(fresh, str(out)) == 0
    assert max_diff(fresh.G_A.weights[0], model.G_A.weights[0]) == 0
    with pytest.raises(SystemExit, match="--ngf: saved 8, now 16"):
        train.check_continued_config(str(out), {**config, "ngf": 16})
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        InstaGAN.from_run(folder)
