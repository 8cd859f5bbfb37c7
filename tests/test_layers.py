"""Each layer equals its PyTorch counterpart in the official code, weights mapped as `convert` maps them."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from utils import max_diff, numpy, record_kernel_forms

from keras_instagan.kernels import THIN_CHANNELS, xla_kernels
from keras_instagan.layers import (
    FanInUniform,
    FlatRandomNormal,
    ReflectionPadding2D,
    ResnetBlock,
    SpectralConv2D,
    TorchConv2D,
    TorchConv2DTranspose,
    instance_norm,
)

try:
    import torch
except ImportError:
    torch = None
# The tests that run the PyTorch layers themselves; the others run everywhere.
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def to_torch(x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def from_torch(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


def conv_kernel(torch_weight):
    """OIHW (Conv2d) or IOHW (ConvTranspose2d) → Keras' HWIO / HWOI: the same transpose."""
    return torch_weight.detach().numpy().transpose(2, 3, 1, 0)


@pytest.fixture
def x():
    return np.random.default_rng(0).standard_normal((2, 12, 16, 5)).astype("float32")


@needs_torch
def test_reflection_padding_matches_torch(x):
    expected = from_torch(torch.nn.ReflectionPad2d(3)(to_torch(x)))
    assert max_diff(ReflectionPadding2D(3)(x), expected) == 0.0


@needs_torch
def test_instance_norm_matches_torch(x):
    expected = from_torch(torch.nn.InstanceNorm2d(5)(to_torch(x)))
    assert max_diff(instance_norm()(x), expected) < 1e-5


@needs_torch
@pytest.mark.parametrize("kernel_size,strides,padding", [(7, 1, 0), (3, 2, 1), (4, 2, 1), (4, 1, 1)])
def test_torch_conv_matches_torch(x, kernel_size, strides, padding):
    ref = torch.nn.Conv2d(5, 3, kernel_size, strides, padding)
    layer = TorchConv2D(3, kernel_size, strides=strides, torch_padding=padding)
    layer.build(x.shape)
    layer.set_weights([conv_kernel(ref.weight), ref.bias.detach().numpy()])
    expected = from_torch(ref(to_torch(x)))
    assert layer.compute_output_shape(x.shape) == expected.shape
    assert max_diff(layer(x), expected) < 1e-5


def forward_and_gradients(layer, x, upstream):
    """`layer(x, training=True)`, and the gradients of Σ layer(x)·upstream for x and each trainable weight."""
    inputs = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        y = layer(inputs, training=True)
        loss = tf.reduce_sum(y * upstream)
    return y, tape.gradient(loss, [inputs] + layer.trainable_weights)


@pytest.mark.backends("tensorflow")
@needs_torch
@pytest.mark.parametrize("kernel_size,padding,filters", [(7, 0, 3), (4, 1, 1), (3, 1, 4)])
def test_thin_conv_training_path_matches_torch_forward_and_gradient(x, kernel_size, padding, filters):
    """With `training=True` a convolution to ≤ 4 channels runs as `thin_conv` (a matrix product and
    shifted sums with a hand-written gradient): output and every gradient must still be Conv2d's."""
    ref = torch.nn.Conv2d(5, filters, kernel_size, 1, padding)
    layer = TorchConv2D(filters, kernel_size, torch_padding=padding)
    layer.build(x.shape)
    layer.set_weights([conv_kernel(ref.weight), ref.bias.detach().numpy()])

    x_torch = to_torch(x).requires_grad_()
    expected = ref(x_torch)
    upstream = np.random.default_rng(1).standard_normal(from_torch(expected).shape).astype("float32")
    (expected * to_torch(upstream)).sum().backward()

    y, (grad_x, grad_kernel, grad_bias) = forward_and_gradients(layer, x, upstream)
    assert max_diff(y, from_torch(expected)) < 1e-5
    assert max_diff(grad_x, from_torch(x_torch.grad)) < 1e-5
    assert max_diff(grad_kernel, conv_kernel(ref.weight.grad)) < 1e-4
    assert max_diff(grad_bias, ref.bias.grad.numpy()) < 1e-4


