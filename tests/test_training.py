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
TINY = ["--ngf", "4", "--ndf", "4", "--n_blocks", "1", "--synthetic_count", "2", "--eval_samples", "2", "--grid_rows", "1",
        "--pool_size", "2"]


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


def test_shapes_differ_only_in_shape():
    """Squares fill their bounding box, ellipses about π/4 of it: the domains differ by shape."""
    def median_fill(masks):
        ratios = []
        for mask in (masks[..., 0] > 0):  # one instance per image
            rows, cols = np.where(mask)
            ratios.append(mask.sum() / ((np.ptp(rows) + 1) * (np.ptp(cols) + 1)))
        return np.median(ratios)

    (_, masks_a), (_, masks_b) = shapes.load(count=20, size=64, max_instances=1, seed=0)
    assert 0.7 < median_fill(masks_a) < 0.85
    assert median_fill(masks_b) > 0.95


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
    np.testing.assert_allclose(background_error(image, translated, masks, -np.ones_like(masks)), [0.2 * 127.5])
    everything = np.ones_like(masks)
    assert np.isnan(background_error(image, translated, everything, everything)[0])


def read_log(run_dir):
    with open(os.path.join(run_dir, "log.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_train_py_writes_the_run_directory_and_resumes(tmp_path):
    """Graph-mode training through train.py; stop after epoch 1, continue to epoch 2."""
    import train

    common = ["--checkpoints_dir", str(tmp_path), "--name", "run", *TINY, "--niter", "1"]
    first = train.main([*common, "--niter_decay", "0"])
    run_dir = tmp_path / "run"
    for name in ("config.json", "log.csv", "samples/epoch_001.png", "state/model.weights.h5",
                 "G_A.keras", "G_B.keras", "D_A.keras", "D_B.keras"):
        assert (run_dir / name).exists(), name
    steps_per_epoch = 2 * first.steps  # 2 samples, batch 1
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

    second = train.main([*common, "--niter_decay", "1", "--continue_train"])
    assert int(second.g_optimizer.iterations) == 2 * steps_per_epoch
    assert int(second.d_optimizer_A.iterations) == int(first.d_optimizer_A.iterations) * 2
    log = read_log(run_dir)
    assert [row["epoch"] for row in log] == ["1", "2"]
    assert {"cyc_A", "idt_B", "ctx_A", "D_B", "bg_err_A", "lr", "seconds"} <= set(log[0])
    assert float(log[1]["lr"]) == pytest.approx(1e-4)  # epoch 2 = first decay epoch of 1

    with pytest.raises(SystemExit, match="--ngf: saved 4, now 8"):
        train.main([*common, "--niter_decay", "1", "--continue_train", "--ngf", "8"])
    with open(run_dir / "config.json") as f:
        assert json.load(f)["ngf"] == 4


def test_train_py_rejects_bad_options(capsys):
    import train

    for argv, message in ((["--fineSizeH", "30"], "multiple of 4"),
                          (["--ins_max", "5"], "multiple of --ins_per"),
                          (["--loadSizeH", "20"], "at least --fineSizeH"),
                          (["--fineSizeW", "20", "--loadSizeW", "20"], "must be at least 24"),
                          (["--coco_annotations", "x.json"], "needs --coco_images, --classA and --classB"),
                          (["--dataroot", "d", "--coco_annotations", "x.json"], "not both")):
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
        return [w.numpy() for w in model.trainable_weights], initial, int(model.g_optimizer.iterations.numpy())

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
    result = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, timeout=900,
                            cwd=ROOT)
    lines = [line for line in result.stdout.splitlines() if line.startswith("MAXDIFF")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    _, diff, moved, iterations_two, iterations_one = lines[0].split()
    assert float(diff) <= 1e-4 and float(moved) > 1e-2
    assert int(iterations_two) == int(iterations_one) == 2
