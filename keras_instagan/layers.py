"""Building blocks of the InstaGAN networks, written with `keras.ops` only.

Every layer reproduces one PyTorch layer of the official implementation exactly, so that the
official weights can be held without change (see `convert`):

- `ReflectionPadding2D`   ~ `nn.ReflectionPad2d`
- `instance_norm()`       ~ `nn.InstanceNorm2d(affine=False)`, eps 1e-5
- `TorchConv2D`           ~ `nn.Conv2d(k, stride, padding=p)`: symmetric zero padding, then a valid
                            convolution. (Keras' `padding="same"` pads only bottom/right for stride 2,
                            which shifts every output by one pixel.)
- `TorchConv2DTranspose`  ~ `nn.ConvTranspose2d(k3, s2, p1, output_padding=1)`: a valid transposed
                            convolution (2H+1 pixels) cropped by one at the top and left. Keras'
                            `padding="same"` crops at the bottom/right instead.
- `ResnetBlock`           ~ CycleGAN's `ResnetBlock` with reflection padding and no dropout.
- `SpectralConv2D`        ~ the official `SpectralNorm(nn.Conv2d)` wrapper: the trainable kernel is
                            the raw weight W̄; every training call runs one power iteration on the
                            non-trainable `u`, `v` and the convolution uses W̄ / σ with the gradient
                            flowing through σ. (Keras' own `SpectralNormalization` overwrites the kernel
                            in place and passes no gradient through σ, so it cannot hold official
                            weights.)

All tensors are NHWC.
"""

import contextlib

import keras
import numpy as np
from keras import layers, ops

PACKAGE = "keras_instagan"

_XLA_KERNELS = {"active": False}


@contextlib.contextmanager
def xla_kernels():
    """Within it, the strided convolutions and the upsampling layers of `training=True` calls and
    every discriminator convolution take the forms XLA's CPU code differentiates fastest,
    `window_grad_conv` and `window_grad_conv_transpose` (the same functions, their kernel gradients
    one matrix product), and the 3×3 stride-1 convolutions of `training=True` calls (the residual
    blocks') run as `winograd_conv` (the same function to float rounding, fewer multiplications).

    `InstaGAN` enters it while tracing its XLA programs (`compile(jit_compile=True)`). Outside XLA
    TensorFlow's own filter gradients are the fast ones, so the plain convolution stays."""
    previous = _XLA_KERNELS["active"]
    _XLA_KERNELS["active"] = True
    try:
        yield
    finally:
        _XLA_KERNELS["active"] = previous


def _in_xla_kernels(x):
    """Inside `xla_kernels()`, with x's height and width known (the forms slice by them)."""
    return _XLA_KERNELS["active"] and x.shape[1] is not None and x.shape[2] is not None


def conv_output_size(size, kernel_size, strides=1, padding=0):
    """PyTorch's convolution output size along one axis; None stays None (a dynamic size)."""
    if size is None:
        return None
    return (size + 2 * padding - kernel_size) // strides + 1


def torch_zero_pad(x, padding):
    """PyTorch's convolution padding: `padding` zeros on each side of H and W (none for 0)."""
    if not padding:
        return x
    return ops.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])


