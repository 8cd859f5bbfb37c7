"""Unpaired sampling of two domains without TensorFlow: `UnpairedSequence`, a `keras.utils.PyDataset`
of NumPy batches for the JAX and PyTorch backends (`unpaired_dataset` is its `tf.data` counterpart).

Both follow the official loader: an epoch has max(|A|, |B|) elements; each domain is an endless
stream of reshuffled passes over its samples (domain B drawn independently of A); batches are
complete. The same random crop and horizontal flip apply to an image and all its masks, and the
masks are then re-sorted largest first.
"""

import keras
import numpy as np

from keras_instagan.data.domain import InstanceDomain


def domain_size(domain):
    """Samples in a domain: an `InstanceDomain` or `(images, masks)` arrays."""
    return len(domain) if isinstance(domain, InstanceDomain) else len(domain[0])


def stored_size(domain):
    """(H, W) of a domain's samples before the crop."""
    return domain.output_size() if isinstance(domain, InstanceDomain) else tuple(domain[0].shape[1:3])


def check_domains(caller, domain_a, domain_b, batch_size, crop):
    """Raise a `ValueError` naming `caller` for an empty domain, a batch larger than an epoch, or a
    crop larger than the samples; return the epoch length max(|A|, |B|)."""
    length = max(domain_size(domain_a), domain_size(domain_b))
    for name, domain in (("domain_a", domain_a), ("domain_b", domain_b)):
        if domain_size(domain) == 0:
            raise ValueError(f"{caller}: {name} has no samples")
        stored = stored_size(domain)
        if crop is not None and (crop[0] > stored[0] or crop[1] > stored[1]):
            raise ValueError(
                f"{caller}: crop {tuple(crop)} is larger than {name}'s samples {tuple(stored)} (H, W)"
            )
    if length < batch_size:
        raise ValueError(f"{caller}: batch_size={batch_size} is larger than the data set ({length} samples).")
    return length


def sort_masks_by_area(masks):
    """`(H, W, N)` masks reordered largest first (stable)."""
    area = np.sum(masks + 1.0, axis=(0, 1))
    return masks[..., np.argsort(-area, kind="stable")]


def centre_crop(images, masks, size):
    """`(n, H, W, 3)` images and `(n, H, W, N)` masks cut to their central `size` = (h, w), the masks
    re-sorted largest first as after the training pipeline's crop."""
    top, left = (images.shape[1] - size[0]) // 2, (images.shape[2] - size[1]) // 2
    window = (slice(None), slice(top, top + size[0]), slice(left, left + size[1]))
    masks = masks[window]
    order = np.argsort(-np.sum(masks + 1.0, axis=(1, 2)), axis=-1, kind="stable")
    return images[window], np.take_along_axis(masks, order[:, None, None, :], axis=-1)


class _Stream:
    """Indices of one domain as an endless stream of passes, each in a new random order (or in
    order without shuffling)."""

    def __init__(self, size, rng, shuffle):
        self.size, self.rng, self.shuffle = size, rng, shuffle
        self.pending = np.zeros((0,), "int64")

    def take(self, count):
        while len(self.pending) < count:
            order = self.rng.permutation(self.size) if self.shuffle else np.arange(self.size)
            self.pending = np.concatenate([self.pending, order])
        taken, self.pending = self.pending[:count], self.pending[count:]
        return taken


class UnpairedSequence(keras.utils.PyDataset):
    """Two domains → batches `((image_A, masks_A), (image_B, masks_B))` of NumPy arrays, images
    `(batch, H, W, 3)` in [-1, 1] and masks `(batch, H, W, ins_max)` (−1 background, +1 instance).

    Args as `unpaired_dataset` (without `cache`): `domain_a`, `domain_b` are `(images, masks)` arrays
    or `InstanceDomain`s; `crop` `(H, W)` or None; `flip` random horizontal flips. The draws of each
    epoch (orders, crop offsets, flips) are made at its start, so a batch depends only on its index.
    `shard` `(index, count)`: every process of a multi-process run builds the same sequence (the same
    seed) and gets the `index`-th of `count` equal slices of each global batch of `batch_size`.
    """

    def __init__(
        self, domain_a, domain_b, batch_size=1, shuffle=True, seed=None, crop=None, flip=False, shard=None
    ):
        super().__init__()
        self.length = check_domains("UnpairedSequence", domain_a, domain_b, batch_size, crop)
        self.shard = shard or (0, 1)
        if not 0 <= self.shard[0] < self.shard[1] or batch_size % self.shard[1]:
            raise ValueError(
                f"UnpairedSequence: shard {self.shard} must be (index, count) with 0 <= index < count "
                f"and count dividing batch_size={batch_size}"
            )
        self.domains = domain_a, domain_b
        self.batch_size, self.crop, self.flip = batch_size, crop, flip
        self.rng = np.random.default_rng(seed)
        self.streams = [_Stream(domain_size(d), self.rng, shuffle) for d in self.domains]
        self._draw_epoch()

    def _draw_epoch(self):
        used = len(self) * self.batch_size
        self.order = [stream.take(self.length)[:used] for stream in self.streams]
        self.offsets, self.flips = [], []
        for domain in self.domains:
            height, width = stored_size(domain)
            crop = self.crop or (height, width)
            self.offsets.append(
                np.stack(
                    [
                        self.rng.integers(0, height - crop[0] + 1, used),
                        self.rng.integers(0, width - crop[1] + 1, used),
                    ],
                    axis=1,
                )
            )
            self.flips.append(self.rng.random(used) < 0.5 if self.flip else np.zeros(used, bool))

    def __len__(self):
        return self.length // self.batch_size

    def on_epoch_end(self):
        self._draw_epoch()

    def _sample(self, side, k):
        domain = self.domains[side]
        index = int(self.order[side][k])
        if isinstance(domain, InstanceDomain):
            image, masks = domain.load(index)
        else:
            image, masks = domain[0][index], domain[1][index]
        top, left = self.offsets[side][k]
        height, width = self.crop or image.shape[:2]
        image = image[top : top + height, left : left + width]
        masks = masks[top : top + height, left : left + width]
        if self.flips[side][k]:
            image, masks = image[:, ::-1], masks[:, ::-1]
        if self.crop is not None or self.flip:
            masks = sort_masks_by_area(masks)
        return np.ascontiguousarray(image, "float32"), np.ascontiguousarray(masks, "float32")

    def __getitem__(self, batch):
        if not 0 <= batch < len(self):
            raise IndexError(f"UnpairedSequence: batch {batch} of {len(self)}")
        index, count = self.shard
        local = self.batch_size // count
        start = batch * self.batch_size + index * local
        ks = range(start, start + local)
        sides = []
        for side in (0, 1):
            samples = [self._sample(side, k) for k in ks]
            sides.append((np.stack([s[0] for s in samples]), np.stack([s[1] for s in samples])))
        return (tuple(sides),)  # `(x,)`: Keras would read a pair as `(x, y)`
