"""`keras_instagan.kernels`: each speed form equals the plain operation (`ops.conv`,
`ops.conv_transpose`, reflection padding), forward and backward, eagerly and compiled with XLA; the
entries pick the forms as documented; the switches hold for their own thread only."""

import threading

import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from utils import max_diff, record_kernel_forms

from keras_instagan import kernels


def forward_and_gradients(function, x, kernel, upstream):
    """`function(x, kernel)` and the gradients of Σ function(x, kernel)·upstream for x and kernel."""
    x, kernel = tf.convert_to_tensor(x), tf.convert_to_tensor(kernel)
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        y = function(x, kernel)
        loss = tf.reduce_sum(y * upstream)
    return (y, *tape.gradient(loss, [x, kernel]))


def assert_same_function(form, plain, x, kernel, jit):
    """`form` and `plain` agree on the output and on both gradients (float rounding)."""
    rng = np.random.default_rng(1)
    upstream = rng.standard_normal(ops.shape(plain(x, kernel))).astype("float32")

    def both(x, kernel):
        return [forward_and_gradients(f, x, kernel, upstream) for f in (form, plain)]

    got, want = (tf.function(both, jit_compile=True) if jit else both)(x, kernel)
    scale = max(1.0, float(np.max(np.abs(want[0]))))
    for name, g, w in zip(("output", "input gradient", "kernel gradient"), got, want):
        assert max_diff(g, w) <= 2e-5 * scale * (10 if name == "kernel gradient" else 1), name


