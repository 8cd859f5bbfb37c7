"""Speed forms of the generator's operations: the same functions as `keras.ops.conv`,
`keras.ops.conv_transpose` (valid padding, NHWC) and reflection padding, computed in ways that run
faster where a backend's or runtime's own kernels are slow on a CPU. Each agrees with the plain
operation to float rounding, forward and backward (`tests/test_kernels.py`); inference in Keras
keeps the plain ones.

- `thin_conv` (`thin.py`): stride-1 convolutions to at most `THIN_CHANNELS` channels (the
  generators' last layers), in every training call.
- `window_grad_conv`, `window_grad_conv_transpose` (`window_grad.py`): strided convolutions, the
  convolutions from at most `THIN_CHANNELS` input channels (the generators' first layers), the
  upsampling layers and every discriminator convolution, with a one-matrix-product kernel gradient;
  inside `xla_kernels()` only.
- `winograd_conv` (`winograd.py`): 3×3 stride-1 convolutions (the residual blocks'); inside
  `xla_kernels()` only.
- `subpixel_conv_transpose`, `concat_reflect_pad` (`export_forms.py`): the upsampling layers and the
  reflection padding in operations that LiteRT's XNNPACK delegate runs (and ONNX Runtime a little
  faster); inside `export_forms()` only.

The layers call `conv`, `torch_conv_transpose`, `reflect_pad` and `discriminator_conv`, which pick
the form. `xla_kernels()` is entered by whatever traces an XLA program
(`InstaGAN.compile(jit_compile=True)`), `export_forms()` by the exporters; each holds for the
current thread and context only (`contextvars`), so a program traced elsewhere at the same time is
not affected.
"""

import contextlib
import contextvars

from keras import ops

from keras_instagan.kernels.export_forms import concat_reflect_pad, subpixel_conv_transpose
from keras_instagan.kernels.thin import THIN_CHANNELS, thin_conv
from keras_instagan.kernels.window_grad import window_grad_conv, window_grad_conv_transpose
from keras_instagan.kernels.winograd import winograd_conv

__all__ = [
    "THIN_CHANNELS",
    "concat_reflect_pad",
    "conv",
    "conv_transpose",
    "discriminator_conv",
    "export_forms",
    "reflect_pad",
    "subpixel_conv_transpose",
    "thin_conv",
    "torch_conv_transpose",
    "window_grad_conv",
    "window_grad_conv_transpose",
    "winograd_conv",
    "xla_kernels",
]

_XLA_KERNELS = contextvars.ContextVar("keras_instagan_xla_kernels", default=False)
_EXPORT_FORMS = contextvars.ContextVar("keras_instagan_export_forms", default=False)


@contextlib.contextmanager
def _switched_on(switch):
    token = switch.set(True)
    try:
        yield
    finally:
        switch.reset(token)


def xla_kernels():
    """Within it (this thread and context), training calls take the XLA forms: `window_grad_conv`
    for strided convolutions and those from few input channels, `window_grad_conv_transpose` for
    transposed ones and `winograd_conv` for 3×3 stride-1 ones."""
    return _switched_on(_XLA_KERNELS)


def export_forms():
    """Within it (this thread and context), every call takes the export forms: `torch_conv_transpose`
    as `subpixel_conv_transpose`, `reflect_pad` as `concat_reflect_pad`."""
    return _switched_on(_EXPORT_FORMS)


def _xla_forms_apply(x):
    """Inside `xla_kernels()`, with x's height and width known (the forms slice by them)."""
    return _XLA_KERNELS.get() and x.shape[1] is not None and x.shape[2] is not None


def conv(x, kernel, strides, training):
    """Valid convolution `(B, H, W, C)` * `(k, k, C, O)` at stride `strides` (both axes) →
    `(B, (H − k) // s + 1, (W − k) // s + 1, O)`, in the form for this call: `thin_conv` for thin
    training calls, the XLA forms inside `xla_kernels()` (`window_grad_conv` for strided ones and
    those from at most `THIN_CHANNELS` input channels, `winograd_conv` for 3×3 ones), else
    `ops.conv`."""
    k, out = kernel.shape[0], kernel.shape[-1]
    if training and out <= THIN_CHANNELS and k > 1 and strides == 1:
        return thin_conv(x, kernel)
    if training and _xla_forms_apply(x) and (strides > 1 or x.shape[-1] <= THIN_CHANNELS):
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


def torch_conv_transpose(x, kernel, training):
    """PyTorch's `ConvTranspose2d(kernel 3, stride 2, padding 1, output_padding 1)`: `(B, H, W, C)`
    with kernel `(3, 3, O, C)` → `(B, 2H, 2W, O)`, the valid transposed convolution less its first
    row and column: `subpixel_conv_transpose` inside `export_forms()`, else `conv_transpose`."""
    if _EXPORT_FORMS.get():
        return subpixel_conv_transpose(x, kernel)
    return conv_transpose(x, kernel, 2, training)[:, 1:, 1:, :]


def reflect_pad(x, padding):
    """Reflection padding of `padding` pixels on each side of H and W (`(B, H, W, C)` →
    `(B, H + 2p, W + 2p, C)`): `concat_reflect_pad` inside `export_forms()`, else `ops.pad`."""
    if _EXPORT_FORMS.get():
        return concat_reflect_pad(x, padding)
    return ops.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]], mode="reflect")


def discriminator_conv(x, kernel, strides):
    """The discriminators' spectral-normed convolutions, `conv`'s shapes: `window_grad_conv` for every
    call inside `xla_kernels()` (the discriminator update needs the kernel gradient, the generator
    update the input gradient through the same program), else `ops.conv`."""
    if _xla_forms_apply(x):
        return window_grad_conv(x, kernel, strides)
    return ops.conv(x, kernel, strides=strides, padding="valid")
