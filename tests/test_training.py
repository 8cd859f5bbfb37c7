"""A training run from its options (`keras_instagan.training`, `train.py`): the run directory it
writes, resuming, refusing to overwrite, bad options and data."""

import csv
import json
import os

import numpy as np
import pytest
from utils import numpy, random_image, random_masks

from keras_instagan import InstaGAN, callbacks, training

# the synthetic profile (set_image discriminator, paint term) at 32×32 without XLA's compilation
TINY_OPTIONS = dict(
    ngf=4, ndf=4, n_blocks=1, synthetic_count=2, eval_samples=2, grid_rows=1, pool_size=2, judge_count=8,
    loadSizeH=36, loadSizeW=36, fineSizeH=32, fineSizeW=32, jit_compile=False,
)  # fmt: skip
TINY = ["--no_jit_compile"]
TINY += [f"--{key}={value}" for key, value in TINY_OPTIONS.items() if key != "jit_compile"]


def read_log(run_dir):
    with open(os.path.join(run_dir, "log.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_train_py_writes_the_run_directory_and_resumes(tmp_path, capsys):
    """Graph-mode training through train.py; stop after epoch 1, continue to epoch 2."""
    from keras_instagan.cli import train

    # one step of all 4 slots: every sample has an instance, so every step updates every network
    common = ["--checkpoints_dir", str(tmp_path), "--name", "run", *TINY, "--niter", "1", "--ins_per", "4"]
    common += ["--save_epoch_freq", "1"]
    first, run = training.train(  # the library call: options by name, the same run as the command's
        training.options(
            checkpoints_dir=str(tmp_path),
            name="run",
            **TINY_OPTIONS,
            niter=1,
            niter_decay=0,
            ins_per=4,
            save_epoch_freq=1,
        )
    )
    run_dir = tmp_path / "run"
    assert run.path == str(run_dir)
    for name in (
        "config.json",
        "log.csv",
        "samples/epoch_001.png",
        "state/model.weights.h5",
        "G_A.keras",
        "G_B.keras",
        "D_A.keras",
        "D_B.keras",
        "judges/domain_classifier.keras",
        "judges/masked_domain_classifier.keras",
    ):
        assert (run_dir / name).exists(), name
    assert "first training step done" in capsys.readouterr().out
    judges_written = os.path.getmtime(run_dir / "judges" / "domain_classifier.keras")
    steps_per_epoch = 2  # 2 samples, batch 1
    assert int(first.g_optimizer.iterations) == steps_per_epoch
    weights_after_1 = [numpy(w) for w in first.G_A.weights]

    import keras

    reloaded = keras.saving.load_model(run_dir / "G_A.keras")
    assert all(np.array_equal(numpy(a), b) for a, b in zip(reloaded.weights, weights_after_1))
    from_run = InstaGAN.from_run(run_dir)
    assert (from_run.ngf, from_run.n_blocks, from_run.ins_max, from_run.pool_size) == (4, 1, 4, 2)
    assert all(np.array_equal(numpy(a), b) for a, b in zip(from_run.G_A.weights, weights_after_1))
    # --save_epoch_freq 1: epoch 1's networks kept as a run directory of their own
    epoch_1 = InstaGAN.from_run(run_dir / "epochs" / "001")
    assert all(np.array_equal(numpy(a), b) for a, b in zip(epoch_1.G_A.weights, weights_after_1))
    assert [row["epoch"] for row in read_log(run_dir / "epochs" / "001")] == ["1"]
    assert all(np.array_equal(numpy(a), numpy(b)) for a, b in zip(from_run.D_B.weights, first.D_B.weights))
    rng = np.random.default_rng(0)
    image, masks = random_image(rng, 1, 32, 32), random_masks(rng, 1, 32, 32, 3, empty={(0, 2)})
    for got, expected in zip(from_run.translate(image, masks, "BtoA"), first.translate(image, masks, "BtoA")):
        np.testing.assert_allclose(got, expected, atol=1e-5)

    with pytest.raises(
        SystemExit,
        match=r"already holds a run \(config\.json, log\.csv, state.*"
        r"--continue_train, start over with --overwrite",
    ):
        train.main(common)  # the same command again: refused before anything is touched
    assert read_log(run_dir)[0]["epoch"] == "1" and (run_dir / "G_A.keras").exists()

    def killed(self, epoch, logs=None):  # a kill after epoch 2's log row, before its state
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(callbacks.RunState, "on_epoch_end", killed)
        with pytest.raises(KeyboardInterrupt):
            train.main([*common, "--niter_decay", "1", "--continue_train"])
    assert [row["epoch"] for row in read_log(run_dir)] == ["1", "2"]
    second = train.main([*common, "--niter_decay", "1", "--continue_train"])
    assert int(second.g_optimizer.iterations) == 2 * steps_per_epoch
    assert int(second.d_optimizer_A.iterations) == int(first.d_optimizer_A.iterations) * 2
    log = read_log(run_dir)
    assert [row["epoch"] for row in log] == ["1", "2"]  # epoch 2 once: the killed attempt's row replaced
    epoch_2 = InstaGAN.from_run(run_dir / "epochs" / "002")
    assert all(np.array_equal(numpy(a), numpy(b)) for a, b in zip(epoch_2.G_B.weights, second.G_B.weights))
    assert not all(
        np.array_equal(numpy(a), numpy(b)) for a, b in zip(epoch_2.G_B.weights, epoch_1.G_B.weights)
    )
    assert read_log(run_dir / "epochs" / "002") == log
    assert sorted(os.listdir(run_dir / "epochs")) == ["001", "002"]
    assert {"cyc_A", "idt_B", "ctx_A", "D_B", "bg_err_A", "lr", "seconds"} <= set(log[0])
    for row in log:  # the synthetic run scores itself every epoch (--eval_every 1), both directions
        for direction in ("AtoB", "BtoA"):
            assert 0.0 <= float(row[f"shape_instances_{direction}"]) <= 1.0
            assert 0.0 <= float(row[f"classification_masked_{direction}"]) <= 1.0
            assert float(row[f"background_error_{direction}"]) > 0.0
        for network in ("D_A", "D_B"):  # training images against held-out ones: scored, and differently
            gap = float(row[f"{network}_memorised"])
            assert np.isfinite(gap) and gap != 0.0
    # the continued run scored with the judges of the first part, not with new ones
    assert os.path.getmtime(run_dir / "judges" / "domain_classifier.keras") == judges_written
    assert float(log[1]["lr"]) == pytest.approx(5e-4)  # epoch 2, first decay epoch of 1: half of 1e-3

    with pytest.raises(SystemExit, match="--ngf: saved 4, now 8"):
        train.main([*common, "--niter_decay", "1", "--continue_train", "--ngf", "8"])
    with open(run_dir / "config.json") as f:
        assert json.load(f)["ngf"] == 4


def test_judges_learn_in_a_child_process_or_else_here(tmp_path, monkeypatch, capsys):
    """The judges of --eval_every learn in a child process while the run compiles: the same
    classifiers as trained here, saved whole (nothing left beside them). If the child ends without
    them, they learn in this process at the first evaluation."""
    import multiprocessing
    from types import SimpleNamespace

    from keras_instagan import classifier
    from keras_instagan.evaluation import Judges, train_judges
    from keras_instagan.run import RunDirectory

    args = training.options(checkpoints_dir=str(tmp_path), name="run", **TINY_OPTIONS)
    judge_data = training.load_data(args)[2]
    here = train_judges(dict(zip("AB", judge_data())))
    images = judge_data()[0][0]
    run = RunDirectory(tmp_path / "run")
    judges = training.start_judges(args, run, judge_data)()
    assert isinstance(judges, Judges) and judges.masked is not None
    assert sorted(os.listdir(tmp_path / "run")) == ["judges"]
    np.testing.assert_allclose(
        classifier.predict(judges.plain, images), classifier.predict(here.plain, images), atol=1e-5
    )

    class Failed:  # a child process that ends without writing the judges
        exitcode = 1

        def __init__(self, **kwargs):
            pass

        def start(self):
            pass

        def join(self):
            pass

    monkeypatch.setattr(multiprocessing, "get_context", lambda method: SimpleNamespace(Process=Failed))
    run = RunDirectory(tmp_path / "other")
    capsys.readouterr()
    ready = training.start_judges(args, run, judge_data)
    assert not os.path.exists(run.judges)  # nothing learnt yet
    judges = ready()
    assert "process ended with exit code 1; training them here" in capsys.readouterr().out
    assert Judges.saved_in(run.judges)
    np.testing.assert_allclose(
        classifier.predict(judges.plain, images), classifier.predict(here.plain, images), atol=1e-5
    )


def test_bad_data_leaves_no_run_folder(tmp_path):
    from keras_instagan.cli import train

    with pytest.raises(SystemExit, match="trainA: folder not found"):
        train.main(
            ["--dataroot", str(tmp_path / "nowhere"), "--checkpoints_dir", str(tmp_path), "--name", "x"]
        )
    assert not (tmp_path / "x").exists()


def test_train_py_rejects_bad_options(capsys):
    for argv, message in (
        (["--fineSizeH", "30"], "multiple of 4"),
        (["--ins_max", "5"], "multiple of --ins_per"),
        (["--loadSizeH", "20"], "at least --fineSizeH"),
        (["--fineSizeW", "20", "--loadSizeW", "20"], "must be at least 24"),
        (["--coco_annotations", "x.json"], "needs --coco_images, --classA and --classB"),
        (["--dataroot", "d", "--coco_annotations", "x.json"], "not both"),
        (["--lr", "-0.1"], "--lr -0.1: expected a positive learning rate"),
        (["--lr", "nan"], "--lr nan: expected a positive"),
        (["--batch_size", "0"], "--batch_size 0: expected at least 1"),
        (["--pool_size", "-1"], "--pool_size -1: expected at least 0"),
        (["--save_epoch_freq", "-1"], "--save_epoch_freq -1: expected at least 0"),
        (["--lambda_ctx", "-1"], "--lambda_ctx -1.0: expected at least 0.0"),
        (["--beta1", "1"], "--beta1 1.0: expected below 1"),
        (["--niter", "0", "--niter_decay", "0"], "nothing to train"),
        (["--grid_rows", "5", "--eval_samples", "4"], "at most --eval_samples 4"),
        (["--continue_train", "--overwrite"], "not both"),
        (["--eval_phase", "test"], "--eval_phase needs --dataroot"),
        (["--dataroot", "d", "--eval_phase", "train"], "--eval_phase train is the training --phase"),
    ):
        with pytest.raises(SystemExit):
            training.parse_args(argv)
        assert message in capsys.readouterr().err


def test_options_by_name_fill_the_profile_and_check():
    synthetic = training.options(name="demo")
    assert (synthetic.ngf, synthetic.fineSizeH, synthetic.lr, synthetic.eval_every) == (8, 64, 1e-3, 1)
    assert (synthetic.netD, synthetic.lambda_paint, synthetic.jit_compile) == ("set_image", 3.0, True)
    assert synthetic.synthetic_count == 640
    real = training.options(dataroot="datasets/x", niter=3)
    assert (real.ngf, real.n_blocks, real.fineSizeH, real.niter, real.niter_decay) == (64, 9, 200, 3, 100)
    assert (real.netD, real.lambda_paint, real.jit_compile, real.synthetic_count) == ("set", 0.0, False, None)
    assert training.parse_args(["--no_jit_compile"]).jit_compile is False
    assert (synthetic.xla_forms, training.parse_args(["--xla_forms", "off"]).xla_forms) == ("auto", "off")
    assert training.parse_args(["--dataroot", "x", "--jit_compile"]).jit_compile is True
    # XLA cannot hold the cross-replica updates: the profile's XLA gives way to a strategy
    assert training.parse_args(["--strategy", "mirrored"]).jit_compile is False
    assert vars(training.options(ngf=16)) == vars(training.parse_args(["--ngf", "16"]))
    with pytest.raises(TypeError, match=r"unknown training options \['epochs'\]"):
        training.options(epochs=3)
    with pytest.raises(ValueError, match="--ins_max 5 must be a multiple of --ins_per 2"):
        training.options(ins_max=5)


def test_train_py_takes_the_baseline_networks():
    args = training.parse_args(["--netG", "resnet_seg", "--netD", "basic", "--lambda_ctx", "0"])
    assert (args.netG, args.netD, args.lambda_ctx) == ("resnet_seg", "basic", 0.0)
    assert {"netG", "netD"} <= set(training.ARCHITECTURE)  # a continued run must keep its networks
    with pytest.raises(SystemExit):
        training.parse_args(["--netG", "unet_256"])
