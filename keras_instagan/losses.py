"""InstaGAN's losses as pure functions on `keras.ops` (docs/official.md §5.3–§5.4).

Every loss returns one value per sample, shape `(B,)`, the mean over all of that sample's elements.
The caller reduces over the batch (the training step skips samples that have no instance in the
current chunk). Since every sample has the same number of elements, the batch mean of these values
equals the official loss, which is one mean over the whole batch.

Images are `(B, H, W, 3)` in [-1, 1]; masks `(B, H, W, N)` with −1 = background, +1 = instance.
Loss weights (λ) are applied by the caller: officially cycle 10, identity 10, context 10.
"""

from keras import ops


def per_sample_mean(x):
    """Mean over every axis but the first: `(B, ...)` → `(B,)`."""
    return ops.mean(ops.reshape(x, (ops.shape(x)[0], -1)), axis=1)


def lsgan_loss(prediction, target):
    """Least-squares GAN loss: mean of `(prediction − target)²` over the patch map.

    Args:
        prediction: discriminator output `(B, h, w, 1)`, unbounded.
        target: 1.0 for "real", 0.0 for "fake".
    """
    return per_sample_mean(ops.square(prediction - target))


def _image_and_masks_l1(output, target):
    """L1 over the image and mask channels together: one mean over `(3 + N)·H·W` per sample."""
    output = ops.concatenate(list(output), axis=-1)
    target = ops.concatenate(list(target), axis=-1)
    return per_sample_mean(ops.abs(output - target))


def cycle_loss(reconstructed, original):
    """Cycle-consistency: `mean|G_B(G_A(x)) − x|` over image and masks.

    Args:
        reconstructed: `(image, masks)` after the round trip.
        original: `(image, masks)` that went in.
    """
    return _image_and_masks_l1(reconstructed, original)


def identity_loss(same, original):
    """Identity: `mean|G_B(x) − x|` for an A-domain `x` fed to the B→A generator (image and masks)."""
    return _image_and_masks_l1(same, original)


def union_background(real_masks, fake_masks):
    """Soft background of the union of two mask sets: `1 − clip(Σ(a+1)/2 + Σ(b+1)/2, 0, 1)`.

    `(B, H, W, N)` and `(B, H, W, M)` → `(B, H, W, 1)` in [0, 1], 1 = background of both.
    """
    coverage = ops.sum((real_masks + 1.0) / 2.0, axis=-1, keepdims=True)
    coverage = coverage + ops.sum((fake_masks + 1.0) / 2.0, axis=-1, keepdims=True)
    return 1.0 - ops.clip(coverage, 0.0, 1.0)


def context_loss(image, translated_image, real_masks, translated_masks):
    """Context-preserving loss: `mean(w ⊙ |image − translated_image|)` over `H·W·3`.

    `w = union_background(real_masks, translated_masks)` is not detached, as in the official code: the
    loss also trains the mask branch (towards larger masks wherever the image changed). It is a plain
    mean over all pixels, not normalised by the weight mass.
    """
    weight = union_background(real_masks, translated_masks)
    return per_sample_mean(weight * ops.abs(image - translated_image))


def paint_loss(translated_image, real_masks, translated_masks, eps=1e-6):
    """Picture-follows-masks loss (this library's addition, off by default): the translated image
    paints each translated mask with its object's colour and leaves the rest as background.

    `real_masks` and `translated_masks` are `(B, H, W, N)` with the same slots (instance k before and
    after translation); `translated_image` is `(B, H, W, 3)`. With soft masks `u_k = (real_k + 1)/2`,
    `v_k = (translated_k + 1)/2`, `U`, `V` their clipped unions, all detached:
    - where a translated mask reaches outside every real mask (`v_k·(1 − U)`, new object area), the
      image is pulled towards instance k's colour, the mean of the translated image where the real
      and translated masks of k overlap;
    - where a real mask is left by every translated mask (`U·(1 − V)`, old object area), towards the
      background colour, the mean of the translated image outside both unions.
    The colours are detached, so the term moves only those pixels. One value per sample, a plain
    mean over `H·W·3` like `context_loss`. Only the image is trained by it (the masks are detached).
    """
    translated_image = ops.convert_to_tensor(translated_image)
    real = ops.stop_gradient((ops.convert_to_tensor(real_masks) + 1.0) / 2.0)
    made = ops.stop_gradient((ops.convert_to_tensor(translated_masks) + 1.0) / 2.0)
    real_union = ops.clip(ops.sum(real, axis=-1, keepdims=True), 0.0, 1.0)
    made_union = ops.clip(ops.sum(made, axis=-1, keepdims=True), 0.0, 1.0)
    image = ops.expand_dims(translated_image, -1)  # (B, H, W, 3, 1) against slots (B, H, W, 1, N)
    overlap = ops.expand_dims(real * made, 3)
    overlap_mass = ops.sum(overlap, axis=(1, 2), keepdims=True)
    colours = ops.stop_gradient(ops.sum(image * overlap, axis=(1, 2), keepdims=True) / (overlap_mass + eps))
    present = ops.cast(overlap_mass >= 1.0, image.dtype)  # an instance with no overlap has no colour
    new_area = ops.expand_dims(made * (1.0 - real_union), 3) * present
    paint = ops.sum(new_area * ops.abs(image - colours), axis=-1)
    context = (1.0 - real_union) * (1.0 - made_union)
    background = ops.stop_gradient(
        ops.sum(translated_image * context, axis=(1, 2), keepdims=True)
        / (ops.sum(context, axis=(1, 2), keepdims=True) + eps)
    )
    erase = real_union * (1.0 - made_union) * ops.abs(translated_image - background)
    return per_sample_mean(paint + erase)
