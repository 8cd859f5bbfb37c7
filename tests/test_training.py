"""Training around the model: synthetic data, the unpaired pipeline, callbacks, train.py, resume,
MirroredStrategy."""

import csv
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from utils import numpy, random_image, random_masks

from keras_instagan import InstaGAN, callbacks
from keras_instagan.data import shapes, unpaired_dataset
from keras_instagan.data.unpaired import crop_and_flip
from keras_instagan.metrics import background_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--ngf", "4", "--ndf", "4", "--n_blocks", "1", "--synthetic_count", "2",
        "--eval_samples", "2", "--grid_rows", "1", "--pool_size", "2", "--judge_count", "8"]  # fmt: skip


def test_shapes_are_deterministic_exact_and_sorted():
    (images_a, masks_a), (images_b, masks_b) = shapes.load(count=6, size=40, max_instances=3, seed=7)
    again = shapes.load(count=6, size=40, max_instances=3, seed=7)
    assert np.array_equal(images_a, again[0][0]) and np.array_equal(masks_b, again[1][1])
    assert not np.array_equal(images_a, shapes.load(count=6, size=40, max_instances=3, seed=8)[0][0])
    for images, masks in ((images_a, masks_a), (images_b, masks_b)):
        assert images.shape == (6, 40, 40, 3) and masks.shape == (6, 40, 40, 3)
        assert images.min() >= -1 and images.max() <= 1
        assert set(np.unique(masks)) <= {-1.0, 1.0}
        areas = (masks > 0).sum(axis=(1, 2))
        assert np.all(areas[:, 0] > 0)  # at least one instance
        assert np.all(np.diff(areas, axis=1) <= 0)  # largest first, empty slots last
        assert np.all((masks > 0).sum(-1) <= 1)  # visible regions do not overlap


def median_fill(masks):
    """Median share of its bounding box that the first instance of each image fills."""
    ratios = []
    for mask in masks[..., 0] > 0:
        rows, cols = np.where(mask)
        ratios.append(mask.sum() / ((np.ptp(rows) + 1) * (np.ptp(cols) + 1)))
    return np.median(ratios)


def test_shapes_differ_only_in_shape():
    """Squares fill their bounding box, ellipses about π/4 of it: the domains differ by shape."""
    (_, masks_a), (_, masks_b) = shapes.load(count=20, size=64, max_instances=1, seed=0)
    assert 0.7 < median_fill(masks_a) < 0.85
    assert median_fill(masks_b) > 0.95


def test_triangles_and_crosses_fill_their_boxes_as_drawn():
    """The second pair differs only in shape too: a triangle fills half its box, a cross 5/9 (the
    shape metric tells them apart by form, `test_metrics`)."""
    (images_a, masks_a), (images_b, masks_b) = shapes.load(20, 64, 1, seed=0, pair="triangles_crosses")
    assert abs(median_fill(masks_a) - 1 / 2) < 0.05
    assert abs(median_fill(masks_b) - 5 / 9) < 0.03
    # the same seed draws the same backgrounds, colours and places: only the shapes change
    ellipse_images, ellipse_masks = shapes.load(20, 64, 1, seed=0)[0]
    outside = ~((masks_a > 0).any(-1) | (ellipse_masks > 0).any(-1))
    np.testing.assert_array_equal(images_a[outside], ellipse_images[outside])
    assert not np.array_equal(masks_a, ellipse_masks)
    with pytest.raises(ValueError, match="pair must be one of"):
        shapes.load(2, 32, pair="circles_stars")


def test_eight_instance_variant_holds_up_to_eight_smaller_objects():
    (_, four), _ = shapes.load(60, 64, 4, seed=2)
    (_, eight), _ = shapes.load(60, 64, 8, seed=2)
    counts = (eight.max(axis=(1, 2)) > 0).sum(-1)
    assert eight.shape[-1] == 8 and counts.max() >= 7 and counts.min() >= 1

    def area(masks):
        return (masks > 0).sum(axis=(1, 2))[:, 0].mean()  # the largest object's area

    assert area(eight) < 0.75 * area(four)


