"""`winograd_conv`: a 3×3 stride-1 convolution as Winograd F(2×2, 3×3), 2.25× fewer
multiplications, written as a few large operations that XLA compiles quickly and differentiates by
itself (faster than XLA's CPU convolution in training; slower than TensorFlow's without XLA).
"""

import numpy as np
from keras import ops

# Winograd F(2×2, 3×3) (Lavin & Gray, 2016): a 4×4 input tile d at stride 2 gives the 2×2 outputs
# Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A of the 3×3 kernel g. Each matrix acts on both axes of a tile, so on a
# flattened tile (index 4·i + j) as its Kronecker square.
_WINOGRAD_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], "float32")
_WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], "float32")
_WINOGRAD_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], "float32")
_WINOGRAD_TILES = np.kron(_WINOGRAD_BT, _WINOGRAD_BT)  # (16, 16): input tile → transformed
_WINOGRAD_KERNEL = np.kron(_WINOGRAD_G, _WINOGRAD_G)  # (16, 9): kernel → transformed
_WINOGRAD_OUTPUTS = np.kron(_WINOGRAD_AT, _WINOGRAD_AT)  # (4, 16): products → 2×2 outputs


def winograd_conv(x, kernel):
    """Valid, stride-1 3×3 convolution `(B, H, W, C)` * `(3, 3, C, O)` → `(B, H − 2, W − 2, O)` as
    Winograd F(2×2, 3×3): the 4×4 input tiles at stride 2 and the kernel are transformed by constant
    matrices, multiplied per tile position (16 matrix products `(B·tiles, C)` · `(C, O)`, 2.25× fewer
    multiplications than the convolution), and the products transformed back to 2×2 outputs.

    Written as a few large operations (slices of a reshaped x, transposes, matrix products), so XLA
    compiles it quickly and differentiates it by itself. With XLA on 2 CPU cores the residual blocks'
    forward + backward is faster than with XLA's convolution; without XLA it is 2× slower
    (`bench/residual_blocks.py`). Odd H − 2 or W − 2 are padded by a zero row or column, whose
    outputs are cut off. Agrees with the convolution to float rounding (about 2e-6 relative in
    float32)."""
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    out = kernel.shape[-1]
    rows, cols = (height - 1) // 2, (width - 1) // 2
    x = ops.pad(x, [[0, 0], [0, 2 * rows + 2 - height], [0, 2 * cols + 2 - width], [0, 0]])

    def constant(matrix):
        return ops.convert_to_tensor(matrix, dtype=x.dtype)

    # Tile (r, c), element (i, j) = x[2r + i, 2c + j]; with i = 2·i1 + p and j = 2·j1 + q, x viewed
    # as (B, rows + 1, 2, cols + 1, 2, channels) holds it at [r + i1, p, c + j1, q]. The two stacks
    # add the axes i1 and j1; the transpose orders the tiles' elements (i1, p, j1, q) = 4·i + j first.
    t = ops.reshape(x, (-1, rows + 1, 2, cols + 1, 2, channels))
    t = ops.stack([t[:, :-1], t[:, 1:]], axis=0)
    t = ops.stack([t[:, :, :, :, :-1], t[:, :, :, :, 1:]], axis=0)
    t = ops.reshape(ops.transpose(t, (1, 4, 0, 6, 2, 3, 5, 7)), (16, -1))
    tiles = ops.matmul(constant(_WINOGRAD_TILES), t)
    weights = ops.matmul(constant(_WINOGRAD_KERNEL), ops.reshape(kernel, (9, -1)))
    products = ops.matmul(ops.reshape(tiles, (16, -1, channels)), ops.reshape(weights, (16, channels, out)))
    y = ops.matmul(constant(_WINOGRAD_OUTPUTS), ops.reshape(products, (16, -1)))
    y = ops.transpose(ops.reshape(y, (2, 2, -1, rows, cols, out)), (2, 3, 0, 4, 1, 5))
    return ops.reshape(y, (-1, 2 * rows, 2 * cols, out))[:, : height - 2, : width - 2]
