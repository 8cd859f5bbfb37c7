"""The training callbacks (`keras_instagan.callbacks`): the official schedule, the CSV log of a
resumed run, the quality log, the sample grids, the resumable state."""

import numpy as np
import pytest

from keras_instagan import InstaGAN, callbacks
from keras_instagan.data import shapes, unpaired_dataset


def test_linear_decay_matches_official_lambda():
    factors = [callbacks.linear_decay_factor(e, niter=2, niter_decay=3) for e in range(1, 6)]
    np.testing.assert_allclose(factors, [1, 1, 0.75, 0.5, 0.25])


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
    trained_on = shapes.load(1, 32, 4, seed=3)
    quality = callbacks.QualityLog(data, judges, every=2, training=dict(zip("AB", trained_on)))
    history = model.fit(unpaired_dataset(*trained_on), epochs=3, verbose=0, callbacks=[quality])
    names = ("shape_instances_AtoB", "fid_BtoA", "classification_masked_AtoB", "kid_AtoB", "D_B_memorised")
    for name in names:
        values = history.history[name]
        assert np.isnan(values[0]) and not np.isnan(values[1]) and not np.isnan(values[2]), name
    expected = evaluation.evaluate_model(model, data, judges)  # the last epoch's model
    assert history.history["shape_instances_BtoA"][2] == expected["BtoA"]["shape_instances"]
    assert history.history["background_error_AtoB"][2] == pytest.approx(expected["AtoB"]["background_error"])
    gaps = evaluation.memorisation(model, dict(zip("AB", trained_on)), data)
    assert history.history["D_A_memorised"][2] == pytest.approx(gaps["D_A"])
    assert history.history["D_B_memorised"][2] == pytest.approx(gaps["D_B"])


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
