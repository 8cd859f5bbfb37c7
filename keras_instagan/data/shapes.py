"""The built-in synthetic data sets: two domains of objects that differ only in shape.

Pairs (`PAIRS`): `"ellipses_squares"` (domain A ellipses, B axis-aligned squares; the default) and
`"triangles_crosses"` (A upright triangles, B plus-shaped crosses), a second pair so that what is
measured on the first is not tuned to ellipses and squares.

Each image shows 1–`max_instances` objects on a textured background. Background textures, object
colours, sizes, positions and overlaps are drawn from the same distributions in both domains, so a
translation has to change every object's shape and can keep the background as it is, which is what
InstaGAN's context-preserving loss and instance masks are for. Above 4 instances per image the
objects shrink (radius × √(4 / max_instances)) so that crowded images still show most of each one.

Everything is procedural and deterministic per seed; no download. Masks are exact: the visible pixels
of each object (objects are drawn largest first, so smaller ones lie on top), sorted by decreasing area
and padded with empty (all −1) slots. `fill` defines each shape inside its bounding box; the shape
metric (`keras_instagan.metrics.shape_of`) judges translated masks with the same definition.
"""

import numpy as np

DOMAINS = ("A", "B")
PAIRS = {"ellipses_squares": ("ellipse", "square"), "triangles_crosses": ("triangle", "cross")}
SHAPES = ("ellipse", "square", "triangle", "cross")
CROSS_ARM = 1 / 3  # a cross's arm width, as a fraction of its span


def domain_shapes(pair="ellipses_squares"):
    """`{"A": shape, "B": shape}` of a pair in `PAIRS`."""
    if pair not in PAIRS:
        raise ValueError(f"shapes: pair must be one of {sorted(PAIRS)}; got {pair!r}.")
    return dict(zip(DOMAINS, PAIRS[pair]))


def fill(shape, y, x, top, left, height, width):
    """Where `shape` lies, filling the box `(top, left, height, width)`: a bool array like `y`, `x`
    (pixel-centre coordinates). Ellipse: the inscribed ellipse; square: the box; triangle: apex at the
    top centre, base along the bottom; cross: two bars of `CROSS_ARM` of the span through the centre."""
    u, v = (y - top) / height, (x - left) / width
    inside = (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
    if shape == "ellipse":
        return (2 * u - 1) ** 2 + (2 * v - 1) ** 2 <= 1.0
    if shape == "square":
        return inside
    if shape == "triangle":
        return inside & (np.abs(2 * v - 1) <= u)
    if shape == "cross":
        return inside & ((np.abs(2 * u - 1) <= CROSS_ARM) | (np.abs(2 * v - 1) <= CROSS_ARM))
    raise ValueError(f"shapes: shape must be one of {SHAPES}; got {shape!r}.")


def _background(rng, size):
    """A colour texture in [0, 1]: two sinusoidal gratings of random orientation, frequency, phase and
    colour direction, each of colour amplitude 0.2 (the norm of its RGB vector), on mid-grey (0.5),
    plus faint pixel noise.

    The base colour and the gratings' strength are the same in every image on purpose. The official
    generator instance-normalises right after its first convolution, which removes the mean and the
    scale of every feature map: a per-image colour offset or overall contrast is lost there and no
    amount of training brings it back. This data set's first version drew a random base colour and
    random grating amplitudes, and held every run's background error far above what these
    backgrounds allow (docs/quality.md, `bench/identity_floor.py`).
    """
    y, x = np.mgrid[0:size, 0:size].astype("float32") / size
    image = np.full((size, size, 3), 0.5)
    for _ in range(2):
        angle, freq, phase = rng.uniform(0, np.pi), rng.uniform(1.0, 3.0), rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * freq * (x * np.cos(angle) + y * np.sin(angle)) + phase)
        colour = rng.normal(size=3)
        image += wave[..., None] * (0.2 * colour / np.linalg.norm(colour))
    image += rng.normal(0, 0.01, image.shape)
    return np.clip(image, 0.0, 1.0)


def _object_mask(rng, shape, size, radius):
    """A filled `shape` of about `radius` (in pixels) at a random place: ellipses and triangles get
    independent half-height and half-width in [0.75, 1]·radius, squares and crosses one half-side in
    [0.75, 0.95]·radius."""
    y, x = np.mgrid[0:size, 0:size].astype("float32") + 0.5
    cy, cx = rng.uniform(radius, size - radius, 2)
    if shape in ("ellipse", "triangle"):
        ry, rx = radius * rng.uniform(0.75, 1.0, 2)
    else:
        ry = rx = radius * rng.uniform(0.75, 0.95)
    return fill(shape, y, x, cy - ry, cx - rx, 2 * ry, 2 * rx)


def make_sample(rng, domain, size=64, max_instances=4, min_area=None, pair="ellipses_squares"):
    """One image `(size, size, 3)` in [-1, 1] and its masks `(size, size, max_instances)` in {−1, +1}."""
    if domain not in DOMAINS:
        raise ValueError(f"shapes: domain must be one of {DOMAINS}; got {domain!r}.")
    shape = domain_shapes(pair)[domain]
    min_area = min_area if min_area is not None else max(8, size * size // 200)
    image = _background(rng, size)
    count = rng.integers(1, max_instances + 1)
    scale = size * min(1.0, np.sqrt(4 / max_instances))
    radii = np.sort(rng.uniform(0.10, 0.22, count) * scale)[::-1]
    owner = -np.ones((size, size), "int32")
    for k, radius in enumerate(radii):
        region = _object_mask(rng, shape, size, radius)
        colour = rng.uniform(0.0, 1.0, 3)
        shading = 1.0 - 0.15 * np.linspace(0, 1, size)[:, None, None]
        image = np.where(region[..., None], np.clip(colour * shading, 0, 1), image)
        owner[region] = k
    masks = [owner == k for k in range(count)]
    masks = sorted((m for m in masks if m.sum() >= min_area), key=lambda m: -m.sum())
    if not masks:  # every object hidden: draw again
        return make_sample(rng, domain, size, max_instances, min_area, pair)
    stacked = -np.ones((size, size, max_instances), "float32")
    for k, mask in enumerate(masks):
        stacked[..., k] = np.where(mask, 1.0, -1.0)
    return (image * 2.0 - 1.0).astype("float32"), stacked


def make_domain(domain, count, size=64, max_instances=4, seed=0, pair="ellipses_squares"):
    """`count` samples of one domain: images `(count, size, size, 3)`, masks `(count, size, size, k)`."""
    rng = np.random.default_rng([seed, DOMAINS.index(domain)])
    samples = [make_sample(rng, domain, size, max_instances, pair=pair) for _ in range(count)]
    return np.stack([s[0] for s in samples]), np.stack([s[1] for s in samples])


def load(count=200, size=64, max_instances=4, seed=0, pair="ellipses_squares"):
    """Both domains of `pair` as `((images_A, masks_A), (images_B, masks_B))` NumPy arrays."""
    return tuple(make_domain(d, count, size, max_instances, seed, pair) for d in DOMAINS)