def test_crop_and_flip_move_masks_with_the_image():
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (20, 24, 3)).astype("float32")
    masks = np.where(rng.uniform(size=(20, 24, 2)) > 0.5, 1.0, -1.0).astype("float32")
    # channel 0 of the image encodes the masks, so alignment survives any crop/flip
    image[..., 0] = masks[..., 0] * 0.5
    image[..., 1] = masks[..., 1] * 0.25
    for seed in range(8):
        tf.random.set_seed(seed)
        out_image, out_masks = crop_and_flip(image, masks, (12, 16), flip=True)
        out_image, out_masks = numpy(out_image), numpy(out_masks)
        assert out_masks.shape == (12, 16, 2)
        np.testing.assert_array_equal(out_image[..., 0], out_masks[..., 0] * 0.5)
        np.testing.assert_array_equal(out_image[..., 1], out_masks[..., 1] * 0.25)


def test_unpaired_dataset_epoch_and_batches():
    domain_a = shapes.make_domain("A", 5, size=36, max_instances=2)
    domain_b = shapes.make_domain("B", 3, size=36, max_instances=2)
    dataset = unpaired_dataset(domain_a, domain_b, batch_size=2, seed=0, crop=(32, 32), flip=True)
    batches = list(dataset)
    assert len(batches) == 2  # max(5, 3) = 5 samples, incomplete batch dropped
    (image_a, masks_a), (image_b, masks_b) = batches[0]
    assert image_a.shape == (2, 32, 32, 3) and masks_b.shape == (2, 32, 32, 2)
    with pytest.raises(ValueError, match="batch_size=8 is larger than the data set"):
        unpaired_dataset(domain_a, domain_b, batch_size=8)


def test_linear_decay_matches_official_lambda():
    factors = [callbacks.linear_decay_factor(e, niter=2, niter_decay=3) for e in range(1, 6)]
    np.testing.assert_allclose(factors, [1, 1, 0.75, 0.5, 0.25])


def test_background_error():
    image = np.zeros((1, 2, 2, 3), "float32")
    translated = np.full((1, 2, 2, 3), 0.2, "float32")
    translated[0, 0, 0] = 1.0  # changed, but inside a mask
    masks = -np.ones((1, 2, 2, 1), "float32")
    masks[0, 0, 0, 0] = 1.0
    np.testing.assert_allclose(
        background_error(image, translated, masks, -np.ones_like(masks)), [0.2 * 127.5]
    )
    everything = np.ones_like(masks)
    assert np.isnan(background_error(image, translated, everything, everything)[0])


