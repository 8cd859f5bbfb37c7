"""The built-in synthetic data set: ellipses (domain A) ↔ squares (domain B).

Each image shows 1–`max_instances` objects on a textured background. The two domains differ only in
the *shape* of the objects: background textures, object colours, sizes, positions and overlaps are
drawn from the same distributions in both. A translation therefore has to change every object's shape
(ellipse ↔ axis-aligned square) and can keep the background as it is, which is what InstaGAN's
context-preserving loss and instance masks are for.

Everything is procedural and deterministic per seed; no download. Masks are exact: the visible pixels
of each object (objects are drawn largest first, so smaller ones lie on top), sorted by decreasing area
and padded with empty (all −1) slots.
"""

import numpy as np

DOMAINS = ("A", "B")
SHAPES = {"A": "ellipse", "B": "square"}


def _background(rng, size):
    """A colour texture in [0, 1]: two sinusoidal gratings of random orientation, frequency, phase and
    colour on a mid-grey base, plus faint pixel noise.

    The variation lives in the texture rather than in a flat base colour on purpose: the official
    generator instance-normalises right after its first convolution, which removes the mean of every
    feature map, so a flat colour offset could not be preserved by any amount of training.
    """
    y, x = np.mgrid[0:size, 0:size].astype("float32") / size
    image = np.broadcast_to(rng.uniform(0.4, 0.6, 3), (size, size, 3)).copy()
    for _ in range(2):
        angle, freq, phase = rng.uniform(0, np.pi), rng.uniform(1.0, 3.0), rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * freq * (x * np.cos(angle) + y * np.sin(angle)) + phase)
        image += 0.2 * wave[..., None] * rng.uniform(-1, 1, 3)
    image += rng.normal(0, 0.01, image.shape)
    return np.clip(image, 0.0, 1.0)


def _object_mask(rng, shape, size, radius):
    """A filled ellipse or square of about `radius` (in pixels) at a random place."""
    y, x = np.mgrid[0:size, 0:size].astype("float32") + 0.5
    cy, cx = rng.uniform(radius, size - radius, 2)
    if shape == "ellipse":
        ry, rx = radius * rng.uniform(0.75, 1.0, 2)
        return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0
    half = radius * rng.uniform(0.75, 0.95)
    return (np.abs(y - cy) <= half) & (np.abs(x - cx) <= half)


def make_sample(rng, domain, size=64, max_instances=4, min_area=None):
    """One image `(size, size, 3)` in [-1, 1] and its masks `(size, size, max_instances)` in {−1, +1}."""
    if domain not in DOMAINS:
        raise ValueError(f"shapes: domain must be one of {DOMAINS}; got {domain!r}.")
    min_area = min_area if min_area is not None else max(8, size * size // 200)
    image = _background(rng, size)
    count = rng.integers(1, max_instances + 1)
    radii = np.sort(rng.uniform(0.10, 0.22, count) * size)[::-1]
    owner = -np.ones((size, size), "int32")
    for k, radius in enumerate(radii):
        region = _object_mask(rng, SHAPES[domain], size, radius)
        colour = rng.uniform(0.0, 1.0, 3)
        shading = 1.0 - 0.15 * np.linspace(0, 1, size)[:, None, None]
        image = np.where(region[..., None], np.clip(colour * shading, 0, 1), image)
        owner[region] = k
    masks = [owner == k for k in range(count)]
    masks = sorted((m for m in masks if m.sum() >= min_area), key=lambda m: -m.sum())
    if not masks:  # every object hidden: draw again
        return make_sample(rng, domain, size, max_instances, min_area)
    stacked = -np.ones((size, size, max_instances), "float32")
    for k, mask in enumerate(masks):
        stacked[..., k] = np.where(mask, 1.0, -1.0)
    return (image * 2.0 - 1.0).astype("float32"), stacked


def make_domain(domain, count, size=64, max_instances=4, seed=0):
    """`count` samples of one domain: images `(count, size, size, 3)`, masks `(count, size, size, k)`."""
    rng = np.random.default_rng([seed, DOMAINS.index(domain)])
    samples = [make_sample(rng, domain, size, max_instances) for _ in range(count)]
    return np.stack([s[0] for s in samples]), np.stack([s[1] for s in samples])


def load(count=200, size=64, max_instances=4, seed=0):
    """Both domains as `((images_A, masks_A), (images_B, masks_B))` NumPy arrays."""
    return tuple(make_domain(d, count, size, max_instances, seed) for d in DOMAINS)
