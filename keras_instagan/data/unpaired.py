"""Unpaired sampling of two domains into a `tf.data.Dataset` for `InstaGAN.fit`.

As in the official loader, an epoch has max(|A|, |B|) elements: domain A in a shuffled order, domain
B drawn independently of A. Batches are complete (`drop_remainder`), so every replica of a
distribution strategy gets the same number of samples.
"""

import tensorflow as tf


def crop_and_flip(image, masks, size, flip, seed=None):
    """One random crop to `size` = (H, W) and, if `flip`, a random horizontal flip, applied identically
    to the image and every mask (they are cropped and flipped as one stacked tensor)."""
    stacked = tf.concat([image, masks], axis=-1)
    stacked = tf.image.random_crop(stacked, (size[0], size[1], tf.shape(stacked)[-1]), seed=seed)
    if flip:
        stacked = tf.image.random_flip_left_right(stacked, seed=seed)
    return stacked[..., :3], stacked[..., 3:]


def _shuffled(arrays, seed, shuffle, augment):
    dataset = tf.data.Dataset.from_tensor_slices(arrays)
    if shuffle:
        dataset = dataset.shuffle(len(arrays[0]), seed=seed, reshuffle_each_iteration=True)
    if augment is not None:
        dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.repeat()


def unpaired_dataset(domain_a, domain_b, batch_size=1, shuffle=True, seed=None, crop=None, flip=False):
    """`((images_A, masks_A), (images_B, masks_B))` NumPy arrays → batched unpaired `tf.data.Dataset`.

    Args:
        domain_a, domain_b: `(images (n, H, W, 3) in [-1, 1], masks (n, H, W, ins_max))`.
        batch_size: samples per batch; the last incomplete batch of an epoch is dropped.
        shuffle: shuffle A and draw B at random (True) or take both in order (False).
        seed: seed of the shuffles.
        crop: `(H, W)` of a random crop (official `fineSize`), or None to keep the stored size.
        flip: random horizontal flips (official default in training).
    """
    length = max(len(domain_a[0]), len(domain_b[0]))
    if length < batch_size:
        raise ValueError(
            f"unpaired_dataset: batch_size={batch_size} is larger than the data set ({length} samples)."
        )
    augment = None
    if crop is not None or flip:
        size = crop or tuple(domain_a[0].shape[1:3])

        def augment(image, masks):
            return crop_and_flip(image, masks, size, flip)
    second_seed = None if seed is None else seed + 1
    dataset = tf.data.Dataset.zip(
        (_shuffled(domain_a, seed, shuffle, augment), _shuffled(domain_b, second_seed, shuffle, augment))
    )
    return dataset.take(length).batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