def arrays(shape, kernel_shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype("float32"), rng.standard_normal(kernel_shape).astype("float32")


@pytest.mark.parametrize("k,out", [(7, 3), (7, 1), (4, 1), (3, 4)])
def test_thin_conv_is_the_convolution(k, out):
    x, kernel = arrays((2, 12, 14, 5), (k, k, 5, out))
    plain = lambda x, w: ops.conv(x, w, strides=1, padding="valid")  # noqa: E731
    assert_same_function(kernels.thin_conv, plain, x, kernel, jit=False)


@pytest.mark.parametrize(
    "k,strides,size,jit",
    [(3, 2, (12, 16), False), (3, 2, (13, 16), True), (4, 2, (14, 14), True), (3, 3, (12, 17), True)],
)
def test_window_grad_conv_is_the_convolution(k, strides, size, jit):
    """Also where the stride leaves the last input rows or columns unused."""
    x, kernel = arrays((2, *size, 5), (k, k, 5, 6))
    plain = lambda x, w: ops.conv(x, w, strides=strides, padding="valid")  # noqa: E731
    form = lambda x, w: kernels.window_grad_conv(x, w, strides)  # noqa: E731
    assert_same_function(form, plain, x, kernel, jit)


@pytest.mark.parametrize("channels,jit", [(3, False), (3, True), (1, True)])
def test_window_grad_conv_from_few_channels_is_the_convolution(channels, jit):
    """At stride 1 from at most THIN_CHANNELS channels (the generators' first 7×7 layers) its input
    gradient is a thin_conv of the padded output gradient."""
    x, kernel = arrays((2, 13, 12, channels), (7, 7, channels, 6))
    plain = lambda x, w: ops.conv(x, w, strides=1, padding="valid")  # noqa: E731
    form = lambda x, w: kernels.window_grad_conv(x, w, 1)  # noqa: E731
    assert_same_function(form, plain, x, kernel, jit)


@pytest.mark.parametrize("jit", [False, True])
def test_window_grad_conv_transpose_is_the_transposed_convolution(jit):
    x, kernel = arrays((2, 6, 8, 5), (3, 3, 4, 5))
    plain = lambda x, w: ops.conv_transpose(x, w, strides=2, padding="valid")  # noqa: E731
    form = lambda x, w: kernels.window_grad_conv_transpose(x, w, 2)  # noqa: E731
    assert_same_function(form, plain, x, kernel, jit)


@pytest.mark.parametrize("size,jit", [((12, 16), False), ((12, 16), True), ((9, 8), True), ((5, 7), False)])
def test_winograd_conv_is_the_convolution(size, jit):
    """Also with odd output sizes (a zero row or column is added, its outputs cut off)."""
    x, kernel = arrays((2, *size, 5), (3, 3, 5, 6))
    plain = lambda x, w: ops.conv(x, w, strides=1, padding="valid")  # noqa: E731
    assert_same_function(kernels.winograd_conv, plain, x, kernel, jit)


@pytest.mark.parametrize("size", [(6, 8), (5, 7), (1, 1)])
def test_subpixel_conv_transpose_is_the_torch_transposed_convolution(size):
    """PyTorch's ConvTranspose2d(3, stride 2, padding 1, output_padding 1): the valid transposed
    convolution less its first row and column."""
    x, kernel = arrays((2, *size, 5), (3, 3, 4, 5))
    plain = lambda x, w: ops.conv_transpose(x, w, strides=2, padding="valid")[:, 1:, 1:]  # noqa: E731
    assert_same_function(kernels.subpixel_conv_transpose, plain, x, kernel, jit=False)


@pytest.mark.parametrize("padding,size", [(1, (4, 5)), (3, (7, 4))])
def test_concat_reflect_pad_is_reflection_padding(padding, size):
    x = np.random.default_rng(0).standard_normal((2, *size, 3)).astype("float32")
    expected = np.pad(x, [(0, 0), (padding, padding), (padding, padding), (0, 0)], mode="reflect")
    assert max_diff(kernels.concat_reflect_pad(x, padding), expected) == 0.0


@pytest.fixture
def calls(monkeypatch):
    """The names of the forms the entries call, in order."""
    return record_kernel_forms(monkeypatch)


def test_the_entries_pick_the_documented_forms(calls):
    x = np.random.default_rng(0).standard_normal((1, 12, 12, 6)).astype("float32")
    image = np.random.default_rng(1).standard_normal((1, 12, 12, 3)).astype("float32")
    thin, residual, strided = (np.ones(s, "float32") for s in ((7, 7, 6, 3), (3, 3, 6, 6), (4, 4, 6, 6)))
    first, upsampling = np.ones((7, 7, 3, 6), "float32"), np.ones((3, 3, 6, 6), "float32")

    def run_all(training):
        kernels.conv(image, first, 1, training)
        kernels.conv(x, thin, 1, training)
        kernels.conv(x, residual, 1, training)
        kernels.conv(x, strided, 2, training)
        kernels.conv_transpose(x, upsampling, 2, training)
        kernels.discriminator_conv(x, strided, 2)

    run_all(training=False)
    assert calls == []
    run_all(training=True)
    assert calls == ["thin_conv"]
    calls.clear()
    with kernels.xla_kernels():
        run_all(training=False)
        assert calls == ["window_grad_conv"]  # the discriminator's, in every call
        calls.clear()
        run_all(training=True)
    assert calls == [
        "window_grad_conv",
        "thin_conv",
        "winograd_conv",
        "window_grad_conv",
        "window_grad_conv_transpose",
        "window_grad_conv",
    ]
    calls.clear()
    run_all(training=True)
    assert calls == ["thin_conv"]


def test_export_forms_switch_upsampling_and_padding(calls):
    """Inside `export_forms()` every call (training or not) takes the export forms, which give the
    plain results; outside, the plain operations."""
    x = np.random.default_rng(0).standard_normal((1, 6, 6, 6)).astype("float32")
    upsampling = np.random.default_rng(1).standard_normal((3, 3, 4, 6)).astype("float32")
    plain = [kernels.torch_conv_transpose(x, upsampling, False), kernels.reflect_pad(x, 3)]
    assert calls == [] and plain[0].shape == (1, 12, 12, 4) and plain[1].shape == (1, 12, 12, 6)
    with kernels.export_forms():
        forms = [kernels.torch_conv_transpose(x, upsampling, True), kernels.reflect_pad(x, 3)]
    assert calls == ["subpixel_conv_transpose", "concat_reflect_pad"]
    for got, want in zip(forms, plain):
        assert max_diff(got, want) <= 1e-5


def test_the_switch_holds_for_its_own_thread_only(calls):
    """A program traced in another thread while one thread is inside `xla_kernels()` gets the plain
    forms; nested switches restore the outer state."""
    x = np.random.default_rng(0).standard_normal((1, 12, 12, 6)).astype("float32")
    residual = np.ones((3, 3, 6, 6), "float32")
    inside, done = threading.Event(), threading.Event()

    def hold():
        with kernels.xla_kernels(), kernels.xla_kernels():
            inside.set()
            done.wait(30)
            kernels.conv(x, residual, 1, True)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(30)
    kernels.conv(x, residual, 1, True)
    assert calls == []
    done.set()
    holder.join(30)
    assert calls == ["winograd_conv"]
    kernels.conv(x, residual, 1, True)
    assert calls == ["winograd_conv"]
