"""`window_grad_conv` and `window_grad_conv_transpose`: strided convolutions, convolutions from few
input channels and transposed convolutions whose kernel gradient is one matrix product over windows
cut by strided slices.

XLA's CPU filter gradient of a strided convolution runs at a fraction of its forward rate, and so,
inside a whole training program, do the filter and input gradients of the generators' first 7×7
layers (3 image or 1 mask channel in); outside XLA, TensorFlow's own filter gradients are the fast
ones, so these forms are for XLA programs only.
"""

from keras import ops

from keras_instagan.kernels.thin import THIN_CHANNELS, thin_conv


def _windows(t, k, strides, rows, cols):
    """`(B, H, W, C)` → `(B·rows·cols, k·k·C)`: the k×k windows at stride s, as k·k strided slices."""
    span = ((rows - 1) * strides + 1, (cols - 1) * strides + 1)
    slices = [t[:, i : i + span[0] : strides, j : j + span[1] : strides] for i in range(k) for j in range(k)]
    return ops.reshape(ops.concatenate(slices, axis=-1), (-1, k * k * t.shape[-1]))


def window_grad_conv(x, kernel, strides):
    """Valid convolution `(B, H, W, C)` * `(k, k, C, O)`, stride s → `(B, Ho, Wo, O)`, whose kernel
    gradient is one matrix product: `windowsᵀ · dy`, the windows `(B·Ho·Wo, k·k·C)` cut from x by k·k
    strided slices. XLA's CPU filter gradient of a strided convolution runs at a fraction of its
    forward rate. The input gradient is the transposed convolution of dy, as in autodiff; at stride 1
    from at most `THIN_CHANNELS` input channels, that transposed convolution is written as the valid
    convolution of dy padded by k − 1 with the flipped kernel, a `thin_conv`."""
    k, _, channels, out = kernel.shape
    height, width = x.shape[1], x.shape[2]
    rows, cols = (height - k) // strides + 1, (width - k) // strides + 1
    extra = (height - (rows - 1) * strides - k, width - (cols - 1) * strides - k)

    @ops.custom_gradient
    def conv(x, kernel):
        y = ops.conv(x, kernel, strides=strides, padding="valid")

        def grad(*args, upstream=None):
            g = args[0] if upstream is None else upstream
            dx = _input_gradient(g, kernel, strides, extra)
            dk = ops.matmul(ops.transpose(_windows(x, k, strides, rows, cols)), ops.reshape(g, (-1, out)))
            return dx, ops.reshape(dk, (k, k, channels, out))

        return y, grad

    return conv(x, ops.copy(kernel))  # a tensor: a custom gradient may not read a variable


def _input_gradient(g, kernel, strides, extra):
    """The input gradient of the valid convolution by `kernel` `(k, k, C, O)` for its output gradient
    g `(B, Ho, Wo, O)`; `extra` are the input rows and columns the stride left unused."""
    k, channels = kernel.shape[0], kernel.shape[2]
    if strides == 1 and channels <= THIN_CHANNELS:
        padded = ops.pad(g, ((0, 0), (k - 1, k - 1), (k - 1, k - 1), (0, 0)))
        return thin_conv(padded, ops.transpose(ops.flip(kernel, (0, 1)), (0, 1, 3, 2)))
    output_padding = extra if any(extra) else None
    return ops.conv_transpose(g, kernel, strides=strides, padding="valid", output_padding=output_padding)


def window_grad_conv_transpose(x, kernel, strides):
    """Valid transposed convolution `(B, H, W, C)` with kernel `(k, k, O, C)`, stride s →
    `(B, (H − 1)·s + k, (W − 1)·s + k, O)`, whose kernel gradient is one matrix product:
    `windows(dy)ᵀ · x`, the windows `(B·H·W, k·k·O)` cut from dy by k·k strided slices (the transposed
    convolution is the input gradient of a convolution of dy's shape). The input gradient is the
    strided convolution of dy, as in autodiff; as for `window_grad_conv`, XLA's CPU filter gradient is
    the slow part."""
    k, _, out, channels = kernel.shape
    rows, cols = x.shape[1], x.shape[2]

    @ops.custom_gradient
    def conv_transpose(x, kernel):
        y = ops.conv_transpose(x, kernel, strides=strides, padding="valid")

        def grad(*args, upstream=None):
            g = args[0] if upstream is None else upstream
            dx = ops.conv(g, kernel, strides=strides, padding="valid")
            dk = ops.matmul(
                ops.transpose(_windows(g, k, strides, rows, cols)), ops.reshape(x, (-1, channels))
            )
            return dx, ops.reshape(dk, (k, k, out, channels))

        return y, grad

    return conv_transpose(x, ops.copy(kernel))
