"""The set-aware InstaGAN networks, `SetGenerator` and `SetDiscriminator`, and the CycleGAN baselines of
the paper's ablation, `ResnetGenerator` and `NLayerDiscriminator`.

Both take `[image, masks]`, NHWC:
  - `image`: `(B, H, W, 3)`, float, values in [-1, 1].
  - `masks`: `(B, H, W, N)`, float, one channel per instance, −1 = background, +1 = instance; N ≥ 1 and
    free at every call. A channel that is −1 everywhere is an *empty slot* (padding).

A shared mask encoder runs on every mask; the features of the non-empty masks of each sample are
**summed** (so the result does not depend on the order of the masks). Emptiness is decided per sample
and per mask with tensor arithmetic (no Python branch on values), so the same code runs eagerly, in a
`tf.function`, under a distribution strategy and in exported graphs. The official code pools emptiness
over the batch and breaks for B > 1 (docs/official.md §8.1); here a batch of B gives exactly what B
separate calls give.
"""

import contextlib
import contextvars

import keras
import numpy as np
from keras import layers, ops

from keras_instagan.layers import (
    PACKAGE,
    ReflectionPadding2D,
    ResnetBlock,
    SpectralConv2D,
    TorchConv2D,
    TorchConv2DTranspose,
    generator_kernel_initializer,
    instance_norm,
)


def _concrete(x):
    """`x` as a NumPy array when it has a value now (eager), else None (while tracing)."""
    try:
        return np.asarray(x)
    except Exception:  # a symbolic tensor (tf.function, jax.jit, KerasTensor) has no value yet
        return None


# How far outside [-1, 1] eager inputs may stray (resampling overshoot) before they are refused.
RANGE_SLACK = 0.01
# The smallest image a generator takes: its residual blocks reflect-pad the H/4 × W/4 features by 1.
GENERATOR_MIN_SIZE = 8


def check_inputs(inputs, who, multiple_of=1, min_size=1):
    """Validate `[image, masks]` and return them; raise `ValueError` naming the tensor otherwise.

    Shapes are checked whenever they are known, mask values only when they are concrete (eager calls).
    """
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
        raise ValueError(f"{who} expects inputs [image, masks]; got {type(inputs).__name__}.")
    image, masks = inputs
    image_shape, masks_shape = tuple(image.shape), tuple(masks.shape)
    if len(image_shape) != 4 or image_shape[-1] != 3:
        raise ValueError(
            f"{who}: `image` must have shape (B, H, W, 3) (NHWC, RGB in [-1, 1]); got {image_shape}."
        )
    if len(masks_shape) != 4:
        raise ValueError(
            f"{who}: `masks` must have shape (B, H, W, N), one channel per instance; got {masks_shape}."
        )
    if masks_shape[-1] == 0:
        raise ValueError(
            f"{who}: `masks` has N = 0 channels, shape {masks_shape}; pass at least one mask channel "
            "(an image without instances gets one empty slot: all −1)."
        )
    if image_shape[0] is not None and masks_shape[0] is not None and image_shape[0] != masks_shape[0]:
        raise ValueError(
            f"{who}: `image` {image_shape} and `masks` {masks_shape} differ in batch size; pass the "
            "masks of every image (an image without instances gets empty slots: all −1)."
        )
    for axis, size in ((1, "H"), (2, "W")):
        i, m = image_shape[axis], masks_shape[axis]
        if i is not None and m is not None and i != m:
            raise ValueError(
                f"{who}: `image` {image_shape} and `masks` {masks_shape} differ in {size}; "
                "every mask must have the image's size."
            )
        if i is not None and (i % multiple_of or i < min_size):
            raise ValueError(
                f"{who}: `image` {size} = {i} (shape {image_shape}); {size} must be a multiple of "
                f"{multiple_of} and at least {min_size}."
            )
    for name, tensor, meaning in (
        ("image", image, "RGB scaled to [-1, 1], not 0–255"),
        ("masks", masks, "−1 background, +1 instance"),
    ):
        values = _concrete(tensor)
        if values is None or not values.size:
            continue
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{who}: `{name}` holds NaN or infinite values.")
        if values.min() < -1.0 - RANGE_SLACK or values.max() > 1.0 + RANGE_SLACK:
            raise ValueError(
                f"{who}: `{name}` values must lie in [-1, 1] ({meaning}); got range "
                f"[{values.min():g}, {values.max():g}]."
            )
    return image, masks