def assert_matches_torch_in_xla_kernels(layer, ref, x, jit):
    """`layer`'s training call inside `xla_kernels()` (eagerly, or compiled with XLA when `jit`) gives
    `ref`'s output and input, kernel and bias gradients; `layer` holds `ref`'s weights."""
    layer.build(x.shape)
    layer.set_weights([conv_kernel(ref.weight), ref.bias.detach().numpy()])
    x_torch = to_torch(x).requires_grad_()
    expected = ref(x_torch)
    upstream = np.random.default_rng(1).standard_normal(from_torch(expected).shape).astype("float32")
    (expected * to_torch(upstream)).sum().backward()

    def run(x):
        with xla_kernels():
            return forward_and_gradients(layer, x, upstream)

    y, (grad_x, grad_kernel, grad_bias) = (tf.function(run, jit_compile=True) if jit else run)(x)
    assert max_diff(y, from_torch(expected)) < 1e-5
    assert max_diff(grad_x, from_torch(x_torch.grad)) < 1e-5
    assert max_diff(grad_kernel, conv_kernel(ref.weight.grad)) < 1e-4
    assert max_diff(grad_bias, ref.bias.grad.numpy()) < 1e-4


@needs_torch
@pytest.mark.parametrize(
    "kernel_size,strides,padding,jit",
    [
        (3, 2, 1, False),
        (3, 2, 1, True),
        (4, 2, 1, True),
        (3, 3, 0, True),
    ],
)
@pytest.mark.backends("tensorflow")
def test_strided_conv_in_xla_kernels_matches_torch_forward_and_gradient(
    x, kernel_size, strides, padding, jit
):
    """Inside `xla_kernels()` (what `InstaGAN` sets while tracing its XLA programs) a training call of
    a strided convolution runs as `window_grad_conv`: output and every gradient must still be
    Conv2d's, eagerly and compiled with XLA, also where the stride leaves input rows unused."""
    assert_matches_torch_in_xla_kernels(
        TorchConv2D(6, kernel_size, strides=strides, torch_padding=padding),
        torch.nn.Conv2d(5, 6, kernel_size, strides, padding),
        x,
        jit,
    )


@pytest.mark.backends("tensorflow")
@needs_torch
@pytest.mark.parametrize("jit", [False, True])
def test_conv_transpose_in_xla_kernels_matches_torch_forward_and_gradient(x, jit):
    """Inside `xla_kernels()` a training call of the upsampling layer runs as
    `window_grad_conv_transpose`: output and every gradient must still be ConvTranspose2d's."""
    assert_matches_torch_in_xla_kernels(
        TorchConv2DTranspose(6),
        torch.nn.ConvTranspose2d(5, 6, 3, 2, 1, output_padding=1),
        x,
        jit,
    )


@pytest.mark.backends("tensorflow")
@needs_torch
@pytest.mark.parametrize("shape,jit", [((2, 12, 16, 5), False), ((2, 12, 16, 5), True), ((1, 9, 8, 5), True)])
def test_winograd_conv_in_xla_kernels_matches_torch_forward_and_gradient(shape, jit):
    """Inside `xla_kernels()` a training call of a 3×3 stride-1 convolution (the residual blocks')
    runs as `winograd_conv`: output and every gradient must still be Conv2d's, eagerly and compiled
    with XLA, also where the output height is odd (a zero row is added, its outputs cut off)."""
    x = np.random.default_rng(2).standard_normal(shape).astype("float32")
    assert_matches_torch_in_xla_kernels(TorchConv2D(6, 3), torch.nn.Conv2d(5, 6, 3), x, jit)


@pytest.mark.backends("tensorflow")
def test_each_layer_takes_its_form(x, monkeypatch):
    """Through `kernels`: `thin_conv` for thin training calls (≤ `THIN_CHANNELS` outputs, stride 1),
    and inside `xla_kernels()` `window_grad_conv` for strided training calls and every discriminator
    call, `window_grad_conv_transpose` for the upsampling layers' training calls, `winograd_conv` for
    the 3×3 stride-1 ones (not the thin ones, which keep `thin_conv`); none anywhere else, nor where
    the input's height and width are unknown when traced (the plain convolutions give the same
    result)."""
    calls = record_kernel_forms(monkeypatch)
    strided, thin = TorchConv2D(4, 3, strides=2, torch_padding=1), TorchConv2D(4, 3)
    spectral = SpectralConv2D(3, 4, strides=2, torch_padding=1)
    upsampling, residual = TorchConv2DTranspose(4), TorchConv2D(THIN_CHANNELS + 2, 3)
    for layer in (strided, thin, spectral, upsampling, residual):
        layer(x, training=True)
    assert calls == ["thin_conv"]
    calls.clear()
    with xla_kernels():
        for layer in (strided, upsampling, residual, thin):
            layer(x, training=False)
        assert calls == []
        thin(x, training=True)
        assert calls == ["thin_conv"]
        calls.clear()
        strided(x, training=True)
        spectral(x, training=False)
        upsampling(x, training=True)
        residual(x, training=True)
    assert calls == ["window_grad_conv", "window_grad_conv", "window_grad_conv_transpose", "winograd_conv"]

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, x.shape[-1]))])
    def unknown_size(x):
        with xla_kernels():
            return [layer(x, training=True) for layer in (strided, spectral, upsampling, residual)]

    traced = unknown_size(x)  # first: its training call moves the spectral norm's power iteration
    for layer, traced_call in zip((strided, spectral, upsampling, residual), traced):
        assert max_diff(traced_call, layer(x)) < 1e-5
    assert len(calls) == 4


