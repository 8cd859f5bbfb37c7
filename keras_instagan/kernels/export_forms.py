"""`subpixel_conv_transpose` and `concat_reflect_pad`: the generator's upsampling and reflection
padding for the exported graphs, written with operations LiteRT's CPU delegate (XNNPACK) runs.

LiteRT's `TRANSPOSE_CONV` with a run-time output shape (our exports take any H and W) and its
`MIRROR_PAD` run outside XNNPACK, several times slower than ONNX Runtime on the same layer
(`python bench/export_layers.py`, docs/benchmarks.md). Both forms are the same functions built from
convolutions, slices, concatenations and reshapes; ONNX Runtime runs them a little faster too.
"""

from keras import ops


def subpixel_conv_transpose(x, kernel):
    """PyTorch's `ConvTranspose2d(kernel 3, stride 2, padding 1, output_padding 1)`: `(B, H, W, C)`
    with a Keras transposed kernel `(3, 3, O, C)` → `(B, 2H, 2W, O)`, as four small convolutions.

    Output row 2m takes input row m through kernel row 1; row 2m + 1 takes row m through kernel row 2
    and row m + 1 (zero past the edge) through kernel row 0; the same for columns. The four
    (row, column) phases are 1×1, 1×2, 2×1 and 2×2 convolutions, 9 taps in all as in the transposed
    convolution, interleaved by concatenations and reshapes (no transpose).
    """
    taps = ops.transpose(kernel, (0, 1, 3, 2))  # (3, 3, C, O)
    out = kernel.shape[2]

    def tap_grid(rows, cols):
        """The (len(rows), len(cols), C, O) kernel of the kernel taps at rows × cols."""
        return ops.stack([ops.stack([taps[r, c] for c in cols]) for r in rows])

    padded = ops.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]])
    even_even = ops.conv(x, tap_grid([1], [1]), padding="valid")
    even_odd = ops.conv(padded[:, :-1], tap_grid([1], [2, 0]), padding="valid")
    odd_even = ops.conv(padded[:, :, :-1], tap_grid([2, 0], [1]), padding="valid")
    odd_odd = ops.conv(padded, tap_grid([2, 0], [2, 0]), padding="valid")
    batch, height, width = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
    row_shape = (batch, height, 2 * width, out)
    even = ops.reshape(ops.concatenate([even_even, even_odd], axis=-1), row_shape)
    odd = ops.reshape(ops.concatenate([odd_even, odd_odd], axis=-1), row_shape)
    return ops.reshape(ops.concatenate([even, odd], axis=2), (batch, 2 * height, 2 * width, out))


def concat_reflect_pad(x, padding):
    """Reflection padding of `padding` pixels on each side of H and W (`(B, H, W, C)` →
    `(B, H + 2p, W + 2p, C)`, needs H, W > p) as concatenated one-pixel slices."""

    def along(t, axis):
        def line(i):
            index = [slice(None)] * 4
            index[axis] = slice(i, i + 1)
            return t[tuple(index)]

        before = [line(i) for i in range(padding, 0, -1)]
        after = [line(-1 - i) for i in range(1, padding + 1)]
        return ops.concatenate(before + [t] + after, axis=axis)

    return along(along(x, 1), 2)