def nonempty_slots(masks):
    """`(B, H, W, N)` masks → `(B, N)` float: 1.0 where the slot holds any pixel above −1, else 0.0."""
    return ops.cast(ops.max(masks, axis=(1, 2)) > -1.0, masks.dtype)


def per_mask(masks):
    """`(B, H, W, N)` → `(B·N, H, W, 1)`, mask-major within each sample, for the shared mask branch."""
    shape = ops.shape(masks)
    return ops.reshape(ops.transpose(masks, (0, 3, 1, 2)), (-1, shape[1], shape[2], 1))


def per_sample(features, batch):
    """`(B·N, h, w, C)` → `(B, N, h, w, C)`: undo `per_mask` on a feature map."""
    shape = ops.shape(features)
    return ops.reshape(features, (batch, -1, shape[1], shape[2], features.shape[-1]))


def set_sum(features, nonempty):
    """Sum `(B, N, h, w, C)` features over the non-empty slots of each sample → `(B, h, w, C)`."""
    return ops.sum(features * nonempty[:, :, None, None, None], axis=1)


def merged_mask(masks):
    """`(B, H, W, N)` masks → `(B, H, W, 1)`: their union (+1 where any mask is +1), the one extra
    channel of the CycleGAN+Seg baseline."""
    return ops.max(masks, axis=-1, keepdims=True)


def scan_blocks(block, x, stacked):
    """`x = block(x, weights)` for the weights of each block in turn (`stacked`: each weight with the
    blocks along axis 0), as one `ops.scan`."""
    return ops.scan(lambda x, weights: (block(x, weights), None), x, stacked)[0]


_BLOCK_LOOP = contextvars.ContextVar("keras_instagan_block_loop", default=None)

# The fewest residual blocks an encoder loops over: with 2, TensorFlow's loop (with the accumulators
# of its gradient) costs the default run's first step more compilation than the one block it saves.
LOOPED_BLOCKS_FROM = 3


@contextlib.contextmanager
def looped_blocks(loop=scan_blocks):
    """Within it (this thread and context), each `GeneratorEncoder` runs its residual blocks as one
    loop over their stacked weights, `loop(block, x, stacked)` (`scan_blocks`'s signature; a backend
    whose compiler needs another loop brings its own). Entered by what traces a training update into
    one compiled program, which then holds one block's code instead of `n_blocks` copies: it
    compiles in less time, to the same values."""
    token = _BLOCK_LOOP.set(loop)
    try:
        yield
    finally:
        _BLOCK_LOOP.reset(token)


@keras.saving.register_keras_serializable(package=PACKAGE)
class GeneratorEncoder(keras.Sequential):
    """Official `encoder_img` / `encoder_seg`, its layers in the official order: `(B, H, W, C)` →
    `(B, H/4, W/4, 4·ngf)`. The residual blocks at its end run one after another, or, inside
    `looped_blocks()` and from `LOOPED_BLOCKS_FROM` blocks on, as one loop over their stacked
    weights (`ResnetBlock.apply_weights`)."""

    def call(self, inputs, training=None, mask=None):
        blocks = [layer for layer in self.layers if isinstance(layer, ResnetBlock)]
        x = inputs
        for layer in self.layers[: len(self.layers) - len(blocks)]:
            x = layer(x, training=training)
        loop = _BLOCK_LOOP.get()
        if loop is not None and len(blocks) >= LOOPED_BLOCKS_FROM:
            weights = zip(*(b.block_weights() for b in blocks))
            stacked = [ops.stack([w.value for w in same]) for same in weights]
            return loop(lambda x, weights: blocks[0].apply_weights(x, weights, training), x, stacked)
        for block in blocks:
            x = block(x, training=training)
        return x


