"""The run directory (`keras_instagan.run.RunDirectory`): its entries, the config, the saved
networks and the resumable state."""

import json
import os

import numpy as np
import pytest
from utils import numpy

from keras_instagan import InstaGAN
from keras_instagan.networks import SetGenerator
from keras_instagan.run import MODEL_OPTIONS, RunDirectory


def test_entries_and_delete_touch_only_what_a_run_wrote(tmp_path):
    run = RunDirectory(tmp_path / "run")
    assert run.existing_entries() == []  # nothing there yet, nothing created
    assert not os.path.exists(run.path)
    (tmp_path / "run" / "state").mkdir(parents=True)
    (tmp_path / "run" / "epochs" / "001").mkdir(parents=True)  # train.py --save_epoch_freq
    for name in ("config.json", "log.csv", "G_A.keras", "notes.txt"):
        (tmp_path / "run" / name).write_text("x")

    class KilledSave:  # a network or judges whose save dies halfway, leaving its temporary
        name = "D_B"

        def save(self, path):
            os.makedirs(path)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.save_networks([KilledSave()])
    with pytest.raises(KeyboardInterrupt):
        run.save_judges(KilledSave())
    found = run.existing_entries()
    assert found == ["config.json", "log.csv", "state", "epochs", "G_A.keras"] + [
        "judges.tmp",
        "D_B.keras.tmp.keras",
    ]
    run.delete(found)
    assert os.listdir(run.path) == ["notes.txt"]
    with pytest.raises(ValueError, match="'notes.txt' is not an entry of a run directory"):
        run.delete(["notes.txt"])
    with pytest.raises(ValueError, match="network must be one of"):
        run.network("G_C")
    assert run.label() == "run"
    assert run.epoch_directory(30).path == str(tmp_path / "run" / "epochs" / "030")
    assert run.epoch_directory(30).label() == "run, epoch 30"


def test_config_round_trip_and_model_options(tmp_path):
    run = RunDirectory(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="run directory not found"):
        run.read_config()
    run.write_config({"ngf": 4, "ins_per": 1, "lr": 1e-3})
    assert run.read_config() == {"ngf": 4, "ins_per": 1, "lr": 1e-3}
    assert os.listdir(run.path) == ["config.json"]  # no temporary file left
    options = run.model_options()
    assert options == {**MODEL_OPTIONS, "ngf": 4, "ins_per": 1}
    # a converted run records no widths of the networks it holds: they come from the networks
    saved = {"G_A": SetGenerator(ngf=6, n_blocks=3, name="G_A")}
    assert run.model_options({}, saved)["ngf"] == 6 and run.model_options({}, saved)["n_blocks"] == 3
    with pytest.raises(FileNotFoundError, match="not a train.py run directory"):
        run.read_log()


def test_state_round_trip_resumes_every_variable(tmp_path):
    run = RunDirectory(tmp_path / "run")
    model = InstaGAN(ngf=4, ndf=4, n_blocks=1, pool_size=2)
    shape = ((1, 32, 32, 3), (1, 32, 32, 4))
    model.build((shape, shape))
    model.compile()
    with pytest.raises(FileNotFoundError, match="no saved state in"):
        run.restore_state(model)
    assert not run.has_state() and run.trained_directions() == []
    run.save_state(model, 3)
    assert sorted(os.listdir(run.state)) == ["epoch.json", "model.weights.h5"]
    with open(os.path.join(run.state, "epoch.json")) as f:
        assert json.load(f) == {"epochs_done": 3}
    assert run.has_state() and run.trained_directions() == ["AtoB", "BtoA"]

    other = InstaGAN(ngf=4, ndf=4, n_blocks=1, pool_size=2)
    other.build((shape, shape))
    other.compile()
    assert run.restore_state(other) == 3
    for a, b in zip(model.weights, other.weights):  # networks, spectral-norm vectors, pools
        np.testing.assert_array_equal(numpy(a), numpy(b))


def test_saved_networks_load_into_a_model_and_name_a_mismatch(tmp_path):
    run = RunDirectory(tmp_path / "run")
    model = InstaGAN(ngf=4, ndf=4, n_blocks=1)
    paths = run.save_networks([model.G_A, model.D_B])
    assert paths == [run.network("G_A"), run.network("D_B")]
    assert run.trained_directions() == ["AtoB"]
    fresh = InstaGAN(ngf=4, ndf=4, n_blocks=1)
    assert run.load_networks(fresh) == ["D_B", "G_A"]
    for a, b in zip(model.G_A.weights, fresh.G_A.weights):
        np.testing.assert_array_equal(numpy(a), numpy(b))
    assert run.load_generator("AtoB").ngf == 4
    with pytest.raises(FileNotFoundError, match="the run holds no BtoA generator"):
        run.load_generator("BtoA")
    with pytest.raises(ValueError, match=r"G_A.keras: ngf 4 \(model: 8\)"):
        run.load_networks(InstaGAN(ngf=8, ndf=4, n_blocks=1))


def test_from_run_refuses_a_run_with_nothing_to_load(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.write_config({"ngf": 4, "ndf": 4, "n_blocks": 1})
    with pytest.raises(FileNotFoundError, match=r"holds neither G_A.keras … D_B.keras nor state/: nothing"):
        InstaGAN.from_run(run.path)


def test_save_judges_replaces_them_whole_or_not_at_all(tmp_path):
    """`save_judges` writes beside `judges/` and moves the result onto it: a second save replaces the
    first, and a save that fails halfway leaves the judges before it."""

    class Judges:
        def __init__(self, text, fail=False):
            self.text, self.fail = text, fail

        def save(self, directory):
            os.makedirs(directory)
            with open(os.path.join(directory, "plain"), "w") as f:
                f.write(self.text)
            if self.fail:
                raise OSError("disk full")

    run = RunDirectory(tmp_path / "run")
    run.save_judges(Judges("first"))
    run.save_judges(Judges("second"))
    with pytest.raises(OSError, match="disk full"):
        run.save_judges(Judges("third", fail=True))
    with open(os.path.join(run.judges, "plain")) as f:
        assert f.read() == "second"
    run.save_judges(Judges("fourth"))
    assert sorted(os.listdir(run.path)) == ["judges"]
    with open(os.path.join(run.judges, "plain")) as f:
        assert f.read() == "fourth"