def read_log(run_dir):
    with open(os.path.join(run_dir, "log.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_train_py_writes_the_run_directory_and_resumes(tmp_path, capsys):
    """Graph-mode training through train.py; stop after epoch 1, continue to epoch 2."""
    from keras_instagan.cli import train

    # one step of all 4 slots: every sample has an instance, so every step updates every network
    common = ["--checkpoints_dir", str(tmp_path), "--name", "run", *TINY, "--niter", "1", "--ins_per", "4"]
    first = train.main([*common, "--niter_decay", "0"])
    run_dir = tmp_path / "run"
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
    assert {"cyc_A", "idt_B", "ctx_A", "D_B", "bg_err_A", "lr", "seconds"} <= set(log[0])
    for row in log:  # the synthetic run scores itself every epoch (--eval_every 1), both directions
        for direction in ("AtoB", "BtoA"):
            assert 0.0 <= float(row[f"shape_instances_{direction}"]) <= 1.0
            assert 0.0 <= float(row[f"classification_masked_{direction}"]) <= 1.0
            assert float(row[f"background_error_{direction}"]) > 0.0
    # the continued run scored with the judges of the first part, not with new ones
    assert os.path.getmtime(run_dir / "judges" / "domain_classifier.keras") == judges_written
    assert float(log[1]["lr"]) == pytest.approx(5e-4)  # epoch 2, first decay epoch of 1: half of 1e-3

    with pytest.raises(SystemExit, match="--ngf: saved 4, now 8"):
        train.main([*common, "--niter_decay", "1", "--continue_train", "--ngf", "8"])
    with open(run_dir / "config.json") as f:
        assert json.load(f)["ngf"] == 4


def test_overwrite_deletes_only_what_a_run_wrote(tmp_path):
    from keras_instagan.cli import train

    run_dir = tmp_path / "run"
    (run_dir / "state").mkdir(parents=True)
    for name in ("config.json", "log.csv", "G_A.keras", "notes.txt"):
        (run_dir / name).write_text("x")
    with pytest.raises(SystemExit, match="already holds a run"):
        train.existing_run(str(run_dir), overwrite=False)
    found = train.existing_run(str(run_dir), overwrite=True)
    assert found == ["config.json", "log.csv", "state", "G_A.keras"]
    train.delete_run(str(run_dir), found)
    assert sorted(os.listdir(run_dir)) == ["notes.txt"]
    assert train.existing_run(str(tmp_path / "new"), overwrite=False) == []  # nothing there


def test_bad_data_leaves_no_run_folder(tmp_path):
    from keras_instagan.cli import train

    with pytest.raises(SystemExit, match="trainA: folder not found"):
        train.main(
            ["--dataroot", str(tmp_path / "nowhere"), "--checkpoints_dir", str(tmp_path), "--name", "x"]
        )
    assert not (tmp_path / "x").exists()


def test_csv_log_replaces_the_rows_of_epochs_trained_again(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\n1,0.5\n2,0.4\n3,0.3\n")  # epoch 3's state was never written
    log = callbacks.CSVLog(str(path), append=True)
    log.on_train_begin()
    log.on_epoch_end(2, {"loss": 0.25})  # the resumed run trains epoch 3 again
    log.on_epoch_end(3, {"loss": 0.2})
    assert path.read_text().split() == ["epoch,loss", "1,0.5", "2,0.4", "3,0.25", "4,0.2"]


def test_quality_log_scores_every_k_epochs_and_the_last(tmp_path):
    from keras_instagan import evaluation

    data = dict(zip("AB", shapes.load(4, 32, 4, seed=1)))
    judges = evaluation.train_judges(
        dict(zip("AB", shapes.load(8, 32, 4, seed=2))), shapes.domain_shapes("ellipses_squares")
    )
    model = InstaGAN(ngf=4, ndf=4, n_blocks=1, pool_size=0)
    model.compile()
    quality = callbacks.QualityLog(data, judges, every=2)
    history = model.fit(
        unpaired_dataset(*shapes.load(1, 32, 4, seed=3)), epochs=3, verbose=0, callbacks=[quality]
    )
    for name in ("shape_instances_AtoB", "fid_BtoA", "classification_masked_AtoB", "kid_AtoB"):
        values = history.history[name]
        assert np.isnan(values[0]) and not np.isnan(values[1]) and not np.isnan(values[2]), name
    expected = evaluation.evaluate_model(model, data, judges)  # the last epoch's model
    assert history.history["shape_instances_BtoA"][2] == expected["BtoA"]["shape_instances"]
    assert history.history["background_error_AtoB"][2] == pytest.approx(expected["AtoB"]["background_error"])


def test_sample_grid_cells_are_at_least_96_pixels(tmp_path):
    from PIL import Image

    samples = shapes.load(2, 32, 4, seed=1)
    model = InstaGAN(ngf=4, ndf=4, n_blocks=1, pool_size=0)
    grid = callbacks.SampleGrid(str(tmp_path), samples, rows=2)
    grid.set_model(model)
    grid.on_epoch_end(0, {})
    picture = np.asarray(Image.open(tmp_path / "epoch_001.png"))
    # 2 rows per domain; 6 cells (real, translated, reconstructed; plain and overlaid) of 96 = 3·32
    assert picture.shape == (4 * 96, 6 * 96, 3)
    cell = picture[:96, :96]
    np.testing.assert_array_equal(cell[::3, ::3], callbacks.overlay(samples[0][0][0]))  # whole blocks
    assert callbacks.upscale(np.zeros((40, 50, 3)), 96).shape == (120, 150, 3)
    assert callbacks.upscale(np.zeros((128, 128, 1)), 96).shape == (128, 128, 1)


def test_plot_quality_draws_every_logged_score(tmp_path):
    from keras_instagan.cli import plot_quality

    run = tmp_path / "run"
    run.mkdir()
    with open(run / "log.csv", "w") as f:
        f.write(
            "epoch,seconds,shape_instances_AtoB,shape_instances_BtoA,fid_AtoB\n"
            "1,60,nan,nan,nan\n2,60,0.5,0.7,30\n3,120,0.8,0.9,20\n"
        )
    curves = plot_quality.read_curves(str(run))
    assert curves["shape_instances_AtoB"] == [(2.0, 0.5), (4.0, 0.8)]  # minutes: running sum
    written = plot_quality.main(["--run", str(run), "--out", str(tmp_path / "figs" / "q")])
    assert sorted(os.path.basename(p) for p in written) == ["q_fid.png", "q_shape_instances.png"]
    assert all(os.path.getsize(p) > 1000 for p in written)
    (run / "log.csv").write_text("epoch,seconds\n1,60\n")
    with pytest.raises(SystemExit, match="--eval_every"):
        plot_quality.main(["--run", str(run), "--out", str(tmp_path / "q")])
    with pytest.raises(SystemExit, match="not a train.py run directory"):
        plot_quality.main(["--run", str(tmp_path / "none")])


def test_train_py_rejects_bad_options(capsys):
    from keras_instagan.cli import train

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
        (["--lambda_ctx", "-1"], "--lambda_ctx -1.0: expected at least 0.0"),
        (["--beta1", "1"], "--beta1 1.0: expected below 1"),
        (["--niter", "0", "--niter_decay", "0"], "nothing to train"),
        (["--grid_rows", "5", "--eval_samples", "4"], "at most --eval_samples 4"),
        (["--continue_train", "--overwrite"], "not both"),
    ):
        with pytest.raises(SystemExit):
            train.parse_args(argv)
        assert message in capsys.readouterr().err


MIRRORED = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from keras_instagan import InstaGAN
    from keras_instagan.data import shapes, unpaired_dataset

    a, b = shapes.load(count=2, size=32, max_instances=4, seed=3)
    dataset = unpaired_dataset(a, b, batch_size=2, shuffle=False)
    shape = tf.nest.map_structure(lambda s: tuple(s.shape), dataset.element_spec)

    def trained(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = InstaGAN(ngf=4, ndf=4, n_blocks=1, pool_size=0)
            model.compile(g_optimizer=keras.optimizers.SGD(0.01), d_optimizer=keras.optimizers.SGD(0.01))
            model.build(shape)
        initial = [w.numpy() for w in model.trainable_weights]
        model.fit(dataset, epochs=1, verbose=0)
        steps = int(model.g_optimizer.iterations.numpy())
        return [w.numpy() for w in model.trainable_weights], initial, steps

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    (two, start, steps_two), (one, _, steps_one) = trained(mirrored), trained(tf.distribute.get_strategy())
    diff = max(float(np.abs(x - y).max()) for x, y in zip(two, one))
    moved = max(float(np.abs(x - y).max()) for x, y in zip(one, start))
    print("MAXDIFF", diff, moved, steps_two, steps_one)
""")


@pytest.mark.slow
def test_mirrored_strategy_equals_one_replica():
    """One fit step on a global batch of 2 split over 2 logical CPUs = the same batch on one device."""
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED], capture_output=True, text=True, timeout=900, cwd=ROOT
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("MAXDIFF")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    _, diff, moved, iterations_two, iterations_one = lines[0].split()
    assert float(diff) <= 1e-4 and float(moved) > 1e-2
    assert int(iterations_two) == int(iterations_one) == 2