@needs_torch
def test_torch_conv_transpose_matches_torch(x):
    ref = torch.nn.ConvTranspose2d(5, 3, 3, stride=2, padding=1, output_padding=1)
    layer = TorchConv2DTranspose(3)
    layer.build(x.shape)
    layer.set_weights([conv_kernel(ref.weight), ref.bias.detach().numpy()])
    expected = from_torch(ref(to_torch(x)))
    assert expected.shape == (2, 24, 32, 3)
    assert max_diff(layer(x), expected) < 1e-5


@needs_torch
def test_resnet_block_matches_torch(x):
    conv1, conv2 = torch.nn.Conv2d(5, 5, 3), torch.nn.Conv2d(5, 5, 3)
    ref = torch.nn.Sequential(
        torch.nn.ReflectionPad2d(1),
        conv1,
        torch.nn.InstanceNorm2d(5),
        torch.nn.ReLU(),
        torch.nn.ReflectionPad2d(1),
        conv2,
        torch.nn.InstanceNorm2d(5),
    )
    block = ResnetBlock(5)
    block.build(x.shape)
    block.conv1.set_weights([conv_kernel(conv1.weight), conv1.bias.detach().numpy()])
    block.conv2.set_weights([conv_kernel(conv2.weight), conv2.bias.detach().numpy()])
    expected = x + from_torch(ref(to_torch(x)))
    assert max_diff(block(x), expected) < 1e-5


def torch_spectral_conv(weight_bar, bias, u, v, x, stride, padding):
    """The official SpectralNorm forward: one power iteration, then conv with W̄ / σ."""
    matrix = weight_bar.view(weight_bar.shape[0], -1)
    v = matrix.data.t().mv(u)
    v = v / (v.norm() + 1e-12)
    u = matrix.data.mv(v)
    u = u / (u.norm() + 1e-12)
    sigma = u.dot(matrix.mv(v))
    return torch.nn.functional.conv2d(x, weight_bar / sigma, bias, stride, padding), u, v


def spectral_layer(x, rng):
    """A built SpectralConv2D with random weights and unit u, v, and those arrays in the official
    orders: W̄ `(3, 5, 4, 4)` (out, in, kh, kw), bias `(3,)`, u `(3,)`, v `(80,)` (in, kh, kw)."""
    weight_bar = rng.standard_normal((3, 5, 4, 4)).astype("float32")
    bias = rng.standard_normal(3).astype("float32")
    u, v = rng.standard_normal(3).astype("float32"), rng.standard_normal(5 * 4 * 4).astype("float32")
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    layer = SpectralConv2D(3, 4, strides=2, torch_padding=1)
    layer.build(x.shape)
    v_keras = v.reshape(5, 4, 4).transpose(1, 2, 0).reshape(-1)
    layer.set_weights([weight_bar.transpose(2, 3, 1, 0), bias, u, v_keras])
    return layer, (weight_bar, bias, u, v)


def spectral_pair(x, rng):
    """A SpectralConv2D and the official tensors it holds, as PyTorch tensors (W̄ with a gradient)."""
    layer, arrays = spectral_layer(x, rng)
    weight_bar, bias, u, v = (torch.tensor(a) for a in arrays)
    return layer, (weight_bar.requires_grad_(), bias, u, v)


