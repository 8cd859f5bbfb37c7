"""Unpaired sampling of two domains into a `tf.data.Dataset` for `InstaGAN.fit`.

As in the official loader, an epoch has max(|A|, |B|) elements: domain A in a shuffled order, domain
B drawn independently of A. Batches are complete (`drop_remainder`), so every replica of a
distribution strategy gets the same number of samples. A domain is either NumPy arrays in memory
(the synthetic data) or an `InstanceDomain` read from files (`FolderDomain`, `CocoDomain`), decoded
in parallel, optionally cached, and prefetched. Without TensorFlow (the JAX and PyTorch backends),
`keras_instagan.data.sampling.UnpairedSequence` draws the same way into NumPy batches.
"""

import tensorflow as tf

from keras_instagan.data.domain import InstanceDomain
from keras_instagan.data.sampling import check_domains, domain_size, stored_size


def crop_and_flip(image, masks, size, flip, seed=None):
    """One random crop to `size` = (H, W) and, if `flip`, a random horizontal flip, applied identically
    to the image and every mask (they are cropped and flipped as one stacked tensor)."""
    stacked = tf.concat([image, masks], axis=-1)
    stacked = tf.image.random_crop(stacked, (size[0], size[1], tf.shape(stacked)[-1]), seed=seed)
    if flip:
        stacked = tf.image.random_flip_left_right(stacked, seed=seed)
    return stacked[..., :3], stacked[..., 3:]


def sort_by_area(masks):
    """`(H, W, N)` masks reordered largest first (stable), e.g. after a crop cut an instance away."""
    area = tf.reduce_sum(masks + 1.0, axis=(0, 1))
    return tf.gather(masks, tf.argsort(area, direction="DESCENDING", stable=True), axis=-1)


def _read(domain):
    """index → (image, masks) tensors, decoded by `domain.load` (PIL releases the GIL while decoding)."""
    height, width = domain.output_size()

    def read(index):
        image, masks = tf.numpy_function(domain.load, [index], (tf.float32, tf.float32), stateful=False)
        image.set_shape((height, width, 3))
        masks.set_shape((height, width, domain.ins_max))
        return image, masks

    return read


def _samples(domain, seed, shuffle, augment, cache):
    """One domain's endless stream of augmented samples, reshuffled each epoch."""
    parallel = tf.data.AUTOTUNE
    if isinstance(domain, InstanceDomain):
        dataset = tf.data.Dataset.range(len(domain))
        if cache is not None:
            dataset = dataset.map(_read(domain), num_parallel_calls=parallel).cache(cache)
    else:
        dataset = tf.data.Dataset.from_tensor_slices(tuple(domain))
    if shuffle:
        dataset = dataset.shuffle(domain_size(domain), seed=seed, reshuffle_each_iteration=True)
    if isinstance(domain, InstanceDomain) and cache is None:
        dataset = dataset.map(_read(domain), num_parallel_calls=parallel)
    if augment is not None:
        dataset = dataset.map(augment, num_parallel_calls=parallel)
    return dataset.repeat()


def unpaired_dataset(
    domain_a, domain_b, batch_size=1, shuffle=True, seed=None, crop=None, flip=False, cache=None
):
    """Two domains → batched unpaired `tf.data.Dataset` of `((image_A, masks_A), (image_B, masks_B))`.

    Args:
        domain_a, domain_b: each either `(images (n, H, W, 3) in [-1, 1], masks (n, H, W, ins_max))`
            NumPy arrays, or an `InstanceDomain` (`FolderDomain`, `CocoDomain`) read from files.
        batch_size: samples per batch; the last incomplete batch of an epoch is dropped.
        shuffle: shuffle A and draw B at random (True) or take both in order (False).
        seed: seed of the shuffles.
        crop: `(H, W)` of a random crop (official `fineSize`), or None to keep the stored size.
        flip: random horizontal flips (official default in training).
        cache: for file domains, keep the decoded samples (at load size, before the random crop)
            in memory (`""`) or in a cache file (a path); None decodes every epoch anew.

    After the crop, masks are re-sorted largest first (a crop can cut an instance away; its slot
    becomes empty and moves to the end).
    """
    length = check_domains("unpaired_dataset", domain_a, domain_b, batch_size, crop)
    augment = None
    if crop is not None or flip:
        size = crop or stored_size(domain_a)

        def augment(image, masks):
            image, masks = crop_and_flip(image, masks, size, flip)
            return image, sort_by_area(masks)

    second_seed = None if seed is None else seed + 1
    dataset = tf.data.Dataset.zip(
        (
            _samples(domain_a, seed, shuffle, augment, cache and f"{cache}.A"),
            _samples(domain_b, second_seed, shuffle, augment, cache and f"{cache}.B"),
        )
    )
    return dataset.take(length).batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
