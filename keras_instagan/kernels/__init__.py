"""Speed forms of the convolutions: the same functions as `keras.ops.conv` and
`keras.ops.conv_transpose` (valid padding, NHWC), computed in ways that train faster where the
backend's own kernels are slow on a CPU. Each agrees with the plain convolution to float rounding,
forward and backward (`tests/test_kernels.py`); inference, and so every export, keeps the plain one.

- `thin_conv` (`thin.py`): stride-1 convolutions to at most `THIN_CHANNELS` channels (the
  generators' last layers), in every training call.
- `window_grad_conv`, `window_grad_conv_transpose` (`window_grad.py`): strided convolutions, the
  upsampling layers and every discriminator convolution, with a one-matrix-product kernel gradient;
  inside `xla_kernels()` only.
- `winograd_conv` (`winograd.py`): 3×3 stride-1 convolutions (the residual blocks'); inside
  `xla_kernels()` only.

The layers call `conv`, `conv_transpose` and `discriminator_conv`, which pick the form.
`xla_kernels()` is entered by whatever traces an XLA program (`InstaGAN.compile(jit_compile=True)`);
it holds for the current thread and context only (`contextvars`), so a program traced elsewhere at
the same time is not affected.
"""

import contextlib
import contextvars

from keras import ops

from keras_instagan.kernels.thin import THIN_CHANNELS, thin_conv
from keras_instagan.kernels.window_grad import window_grad_conv, window_grad_conv_transpose
from keras_instagan.kernels.winograd import winograd_conv

__all__ = [
    "THIN_CHANNELS",
    "conv",
    "conv_transpose",
    "discriminator_conv",
    "thin_conv",
    "window_grad_conv",
    "window_grad_conv_transpose",
    "winograd_conv",
    "xla_kernels",
]

_XLA_KERNELS = contextvars.ContextVar("keras_instagan_xla_kernels", default=False)


@contextlib.contextmanager
def xla_kernels():
    """Within it (this thread and context), training calls take the XLA forms: `window_grad_conv`
    for strided convolutions, `window_grad_conv_transpose` for transposed ones and `winograd_conv`
    for 3×3 stride-1 ones."""
    token = _XLA_KERNELS.set(True)
    try:
        yield
    finally:
        _XLA_KERNELS.reset(token)


def _xla_forms_apply(x):
    """Inside `xla_kernels()`, with x's height and width known (the forms slice by them)."""
    return _XLA_KERNELS.get() and x.shape[1] is not None and x.shape[2] is not None


def conv(x, kernel, strides, training):
    """Valid convolution `(B, H, W, C)` * `(k, k, C, O)` at stride `strides` (both axes) →
    `(B, (H − k) // s + 1, (W − k) // s + 1, O)`, in the form for this call: `thin_conv` for thin
    training calls, the XLA forms inside `xla_kernels()`, else `ops.conv`."""
    k, out = kernel.shape[0], kernel.shape[-1]
    if training and out <= THIN_CHANNELS and k > 1 and strides == 1:
        return thin_conv(x, kernel)
    if training and _xla_forms_apply(x) and strides > 1:
        return window_grad_conv(x, kernel, strides)
    if training and _xla_forms_apply(x) and k == 3:
        return winograd_conv(x, kernel)
    return ops.conv(x, kernel, strides=strides, padding="valid")


def conv_transpose(x, kernel, strides, training):
    """Valid transposed convolution `(B, H, W, C)` with kernel `(k, k, O, C)` at stride `strides` →
    `(B, (H − 1)·s + k, (W − 1)·s + k, O)`: `window_grad_conv_transpose` for training calls inside
    `xla_kernels()`, else `ops.conv_transpose`."""
    if training and _xla_forms_apply(x):
        return window_grad_conv_transpose(x, kernel, strides)
    return ops.conv_transpose(x, kernel, strides=strides, padding="valid")


def discriminator_conv(x, kernel, strides):
    """The discriminators' spectral-normed convolutions, `conv`'s shapes: `window_grad_conv` for every
    call inside `xla_kernels()` (the discriminator update needs the kernel gradient, the generator
    update the input gradient through the same program), else `ops.conv`."""
    if _xla_forms_apply(x):
        return window_grad_conv(x, kernel, strides)
    return ops.conv(x, kernel, strides=strides, padding="valid")
