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

All tensors are NHWC. The convolutions run through `kernels`, which computes training calls in
faster forms of the same functions.
"""

import math

import keras
from keras import layers, ops

from keras_instagan import kernels

PACKAGE = "keras_instagan"


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


@keras.saving.register_keras_serializable(package=PACKAGE)
class FlatRandomNormal(keras.initializers.RandomNormal):
    """`keras.initializers.RandomNormal` drawn as one flat vector, then reshaped: the same values on
    every backend (each fills a shape in flat order), and on JAX a far shorter compilation of the
    draw, which JAX compiles once for each new shape (on a CPU core 1.5–1.7 s for a 4-D kernel's
    shape, 0.2–0.3 s for a flat one)."""

    def __call__(self, shape, dtype=None):
        return ops.reshape(super().__call__((math.prod(shape),), dtype), shape)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FanInUniform(keras.initializers.VarianceScaling):
    """Uniform(±1/sqrt(fan_in)) for a kernel of two or more axes, fan_in the product of all but the
    last: `VarianceScaling(1/3, "fan_in", "uniform")`, drawn flat as `FlatRandomNormal` (the same
    values)."""

    def __init__(self, seed=None):
        super().__init__(scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seed)

    def __call__(self, shape, dtype=None):
        limit = math.sqrt(3.0 * (self.scale / max(1.0, math.prod(shape[:-1]))))
        flat = keras.random.uniform((math.prod(shape),), -limit, limit, dtype=dtype, seed=self.seed)
        return ops.reshape(flat, shape)

    def get_config(self):
        return {"seed": super().get_config()["seed"]}


def generator_kernel_initializer():
    """N(0, 0.02), the official `init_type=normal, init_gain=0.02` for generator convolutions."""
    return FlatRandomNormal(mean=0.0, stddev=0.02)


def discriminator_kernel_initializer():
    """Uniform(±1/sqrt(fan_in)): what the official discriminator really starts from.

    The official `init_weights` skips the spectral-normed convolutions (docs/official.md §8.2), so
    they keep PyTorch's default `kaiming_uniform_(a=√5)`, which is this distribution.
    """
    return FanInUniform()


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

    Input `(B, H, W, C)` → output `(B, H + 2p, W + 2p, C)`. Needs H, W > p. Runs through
    `kernels.reflect_pad` (concatenated slices in exports, inside `kernels.export_forms()`).
    """

    def __init__(self, padding, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        return kernels.reflect_pad(x, self.padding)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        p = self.padding
        return (b, conv_output_size(h, 1, padding=p), conv_output_size(w, 1, padding=p), c)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TorchConv2D(layers.Conv2D):
    """`Conv2D` with PyTorch's symmetric zero padding of `torch_padding` pixels.

    Input `(B, H, W, C)` → `(B, (H + 2p − k) // s + 1, …, filters)`.

    A square kernel and stride without groups or dilation (every convolution of the networks) runs
    through `kernels.conv`, which takes a faster form of the same function in training calls (the
    thin last layers of the generators always, the others inside `kernels.xla_kernels()`); inference,
    and so every export, keeps the plain convolution.
    """

    def __init__(self, filters, kernel_size, torch_padding=0, **kwargs):
        kwargs["padding"] = "valid"
        super().__init__(filters, kernel_size, **kwargs)
        self.torch_padding = int(torch_padding)

    def call(self, x, training=False):
        x = torch_zero_pad(x, self.torch_padding)
        if not self._square:
            return super().call(x)
        y = kernels.conv(x, self.kernel, self.strides[0], training)
        if self.use_bias:
            y = y + self.bias
        return self.activation(y)

    @property
    def _square(self):
        """Square kernel and strides, no groups or dilation: what `kernels.conv` takes."""
        return (
            self.groups == 1
            and self.dilation_rate == (1, 1)
            and self.kernel_size[0] == self.kernel_size[1]
            and self.strides[0] == self.strides[1]
        )

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
    weight `(C, filters, 3, 3)` maps to it by `transpose(2, 3, 1, 0)`, with no flip. It runs through
    `kernels.torch_conv_transpose` (a faster form in training calls inside `kernels.xla_kernels()`,
    another in exports, inside `kernels.export_forms()`).
    """

    def __init__(self, filters, **kwargs):
        for fixed in ("kernel_size", "strides", "padding"):
            kwargs.pop(fixed, None)
        super().__init__(filters, kernel_size=3, strides=2, padding="valid", **kwargs)

    def call(self, x, training=False):
        if self.dilation_rate != (1, 1):
            return super().call(x)[:, 1:, 1:, :]
        y = kernels.torch_conv_transpose(x, self.kernel, training)
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

    def block_weights(self):
        """`(conv1 kernel, conv1 bias, conv2 kernel, conv2 bias)`: what `apply_weights` takes."""
        return self.conv1.kernel, self.conv1.bias, self.conv2.kernel, self.conv2.bias

    def call(self, x, training=False):
        return self.apply_weights(x, self.block_weights(), training)

    def apply_weights(self, x, weights, training=False):
        """The block's function with the weights `weights` (`block_weights()`'s form) in place of
        its own: `(B, h, w, filters)` → the same shape. `GeneratorEncoder` runs its blocks through
        it with their weights stacked, as one loop."""
        kernel1, bias1, kernel2, bias2 = weights
        y = ops.relu(self.norm1(kernels.conv(self.pad(x), kernel1, 1, training) + bias1))
        y = self.norm2(kernels.conv(self.pad(y), kernel2, 1, training) + bias2)
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
        return kernels.discriminator_conv(x, self.normalized_kernel(training), self.strides) + self.bias

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
