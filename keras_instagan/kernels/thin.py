"""`thin_conv`: a stride-1 convolution to few output channels as one matrix product and a sum of
shifted slices, with the slices' gradient written out.

TensorFlow's CPU convolutions run such shapes (the generators' last layers: to 3 image channels and
to 1 mask channel) at a fraction of their usual rate, and their gradients slower still.
"""

from keras import ops

# The most output channels a convolution may have to run as `thin_conv` in training calls.
THIN_CHANNELS = 4


def thin_conv(x, kernel):
    """Valid, stride-1 convolution `(B, H, W, C)` * `(k, k, C, O)` → `(B, H − k + 1, W − k + 1, O)`
    as one matrix product to all k·k·O taps, then the sum of k·k shifted slices:

        y[b, h, w, o] = Σ_{i,j} t[b, h + i, w + j, (i·k + j)·O + o],   t = x · W[i, j, :, o]

    For the generators' last layers (64×64, 64 → 3 and 96 → 1 channels, 2 CPU cores;
    `bench/thin_conv.py`) this is 1.1–3× faster than TensorFlow's convolution forward, and forward +
    backward 2× faster with XLA and 11–21× without. The gradient of the shifted sum is written out
    (`_tap_sum`)."""
    k, _, channels, out = kernel.shape
    taps = ops.reshape(ops.transpose(kernel, (2, 0, 1, 3)), (channels, k * k * out))
    return _tap_sum(ops.matmul(x, taps), k, out)


def _tap_sum(t, k, out):
    """`(B, H, W, k·k·O)` → `(B, H − k + 1, W − k + 1, O)`: Σ_{i,j} of tap (i, j)'s O channels shifted
    by (i, j). Its gradient places the upstream gradient at each tap's shift, one padded copy per tap
    side by side (differentiating the slices instead sums k·k zero-padded tensors, k·k× the work)."""

    def crop(i):
        return slice(i, i - k + 1 if i < k - 1 else None)

    @ops.custom_gradient
    def tap_sum(t):
        y = 0
        for i in range(k):
            for j in range(k):
                c = (i * k + j) * out
                y = y + t[:, crop(i), crop(j), c : c + out]

        def grad(*args, upstream=None):
            g = args[0] if upstream is None else upstream
            shifted = [
                ops.pad(g, ((0, 0), (i, k - 1 - i), (j, k - 1 - j), (0, 0)))
                for i in range(k)
                for j in range(k)
            ]
            return ops.concatenate(shifted, axis=-1)

        return y, grad

    return tap_sum(t)
