"""Small tensors for the tests: images in [-1, 1], instance masks in {−1, +1}."""

import keras
import numpy as np
from keras import ops


def random_image(rng, batch, height, width):
    return rng.uniform(-1.0, 1.0, (batch, height, width, 3)).astype("float32")


def random_masks(rng, batch, height, width, n, empty=()):
    """`(B, H, W, n)` masks, each a random rectangle; `empty` lists (sample, slot) pairs left all −1."""
    masks = -np.ones((batch, height, width, n), "float32")
    for b in range(batch):
        for k in range(n):
            if (b, k) in empty:
                continue
            top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
            bottom = top + rng.integers(2, height // 2)
            right = left + rng.integers(2, width // 2)
            masks[b, top:bottom, left:right, k] = 1.0
    return masks


def numpy(x):
    return ops.convert_to_numpy(x)


def max_diff(a, b):
    return float(np.max(np.abs(numpy(a) - numpy(b))))


def gradients(function, *inputs):
    """The gradients of Σ function(*inputs) for each input (NumPy arrays in and out; zeros for an
    input it does not reach), on the current Keras backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        grads = jax.grad(lambda *xs: jax.numpy.sum(function(*xs)), argnums=tuple(range(len(inputs))))
        return [np.asarray(g) for g in grads(*inputs)]
    if backend == "torch":
        import torch

        xs = [torch.tensor(x, requires_grad=True) for x in inputs]
        grads = torch.autograd.grad(function(*xs).sum(), xs, allow_unused=True)
        return [np.zeros_like(x) if g is None else g.numpy() for g, x in zip(grads, inputs)]
    import tensorflow as tf

    xs = [tf.Variable(x) for x in inputs]
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(function(*xs))
    return [np.zeros_like(x) if g is None else g.numpy() for g, x in zip(tape.gradient(total, xs), inputs)]


def command(name):
    """The path of console command `name` (installed beside this Python by `pip install -e ./runner -e .`)."""
    import os
    import sys

    import pytest

    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(path):
        pytest.fail(f"{name} is not installed beside {sys.executable}: run pip install -e ./runner -e .")
    return path


def record_kernel_forms(monkeypatch):
    """A list that collects, in order, the names of the `keras_instagan.kernels` speed forms called
    from now on (each still computes its result)."""
    from keras_instagan import kernels

    calls = []

    def recording(name, form):
        return lambda *args: calls.append(name) or form(*args)

    for name in (
        "thin_conv",
        "window_grad_conv",
        "window_grad_conv_transpose",
        "winograd_conv",
        "subpixel_conv_transpose",
        "concat_reflect_pad",
    ):
        monkeypatch.setattr(kernels, name, recording(name, getattr(kernels, name)))
    return calls
