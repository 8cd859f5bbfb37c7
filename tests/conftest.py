"""Tests run on TensorFlow unless `KERAS_BACKEND` says otherwise. The modules that hold the GAN math
(`ALL_BACKENDS`) also run on JAX and PyTorch (`.ci/run`); a test of theirs that needs TensorFlow
machinery (`tf.GradientTape`, `tf.function`, `tf.data`) or an eager training step (which JAX runs only
inside `fit`) says so with `@pytest.mark.backends(...)` and is skipped elsewhere."""

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ALL_BACKENDS = (
    "test_losses.py",
    "test_layers.py",
    "test_networks.py",
    "test_model.py",
    "test_pool.py",
    "test_run.py",
    "test_sampling.py",
)


def pytest_configure(config):
    config.addinivalue_line("markers", "backends(*names): the Keras backends this test runs on")


def pytest_collection_modifyitems(config, items):
    backend = os.environ["KERAS_BACKEND"]
    for item in items:
        marker = item.get_closest_marker("backends")
        if backend != "tensorflow" and os.path.basename(str(item.fspath)) not in ALL_BACKENDS:
            item.add_marker(pytest.mark.skip(reason=f"runs on TensorFlow only, not {backend}"))
        elif marker is not None and backend not in marker.args:
            item.add_marker(pytest.mark.skip(reason=f"needs {' or '.join(marker.args)}, not {backend}"))