def _generator_encoder(ngf, n_blocks, name):
    """The official encoder: a `GeneratorEncoder` of its layers."""
    init = generator_kernel_initializer
    stack = [ReflectionPadding2D(3), TorchConv2D(ngf, 7, kernel_initializer=init())]
    stack += [instance_norm(), layers.ReLU()]
    for mult in (2, 4):
        stack += [TorchConv2D(mult * ngf, 3, strides=2, torch_padding=1, kernel_initializer=init())]
        stack += [instance_norm(), layers.ReLU()]
    stack += [ResnetBlock(4 * ngf) for _ in range(n_blocks)]
    return GeneratorEncoder(stack, name=name)


def _generator_decoder(width, out_channels, name):
    """Official `get_decoder(output_nc, ngf'=width)`: `(B, h, w, ·)` → `(B, 4h, 4w, out)`, tanh."""
    init = generator_kernel_initializer
    stack = []
    for mult in (2, 1):
        stack += [TorchConv2DTranspose(mult * width, kernel_initializer=init())]
        stack += [instance_norm(), layers.ReLU()]
    stack += [ReflectionPadding2D(3), TorchConv2D(out_channels, 7, kernel_initializer=init())]
    stack += [layers.Activation("tanh")]
    return keras.Sequential(stack, name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SetGenerator(keras.Model):
    """The official `ResnetSetGenerator`: translates an image and its set of instance masks.

    `G([image, masks])` → `(image, masks)` with the input shapes: image `(B, H, W, 3)` in (−1, 1)
    (tanh) and masks `(B, H, W, N)`; each non-empty input mask is translated to a mask in (−1, 1), each
    empty slot comes out exactly −1. H and W must be multiples of 4.

    Args:
        ngf: base width (official 64). Parameters: 26,815,108 at ngf 64 with 9 blocks.
        n_blocks: residual blocks in each encoder (official 9).
    """

    def __init__(self, ngf=64, n_blocks=9, **kwargs):
        super().__init__(**kwargs)
        self.ngf, self.n_blocks = int(ngf), int(n_blocks)
        self.encoder_img = _generator_encoder(self.ngf, self.n_blocks, "encoder_img")
        self.encoder_seg = _generator_encoder(self.ngf, self.n_blocks, "encoder_seg")
        self.decoder_img = _generator_decoder(2 * self.ngf, 3, "decoder_img")
        self.decoder_seg = _generator_decoder(3 * self.ngf, 1, "decoder_seg")
        self.build()

    def build(self, input_shape=None):
        width = 4 * self.ngf
        self.encoder_img.build((None, None, None, 3))
        self.encoder_seg.build((None, None, None, 1))
        self.decoder_img.build((None, None, None, 2 * width))
        self.decoder_seg.build((None, None, None, 3 * width))
        self.built = True

    def call(self, inputs, training=False):
        image, masks = check_inputs(inputs, "SetGenerator", multiple_of=4, min_size=GENERATOR_MIN_SIZE)
        batch = ops.shape(image)[0]
        nonempty = nonempty_slots(masks)

        image_feature = self.encoder_img(image)
        mask_features = per_sample(self.encoder_seg(per_mask(masks)), batch)
        summed = set_sum(mask_features, nonempty)

        out_image = self.decoder_img(ops.concatenate([image_feature, summed], axis=-1))

        context = ops.concatenate([image_feature, summed], axis=-1)[:, None]
        context = ops.broadcast_to(context, ops.shape(mask_features)[:4] + (context.shape[-1],))
        decoder_input = ops.concatenate([mask_features, context], axis=-1)
        decoder_input = ops.reshape(decoder_input, (-1,) + tuple(ops.shape(decoder_input)[2:]))
        decoded = self.decoder_seg(decoder_input)
        decoded = ops.transpose(per_sample(decoded, batch)[..., 0], (0, 2, 3, 1))
        out_masks = ops.where(nonempty[:, None, None, :] > 0, decoded, masks)
        return out_image, out_masks

    def get_config(self):
        return {**super().get_config(), "ngf": self.ngf, "n_blocks": self.n_blocks}


def _discriminator_features(ndf, n_layers, name):
    """Official `feature_img` / `feature_seg`: `(B, H, W, C)` → `(B, H/2^L, W/2^L, ndf·min(2^(L−1), 8))`."""
    stack = [SpectralConv2D(ndf, 4, strides=2, torch_padding=1), layers.LeakyReLU(0.2)]
    for k in range(1, n_layers):
        stack += [SpectralConv2D(ndf * min(2**k, 8), 4, strides=2, torch_padding=1)]
        stack += [instance_norm(), layers.LeakyReLU(0.2)]
    return keras.Sequential(stack, name=name)


def _discriminator_classifier(width):
    """Two stride-1 convolutions down to one logit map, the first `width` wide (official
    `get_classifier(2·ndf, n_layers)` for the set D: 2·ndf·min(2^L, 8); the tail of CycleGAN's
    `NLayerDiscriminator`: ndf·min(2^L, 8))."""
    return keras.Sequential(
        [
            SpectralConv2D(width, 4, torch_padding=1),
            instance_norm(),
            layers.LeakyReLU(0.2),
            SpectralConv2D(1, 4, torch_padding=1),
        ],
        name="classifier",
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
class SetDiscriminator(keras.Model):
    """The official `NLayerSetDiscriminator` (PatchGAN on an image and its set of masks), LSGAN logits.

    `D([image, masks])` → patch map `(B, H/2^L − 2, W/2^L − 2, 1)` with L = `n_layers` (official 3:
    200×200 → 23×23); H and W must be at least 3·2^L. Every convolution is a `SpectralConv2D`: calls
    with `training=True` advance the power iteration, calls with `training=False` leave `u`, `v` as
    they are.

    The image and each mask are encoded apart and meet only after L stride-2 layers (at 1/2^L of the
    size), so whether the picture's objects have the masks' outlines is judged coarsely.
    `see_union=True` (this library's variant, `netD="set_union"`) gives the image stream the union of
    the masks as a fourth input channel, so the first convolution already sees outlines and picture
    together; it cannot hold the official weights (its first image filter has 4 input channels).

    Args:
        ndf: base width (official 64). Trainable parameters: 9,721,729 at ndf 64, n_layers 3.
        n_layers: stride-2 feature layers (official 3; the official code ignores `--n_layers_D`).
        see_union: whether the image stream also sees the union of the masks (default False: official).
    """

    def __init__(self, ndf=64, n_layers=3, see_union=False, **kwargs):
        super().__init__(**kwargs)
        self.ndf, self.n_layers, self.see_union = int(ndf), int(n_layers), bool(see_union)
        if self.n_layers < 1:
            raise ValueError(f"SetDiscriminator: n_layers must be >= 1; got {n_layers}.")
        self.feature_img = _discriminator_features(self.ndf, self.n_layers, "feature_img")
        self.feature_seg = _discriminator_features(self.ndf, self.n_layers, "feature_seg")
        self.classifier = _discriminator_classifier(2 * self.ndf * min(2**self.n_layers, 8))
        self.build()

    def build(self, input_shape=None):
        width = self.ndf * min(2 ** (self.n_layers - 1), 8)
        self.feature_img.build((None, None, None, 4 if self.see_union else 3))
        self.feature_seg.build((None, None, None, 1))
        self.classifier.build((None, None, None, 2 * width))
        self.built = True

    def call(self, inputs, training=False):
        image, masks = check_inputs(inputs, "SetDiscriminator", min_size=3 * 2**self.n_layers)
        batch = ops.shape(image)[0]
        if self.see_union:
            image = ops.concatenate([image, ops.max(masks, axis=-1, keepdims=True)], axis=-1)
        image_feature = self.feature_img(image, training=training)
        mask_features = per_sample(self.feature_seg(per_mask(masks), training=training), batch)
        summed = set_sum(mask_features, nonempty_slots(masks))
        return self.classifier(ops.concatenate([image_feature, summed], axis=-1), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "ndf": self.ndf,
            "n_layers": self.n_layers,
            "see_union": self.see_union,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResnetGenerator(keras.Model):
    """CycleGAN's `ResnetGenerator` (official `--netG resnet_9blocks`): the baseline of the ablation.

    Same encoder and decoder layers as one branch of `SetGenerator`, and the same call signature, so
    `InstaGAN` trains and translates with it unchanged: `G([image, masks])` → `(image, masks)`.

    - `merge_masks=False` (CycleGAN): sees the image `(B, H, W, 3)` only and returns the masks it was
      given unchanged.
    - `merge_masks=True` (CycleGAN+Seg): sees the image plus the union of its masks as a fourth
      channel and returns the translated image and one translated union mask `(B, H, W, 1)` in
      (−1, 1); a sample without any instance gets its all −1 union back.

    Args:
        ngf: base width (official 64). Parameters: 11,378,179 at ngf 64 with 9 blocks (CycleGAN's).
        n_blocks: residual blocks (CycleGAN's `resnet_9blocks`: 9).
        merge_masks: the CycleGAN+Seg variant.
    """

    def __init__(self, ngf=64, n_blocks=9, merge_masks=False, **kwargs):
        super().__init__(**kwargs)
        self.ngf, self.n_blocks, self.merge_masks = int(ngf), int(n_blocks), bool(merge_masks)
        self.channels = 4 if self.merge_masks else 3
        self.encoder = _generator_encoder(self.ngf, self.n_blocks, "encoder")
        self.decoder = _generator_decoder(self.ngf, self.channels, "decoder")
        self.build()

    def build(self, input_shape=None):
        self.encoder.build((None, None, None, self.channels))
        self.decoder.build((None, None, None, 4 * self.ngf))
        self.built = True

    def call(self, inputs, training=False):
        image, masks = check_inputs(inputs, "ResnetGenerator", multiple_of=4, min_size=GENERATOR_MIN_SIZE)
        if not self.merge_masks:
            return self.decoder(self.encoder(image)), masks
        union = merged_mask(masks)
        out = self.decoder(self.encoder(ops.concatenate([image, union], axis=-1)))
        nonempty = nonempty_slots(union)[:, None, None, :] > 0
        return out[..., :3], ops.where(nonempty, out[..., 3:], union)

    def get_config(self):
        return {
            **super().get_config(),
            "ngf": self.ngf,
            "n_blocks": self.n_blocks,
            "merge_masks": self.merge_masks,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class NLayerDiscriminator(keras.Model):
    """CycleGAN's PatchGAN (official `--netD basic`, spectral-normed as in the InstaGAN code): the
    baseline discriminator of the ablation. `D([image, masks])` → `(B, H/2^L − 2, W/2^L − 2, 1)`.

    `merge_masks=False` (CycleGAN) judges the image alone; `merge_masks=True` (CycleGAN+Seg) judges the
    image with the union of its masks as a fourth channel.

    Args:
        ndf: base width (official 64). Trainable parameters: 2,764,737 at ndf 64, n_layers 3.
        n_layers: stride-2 layers (official 3).
        merge_masks: the CycleGAN+Seg variant.
    """

    def __init__(self, ndf=64, n_layers=3, merge_masks=False, **kwargs):
        super().__init__(**kwargs)
        self.ndf, self.n_layers, self.merge_masks = int(ndf), int(n_layers), bool(merge_masks)
        if self.n_layers < 1:
            raise ValueError(f"NLayerDiscriminator: n_layers must be >= 1; got {n_layers}.")
        self.features = _discriminator_features(self.ndf, self.n_layers, "features")
        self.classifier = _discriminator_classifier(self.ndf * min(2**self.n_layers, 8))
        self.build()

    def build(self, input_shape=None):
        self.features.build((None, None, None, 4 if self.merge_masks else 3))
        self.classifier.build((None, None, None, self.ndf * min(2 ** (self.n_layers - 1), 8)))
        self.built = True

    def call(self, inputs, training=False):
        image, masks = check_inputs(inputs, "NLayerDiscriminator", min_size=3 * 2**self.n_layers)
        x = ops.concatenate([image, merged_mask(masks)], axis=-1) if self.merge_masks else image
        return self.classifier(self.features(x, training=training), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "ndf": self.ndf,
            "n_layers": self.n_layers,
            "merge_masks": self.merge_masks,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class SetAndImageDiscriminator(keras.Model):
    """`netD="set_image"` (this library's variant): InstaGAN's `SetDiscriminator` and, beside it,
    CycleGAN's image-only PatchGAN (`NLayerDiscriminator`), both judging every patch.

    `D([image, masks])` → `(B, H/2^L − 2, W/2^L − 2, 2)`: channel 0 the set discriminator's patch map
    (picture with masks), channel 1 the image-only one's (the picture alone; both maps have the same
    size). The LSGAN terms average over both channels, so a translation must look real as a pair and
    as a picture: a picture that keeps the source shape under turned masks is caught by the second
    head even where the first accepts the pair.

    Args:
        ndf: base width of both heads.
        n_layers: stride-2 layers of both heads.
    """

    def __init__(self, ndf=64, n_layers=3, **kwargs):
        super().__init__(**kwargs)
        self.ndf, self.n_layers = int(ndf), int(n_layers)
        with keras.name_scope(self.name):  # variable paths D_A/pair/..., D_A/picture/...
            self.pair = SetDiscriminator(self.ndf, self.n_layers, name="pair")
            self.picture = NLayerDiscriminator(self.ndf, self.n_layers, name="picture")
        self.built = True

    def call(self, inputs, training=False):
        check_inputs(inputs, "SetAndImageDiscriminator", min_size=3 * 2**self.n_layers)
        return ops.concatenate(
            [self.pair(inputs, training=training), self.picture(inputs, training=training)], axis=-1
        )

    def get_config(self):
        return {**super().get_config(), "ndf": self.ndf, "n_layers": self.n_layers}


GENERATORS = ("set", "resnet", "resnet_seg")
DISCRIMINATORS = ("set", "set_union", "set_image", "basic")


def make_networks(netG, netD, ngf, ndf, n_blocks, n_layers, name_suffix):
    """The generator and discriminator named by the official `--netG` / `--netD` choices.

    `netG`: "set" (InstaGAN), "resnet" (CycleGAN), "resnet_seg" (CycleGAN+Seg: masks merged into one
    extra channel). `netD`: "set" (InstaGAN), "set_union" (InstaGAN's, its image stream also seeing the
    masks' union: `SetDiscriminator(see_union=True)`), "set_image" (InstaGAN's beside an image-only
    PatchGAN: `SetAndImageDiscriminator`) or "basic" (PatchGAN; it sees the merged mask exactly when
    the generator does). Returns `(G_<suffix>, D_<suffix>)`.
    """
    if netG not in GENERATORS:
        raise ValueError(f"netG must be one of {GENERATORS}; got {netG!r}.")
    if netD not in DISCRIMINATORS:
        raise ValueError(f"netD must be one of {DISCRIMINATORS}; got {netD!r}.")
    merge = netG == "resnet_seg"
    g_name, d_name = f"G_{name_suffix}", f"D_{name_suffix}"
    generator = (
        SetGenerator(ngf, n_blocks, name=g_name)
        if netG == "set"
        else ResnetGenerator(ngf, n_blocks, merge_masks=merge, name=g_name)
    )
    if netD == "set_image":
        discriminator = SetAndImageDiscriminator(ndf, n_layers, name=d_name)
    elif netD in ("set", "set_union"):
        discriminator = SetDiscriminator(ndf, n_layers, see_union=netD == "set_union", name=d_name)
    else:
        discriminator = NLayerDiscriminator(ndf, n_layers, merge_masks=merge, name=d_name)
    return generator, discriminator