def generator_kernel_initializer():
    """N(0, 0.02), the official `init_type=normal, init_gain=0.02` for generator convolutions."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def discriminator_kernel_initializer():
    """Uniform(±1/sqrt(fan_in)): what the official discriminator really starts from.

    The official `init_weights` skips the spectral-normed convolutions (docs/official.md §8.2), so
    they keep PyTorch's default `kaiming_uniform_(a=√5)`, which is this distribution.
    """
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")


@keras.saving.register_keras_serializable(package=PACKAGE)
class InstanceNormalization(layers.Layer):
    """Instance normalisation as in the official code (`nn.InstanceNorm2d(affine=False)`): per sample
    and channel over H and W, biased variance, eps 1e-5, no scale or offset.

    Input and output `(B, H, W, C)`, computed as `(x − mean) · rsqrt(var + eps)`, the variance from
    the centred values, every mean taken over H and then over W. TensorFlow's float32 mean over all
    H·W values at once (CPU) was off by ~1e-4 relative at 96×128; divided by a small std that gave
    2e-4 per layer and 1e-4 at the generator output against a float64 reference (PyTorch float32:
    3e-6), and an ONNX export of it 5e-4. `keras.layers.GroupNormalization(groups=-1,
    center=False, scale=False)`, the Keras built-in replacement of tensorflow-addons' instance norm,
    has the same error and computes `x · inv − mean · inv`, which cancels where |mean| ≫ std.
    """

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        centered = x - _spatial_mean(x)
        return centered * ops.rsqrt(_spatial_mean(ops.square(centered)) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def _spatial_mean(x):
    """Mean over H, then over W: two short float32 reductions instead of one over H·W values."""
    return ops.mean(ops.mean(x, axis=1, keepdims=True), axis=2, keepdims=True)


def instance_norm(name=None):
    """The official instance norm (`InstanceNormalization`, eps 1e-5, no affine)."""
    return InstanceNormalization(1e-5, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ReflectionPadding2D(layers.Layer):
    """Reflection padding of `padding` pixels on each side of H and W.

    Input `(B, H, W, C)` → output `(B, H + 2p, W + 2p, C)`. Needs H, W > p.
    """

    def __init__(self, padding, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        p = self.padding
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        p = self.padding
        return (b, conv_output_size(h, 1, padding=p), conv_output_size(w, 1, padding=p), c)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


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


def _windows(t, k, strides, rows, cols):
    """`(B, H, W, C)` → `(B·rows·cols, k·k·C)`: the k×k windows at stride s, as k·k strided slices."""
    span = ((rows - 1) * strides + 1, (cols - 1) * strides + 1)
    slices = [t[:, i : i + span[0] : strides, j : j + span[1] : strides] for i in range(k) for j in range(k)]
    return ops.reshape(ops.concatenate(slices, axis=-1), (-1, k * k * t.shape[-1]))


def window_grad_conv(x, kernel, strides):
    """Valid convolution `(B, H, W, C)` * `(k, k, C, O)`, stride s → `(B, Ho, Wo, O)`, whose kernel
    gradient is one matrix product: `windowsᵀ · dy`, the windows `(B·Ho·Wo, k·k·C)` cut from x by k·k
    strided slices. XLA's CPU filter gradient of a strided convolution runs at a fraction of its
    forward rate. The input gradient is the transposed convolution of dy, as in autodiff."""
    k, _, channels, out = kernel.shape
    height, width = x.shape[1], x.shape[2]
    rows, cols = (height - k) // strides + 1, (width - k) // strides + 1
    extra = (height - (rows - 1) * strides - k, width - (cols - 1) * strides - k)

    @ops.custom_gradient
    def conv(x, kernel):
        y = ops.conv(x, kernel, strides=strides, padding="valid")

        def grad(*args, upstream=None):
            g = args[0] if upstream is None else upstream
            dx = ops.conv_transpose(
                g, kernel, strides=strides, padding="valid", output_padding=extra if any(extra) else None
            )
            dk = ops.matmul(ops.transpose(_windows(x, k, strides, rows, cols)), ops.reshape(g, (-1, out)))
            return dx, ops.reshape(dk, (k, k, channels, out))

        return y, grad

    return conv(x, ops.copy(kernel))  # a tensor: a custom gradient may not read a variable


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


@keras.saving.register_keras_serializable(package=PACKAGE)
class TorchConv2D(layers.Conv2D):
    """`Conv2D` with PyTorch's symmetric zero padding of `torch_padding` pixels.

    Input `(B, H, W, C)` → `(B, (H + 2p − k) // s + 1, …, filters)`.

    With `training=True`, a *thin* convolution (at most `THIN_CHANNELS` output channels, k > 1,
    stride 1; the generators' last layers) is computed as in `thin_conv`: TensorFlow's CPU
    convolutions run such shapes at a fraction of their usual rate, and their gradients slower
    still. Inside `xla_kernels()` training calls of the other strided convolutions run as
    `window_grad_conv` and those of 3×3 stride-1 convolutions as `winograd_conv`. Inference (and so
    every export) keeps the plain convolution; all agree to float rounding.
    """

    def __init__(self, filters, kernel_size, torch_padding=0, **kwargs):
        kwargs["padding"] = "valid"
        super().__init__(filters, kernel_size, **kwargs)
        self.torch_padding = int(torch_padding)

    @property
    def thin(self):
        """Whether `training=True` calls compute this convolution with `thin_conv`."""
        return (
            self.filters <= THIN_CHANNELS
            and self.kernel_size[0] > 1
            and self.groups == 1
            and self.strides == (1, 1)
            and self.dilation_rate == (1, 1)
        )

    def call(self, x, training=False):
        x = torch_zero_pad(x, self.torch_padding)
        xla_form = training and _in_xla_kernels(x) and self._plain
        if training and self.thin:
            y = thin_conv(x, self.kernel)
        elif xla_form and self.strides[0] > 1:
            y = window_grad_conv(x, self.kernel, self.strides[0])
        elif xla_form and self._winograd:
            y = winograd_conv(x, self.kernel)
        else:
            return super().call(x)
        if self.use_bias:
            y = y + self.bias
        return self.activation(y)

    @property
    def _plain(self):
        """Square kernel and strides, no groups or dilation: the forms of `xla_kernels` apply."""
        return (
            self.groups == 1
            and self.dilation_rate == (1, 1)
            and self.kernel_size[0] == self.kernel_size[1]
            and self.strides[0] == self.strides[1]
        )

    @property
    def _winograd(self):
        """A 3×3, stride-1 convolution (the residual blocks'): `winograd_conv` applies."""
        return self.kernel_size[0] == 3 and self.strides[0] == 1

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        k, s, p = self.kernel_size[0], self.strides[0], self.torch_padding
        return (b, conv_output_size(h, k, s, p), conv_output_size(w, k, s, p), self.filters)

    def get_config(self):
        config = super().get_config()
        config.pop("padding")
        return {**config, "torch_padding": self.torch_padding}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TorchConv2DTranspose(layers.Conv2DTranspose):
    """`ConvTranspose2d(kernel 3, stride 2, padding 1, output_padding 1)`: doubles H and W.

    Input `(B, H, W, C)` → `(B, 2H, 2W, filters)`. The kernel is `(3, 3, filters, C)`; an official
    weight `(C, filters, 3, 3)` maps to it by `transpose(2, 3, 1, 0)`, with no flip. Training calls
    inside `xla_kernels()` compute it as `window_grad_conv_transpose`.
    """

    def __init__(self, filters, **kwargs):
        for fixed in ("kernel_size", "strides", "padding"):
            kwargs.pop(fixed, None)
        super().__init__(filters, kernel_size=3, strides=2, padding="valid", **kwargs)

    def call(self, x, training=False):
        if not (training and _in_xla_kernels(x) and self.dilation_rate == (1, 1)):
            return super().call(x)[:, 1:, 1:, :]
        y = window_grad_conv_transpose(x, self.kernel, 2)[:, 1:, 1:, :]
        if self.use_bias:
            y = y + self.bias
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, self.filters)

    def get_config(self):
        config = super().get_config()
        for fixed in ("kernel_size", "strides", "padding"):
            config.pop(fixed)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResnetBlock(layers.Layer):
    """`x + IN(conv3(pad(ReLU(IN(conv3(pad(x)))))))`, channel count kept; no activation after the sum."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.pad = ReflectionPadding2D(1)
        self.conv1 = TorchConv2D(
            self.filters, 3, kernel_initializer=generator_kernel_initializer(), name="conv1"
        )
        self.norm1 = instance_norm("norm1")
        self.conv2 = TorchConv2D(
            self.filters, 3, kernel_initializer=generator_kernel_initializer(), name="conv2"
        )
        self.norm2 = instance_norm("norm2")

    def build(self, input_shape):
        shape = (None, None, None, self.filters)
        for layer in (self.pad, self.conv1, self.norm1, self.conv2, self.norm2):
            layer.build(shape)
        self.built = True

    def call(self, x):
        y = ops.relu(self.norm1(self.conv1(self.pad(x))))
        y = self.norm2(self.conv2(self.pad(y)))
        return x + y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def _l2_normalize(x, eps=1e-12):
    """`x / (‖x‖ + eps)`, the normalisation of the official power iteration."""
    return x / (ops.sqrt(ops.sum(ops.square(x))) + eps)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpectralConv2D(layers.Layer):
    """A convolution whose kernel is divided by its spectral norm σ, with the official semantics.

    Input `(B, H, W, C_in)` → `(B, (H + 2p − k) // s + 1, …, filters)`, PyTorch zero padding `p`.

    Weights:
      - `kernel` (trainable, `(k, k, C_in, filters)`): the raw weight W̄ (official `weight_bar`).
      - `bias` (trainable, `(filters,)`).
      - `u` (`(filters,)`) and `v` (`(k·k·C_in,)`), non-trainable unit vectors (official `weight_u`,
        `weight_v`). `v` follows the Keras kernel's `(k, k, C_in)` flattening order, which is a fixed
        permutation of the official `(C_in, k, k)` order.

    Each call with `training=True` runs one power iteration (no gradient) and stores the new `u`, `v`;
    with `training=False` the stored vectors are used as they are. σ = vᵀ·W̄·u is differentiable in W̄,
    and the convolution uses W̄ / σ. `build` already runs one iteration from a random `u`, so σ is a
    sound estimate (‖W̄v‖ > 0) even for calls with `training=False` before any training call.
    """

    def __init__(self, filters, kernel_size, strides=1, torch_padding=0, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size = int(filters), int(kernel_size)
        self.strides, self.torch_padding = int(strides), int(torch_padding)

    def build(self, input_shape):
        k, channels = self.kernel_size, int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel",
            shape=(k, k, channels, self.filters),
            initializer=discriminator_kernel_initializer(),
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        self.u = self.add_weight(
            name="u",
            shape=(self.filters,),
            initializer="random_normal",
            trainable=False,
            aggregation="only_first_replica",
        )
        self.v = self.add_weight(
            name="v",
            shape=(k * k * channels,),
            initializer="random_normal",
            trainable=False,
            aggregation="only_first_replica",
        )
        self.u.assign(_l2_normalize(self.u))
        self.normalized_kernel(training=True)

    def normalized_kernel(self, training=False):
        """W̄ / σ, after one power iteration when `training`."""
        matrix = ops.reshape(self.kernel, (-1, self.filters))
        u, v = ops.convert_to_tensor(self.u), ops.convert_to_tensor(self.v)
        if training:
            frozen = ops.stop_gradient(matrix)
            v = _l2_normalize(ops.matmul(frozen, u))
            u = _l2_normalize(ops.matmul(ops.transpose(frozen), v))
            self.v.assign(v)
            self.u.assign(u)
        sigma = ops.sum(v * ops.matmul(matrix, u))
        return self.kernel / sigma

    def call(self, x, training=False):
        x = torch_zero_pad(x, self.torch_padding)
        kernel = self.normalized_kernel(training)
        if _in_xla_kernels(x):
            return window_grad_conv(x, kernel, self.strides) + self.bias
        return ops.conv(x, kernel, strides=self.strides, padding="valid") + self.bias

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        k, s, p = self.kernel_size, self.strides, self.torch_padding
        return (b, conv_output_size(h, k, s, p), conv_output_size(w, k, s, p), self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "torch_padding": self.torch_padding,
        }