@pytest.mark.backends("tensorflow")
@needs_torch
def test_spectral_conv_matches_official_forward_and_gradient(x):
    """A training call (one power iteration): output, u, v and the gradients of the input and of W̄
    (through σ) equal the official wrapper's, for a random upstream gradient."""
    layer, (weight_bar, bias, u, v) = spectral_pair(x, np.random.default_rng(1))
    x_torch = to_torch(x).requires_grad_()
    expected, u_new, v_new = torch_spectral_conv(weight_bar, bias, u, v, x_torch, 2, 1)
    upstream = np.random.default_rng(3).standard_normal(from_torch(expected).shape).astype("float32")
    (expected * to_torch(upstream)).sum().backward()

    y, (grad_x, grad, _) = forward_and_gradients(layer, x, upstream)

    assert max_diff(y, from_torch(expected)) < 1e-5
    assert max_diff(layer.u, u_new.numpy()) < 1e-6
    assert max_diff(layer.v, v_new.numpy().reshape(5, 4, 4).transpose(1, 2, 0).reshape(-1)) < 1e-6
    assert max_diff(grad_x, from_torch(x_torch.grad)) < 1e-5
    assert max_diff(grad, conv_kernel(weight_bar.grad)) < 1e-4


@pytest.mark.backends("tensorflow")
@needs_torch
def test_spectral_conv_in_xla_kernels_matches_official_forward_and_gradient(x):
    """Inside `xla_kernels()` the spectral-normed convolution's kernel gradient is the window
    product; output and gradients (through σ) must still be the official wrapper's."""
    layer, (weight_bar, bias, u, v) = spectral_pair(x, np.random.default_rng(1))
    x_torch = to_torch(x).requires_grad_()
    expected, _, _ = torch_spectral_conv(weight_bar, bias, u, v, x_torch, 2, 1)
    upstream = np.random.default_rng(3).standard_normal(from_torch(expected).shape).astype("float32")
    (expected * to_torch(upstream)).sum().backward()
    with xla_kernels():
        y, (grad_x, grad, _) = forward_and_gradients(layer, x, upstream)
    assert max_diff(y, from_torch(expected)) < 1e-5
    assert max_diff(grad_x, from_torch(x_torch.grad)) < 1e-5
    assert max_diff(grad, conv_kernel(weight_bar.grad)) < 1e-4


def test_spectral_conv_state_moves_only_in_training(x):
    layer, _ = spectral_layer(x, np.random.default_rng(2))
    u, v = numpy(layer.u), numpy(layer.v)
    layer(x, training=False)
    assert max_diff(layer.u, u) == 0.0 and max_diff(layer.v, v) == 0.0
    layer(x, training=True)
    assert max_diff(layer.u, u) > 1e-3


def test_spectral_conv_sigma_converges_to_largest_singular_value(x):
    layer, _ = spectral_layer(x, np.random.default_rng(3))
    for _ in range(100):
        kernel = layer.normalized_kernel(training=True)
    normalized = numpy(kernel).reshape(-1, 3)
    assert abs(np.linalg.svd(normalized, compute_uv=False)[0] - 1.0) < 1e-4


@pytest.mark.parametrize(
    "flat,keras_form",
    [
        (FlatRandomNormal(0.0, 0.02, seed=3), keras.initializers.RandomNormal(0.0, 0.02, seed=3)),
        (FanInUniform(seed=4), keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform", seed=4)),
    ],
    ids=lambda initializer: type(initializer).__name__,
)
@pytest.mark.parametrize("shape", [(7, 7, 3, 8), (3, 3, 5, 6), (9, 4)])
def test_flat_initializers_draw_what_keras_draws(flat, keras_form, shape):
    """Drawn flat and reshaped, the same values as Keras' own initializer with the same seed (each
    backend fills a shape in flat order); the config round trip keeps them."""
    want = numpy(keras_form(shape))
    assert np.array_equal(numpy(flat(shape)), want)
    clone = type(flat).from_config(flat.get_config())
    assert clone.get_config() == flat.get_config()
    assert np.array_equal(numpy(clone(shape)), want)


@pytest.mark.parametrize(
    "layer",
    [
        ReflectionPadding2D(2),
        TorchConv2D(4, 3, strides=2, torch_padding=1),
        TorchConv2DTranspose(4),
        ResnetBlock(5),
        SpectralConv2D(4, 4, strides=2, torch_padding=1),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_layer_config_round_trip(layer, x):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    y = layer(x)
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    assert max_diff(clone(x), y) == 0.0
    assert clone.compute_output_shape(x.shape) == tuple(y.shape)
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
