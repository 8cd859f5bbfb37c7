"""Numbers that tell how well a translation went, on NumPy arrays.

Images `(B, H, W, 3)` in [-1, 1]; masks `(B, H, W, N)` with −1 = background, +1 = instance (a mask
pixel counts as instance where its value is > 0, so translated soft masks in (−1, 1) are cut at 0).

- `background_error`: how much of the background the translation changed.
- `object_texture`: how much fine texture (speckle, stripes) the objects carry.
- `instance_counts`, `instance_fidelity`: whether every instance came out as one instance.
- `connected_components`: instances of a single merged mask (the CycleGAN+Seg baseline).
- `shape_of`, `shape_score` (`shape_hits` per image): on the synthetic data, which shape of a pair
  a mask has.
- `painted_masks`: on the synthetic data, where a translated image paints each input instance (its
  shape judged by `shape_score`, as the masks' are).
- `classification_score` (`classified_as` per image), `masked_images`: the paper's classification
  score (Appendix D), given a domain classifier's probabilities (`keras_instagan.classifier`).
- `bootstrap_interval`: how far a share (shape, classification) may move with other images.
- `frechet_distance`, `kernel_distance`: FID and KID on feature vectors.
"""

import numpy as np

from keras_instagan.data.shapes import fill


def background_error(image, translated, masks, translated_masks):
    """Mean |image − translated| outside the union of the input and translated masks, 0–255 units.

    Returns `(B,)`; a sample whose union covers the whole image gets NaN.
    """
    union = (np.asarray(masks) > 0).any(-1) | (np.asarray(translated_masks) > 0).any(-1)
    background = ~union
    error = np.abs(np.asarray(image) - np.asarray(translated)).mean(-1) * 127.5
    pixels = background.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pixels > 0, (error * background).sum(axis=(1, 2)) / pixels, np.nan)


def object_texture(images, masks, border=2, min_pixels=4):
    """Fine texture inside the objects: per image, the mean over its instances of mean |x − the mean
    of x's 3×3 neighbourhood| (over pixels and channels, 0–255 units) inside the instance's mask
    eroded by `border` pixels (so that the object's outline does not count).

    A flat object scores 0; speckle, stripes or a checkerboard score in proportion to their contrast.
    The synthetic data's objects are flat (real target: 0.00), so what a translation scores there is
    texture the generator added; on photographs read it against the real target's row. Instances
    with fewer than `min_pixels` pixels left after the erosion do not count.

    Args:
        images: `(B, H, W, 3)` in [-1, 1].
        masks: `(B, H, W, N)` in {−1, +1}, the masks the objects are read under (a translation's
            own).
    Returns `(B,)`; an image with no instance left to read gets NaN.
    """
    images, inside = np.asarray(images, "float32"), np.asarray(masks) > 0
    if inside.shape[:3] != images.shape[:3]:
        raise ValueError(f"object_texture: images {images.shape} and masks {inside.shape} differ in B, H, W")
    height, width = images.shape[1:3]
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    neighbourhood = sum(padded[:, i : i + height, j : j + width] for i in range(3) for j in range(3)) / 9
    detail = np.abs(images - neighbourhood).mean(-1) * 127.5
    texture = np.full(len(images), np.nan)
    for b in range(len(images)):
        values = []
        for k in range(inside.shape[-1]):
            interior = inside[b, ..., k]
            for _ in range(border):
                interior = _erode(interior)
            if interior.sum() >= min_pixels:
                values.append(detail[b][interior].mean())
        if values:
            texture[b] = np.mean(values)
    return texture


def connected_components(mask):
    """4-connected components of one binary `(H, W)` mask → `(H, W, K)` masks in {−1, +1}, largest
    first (K = 0 for an empty mask)."""
    mask = np.asarray(mask, bool)
    height, width = mask.shape
    labels = np.where(mask, np.arange(1, mask.size + 1).reshape(mask.shape), 0)
    big = mask.size + 1
    while True:  # every pixel takes the smallest label among itself and its 4 neighbours in the mask
        padded = np.pad(np.where(mask, labels, big), 1, constant_values=big)
        neighbours = np.stack(
            [padded[1:-1, 1:-1], padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]]
        )
        updated = np.where(mask, neighbours.min(0), 0)
        if np.array_equal(updated, labels):
            break
        labels = updated
    ids, sizes = np.unique(labels[mask], return_counts=True)
    ids = ids[np.argsort(-sizes, kind="stable")]
    if not len(ids):
        return -np.ones((height, width, 0), "float32")
    return np.where(labels[..., None] == ids, 1.0, -1.0).astype("float32")


def instance_counts(masks, translated_masks, min_fraction=0.1, merge_iou=0.5):
    """Instances in and out of each sample, slot by slot: `(in, out)`, each `(B,)` int.

    An input instance is a slot with any pixel > 0. Its translated mask *vanished* when it keeps
    fewer than `min_fraction` of the input instance's pixels (as a count, not an overlap: the shape
    may move and change). Translated masks whose IoU exceeds `merge_iou` (directly or through a
    chain) *merged* into one instance. `out` counts the instances left after both.
    """
    masks, translated = np.asarray(masks) > 0, np.asarray(translated_masks) > 0
    if masks.shape != translated.shape:
        raise ValueError(
            f"instance_counts: masks {masks.shape} and translated_masks {translated.shape} differ; "
            "compare slot by slot only when the translation kept one mask per instance."
        )
    areas_in = masks.sum(axis=(1, 2))
    areas_out = translated.sum(axis=(1, 2))
    present = areas_in > 0
    kept = present & (areas_out >= min_fraction * areas_in)
    counts_out = []
    for b in range(masks.shape[0]):
        slots = np.flatnonzero(kept[b])
        if not len(slots):  # nothing went in, or everything vanished
            counts_out.append(0)
            continue
        flat = translated[b][..., slots].reshape(-1, len(slots)).astype("float32")
        overlap = flat.T @ flat
        union = areas_out[b][slots][:, None] + areas_out[b][slots][None, :] - overlap
        linked = overlap > merge_iou * union
        group = np.arange(len(slots))
        for _ in range(len(slots)):  # smallest index of every chain of links
            group = np.array([group[linked[k]].min() for k in range(len(slots))])
        counts_out.append(len(np.unique(group)))
    return present.sum(axis=1), np.array(counts_out, "int64")


def instance_fidelity(masks, translated_masks, **kwargs):
    """Σ instances out / Σ instances in over the batch (1.0 = every instance kept, none merged); see
    `instance_counts`. NaN when there is no input instance."""
    counts_in, counts_out = instance_counts(masks, translated_masks, **kwargs)
    return float(counts_out.sum() / counts_in.sum()) if counts_in.sum() else float("nan")


def shape_of(mask, candidates=("square", "ellipse")):
    """Which of `candidates` (names in `data.shapes.SHAPES`) one binary `(H, W)` mask is; None if empty.

    The mask is compared with each candidate drawn to fill its bounding box (`data.shapes.fill`: the
    box itself, the inscribed ellipse, the upright triangle, the cross); it is the one with the
    largest IoU. An axis-aligned square fills its box (IoU 1 vs π/4 with the ellipse), an ellipse
    the other way round; a partly hidden object keeps its answer while the hidden part is small.
    Below about 6 pixels across the shapes are not told apart reliably (a disc of radius 2.5 centred
    on a pixel corner rasterises to a 4×4 square).
    """
    mask = np.asarray(mask) > 0
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    top, left = rows[0], cols[0]
    height, width = rows[-1] + 1 - top, cols[-1] + 1 - left
    y, x = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]] + 0.5
    area = mask.sum()
    best, best_iou = None, -1.0
    for shape in candidates:
        template = fill(shape, y, x, top, left, height, width)
        inter = (mask & template).sum()
        iou = inter / (area + template.sum() - inter)
        if iou > best_iou:
            best, best_iou = shape, iou
    return best


def shape_hits(masks, target, reference=None, min_fraction=0.1, candidates=("square", "ellipse")):
    """Per image, how many instances have the `target` shape and how many instances there are
    (arguments as `shape_score`): `(hits, instances)`, two `(B,)` int arrays."""
    if target not in candidates:
        raise ValueError(f"shape_score: target must be one of {candidates}; got {target!r}.")
    masks = np.asarray(masks) > 0
    areas = masks.sum(axis=(1, 2))
    if reference is None:
        present, kept = areas > 0, areas > 0
    else:
        reference_areas = (np.asarray(reference) > 0).sum(axis=(1, 2))
        present = reference_areas > 0
        kept = present & (areas >= min_fraction * reference_areas) & (areas > 0)
    hits = np.zeros(len(masks), int)
    for b, k in zip(*np.nonzero(kept)):
        hits[b] += shape_of(masks[b, ..., k], candidates) == target
    return hits, present.sum(axis=1)


def shape_score(masks, target, reference=None, min_fraction=0.1, candidates=("square", "ellipse")):
    """Share of instances whose mask has the `target` shape, judged among `candidates` (`shape_of`).

    Args:
        masks: `(B, H, W, N)` translated masks, one instance per slot.
        target: the shape of the target domain, one of `candidates`.
        reference: the input masks `(B, H, W, N)`; when given, the instances are its non-empty slots
            and a translated mask that vanished (fewer than `min_fraction` of the input pixels)
            counts as a failure. Without it, every non-empty slot of `masks` is an instance.
        candidates: the shapes a mask may be (the two of a `data.shapes.PAIRS` pair).

    Returns NaN when there is no instance.
    """
    hits, instances = shape_hits(masks, target, reference, min_fraction, candidates)
    total = instances.sum()
    return float(hits.sum() / total) if total else float("nan")


def _erode(mask):
    """One step of 4-neighbour binary erosion of an `(H, W)` bool array (outside counts as False)."""
    padded = np.pad(mask, 1)
    return mask & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]


def _reaches_cut_edge(region, box, height, width):
    """Whether `region` (a bool array over `box`) touches an edge of the box that lies inside the
    image: there the region was cut, so it is no object of its own (e.g. a colour smeared over the
    whole neighbourhood)."""
    rows, cols = box
    return bool(
        (rows.start > 0 and region[0].any())
        or (rows.stop < height and region[-1].any())
        or (cols.start > 0 and region[:, 0].any())
        or (cols.stop < width and region[:, -1].any())
    )


def painted_masks(images, masks, translated, margin=0.25, tolerance=0.6):
    """Where a translated image *paints* each input instance, read from the image alone: `(B, H, W,
    N)` masks in {−1, +1}, one per input slot (empty where the slot is empty).

    The synthetic objects are flat colours. For instance k the object colour in the translated image
    is the median of `translated` over the input mask eroded by one pixel (the part that lies inside
    any shape of the same box), and a pixel of the instance's box, enlarged by `margin` of its side on
    every side, is painted when its colour is closer to that colour than to what the background was
    there (the input pixel outside the input mask; the mean of the box's background pixels inside
    it) and closer than `tolerance` (Euclidean, [-1, 1] units). The painted mask is the largest
    4-connected region of those pixels that touches the input mask; it stays empty (the instance was
    not painted as an object) when that region reaches an edge of the enlarged box inside the image,
    where it would have been cut (a colour smeared over the whole neighbourhood).

    It lets the shape score judge the image itself, where `shape_score` on the translated masks judges
    only the masks: a generator whose masks change shape while its image keeps the input's objects
    scores high on one and low on the other. It needs no translated masks (plain CycleGAN). On the
    input itself (`translated = images`) it returns the visible pixels of each instance.

    Args:
        images: `(B, H, W, 3)` input images in [-1, 1].
        masks: `(B, H, W, N)` input masks.
        translated: `(B, H, W, 3)` translated images in [-1, 1].
    """
    images, translated = np.asarray(images, "float32"), np.asarray(translated, "float32")
    masks = np.asarray(masks) > 0
    if images.shape != translated.shape or masks.shape[:3] != images.shape[:3]:
        raise ValueError(
            f"painted_masks: images {images.shape}, masks {masks.shape} and translated "
            f"{translated.shape} must share (B, H, W)."
        )
    height, width = images.shape[1:3]
    painted = -np.ones(masks.shape, "float32")
    for b, k in zip(*np.nonzero(masks.any(axis=(1, 2)))):
        mask = masks[b, ..., k]
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        pad_y = int(np.ceil(margin * (rows[-1] + 1 - rows[0]))) + 1
        pad_x = int(np.ceil(margin * (cols[-1] + 1 - cols[0]))) + 1
        box = (
            slice(max(rows[0] - pad_y, 0), min(rows[-1] + 1 + pad_y, height)),
            slice(max(cols[0] - pad_x, 0), min(cols[-1] + 1 + pad_x, width)),
        )
        core = _erode(mask)
        colour = np.median(translated[b][core if core.any() else mask], axis=0)
        inside, source, out = mask[box], images[b][box], translated[b][box]
        background = ~masks[b][box].any(-1)
        fill_colour = source[background].mean(0) if background.any() else np.zeros(3, "float32")
        reference = np.where(inside[..., None], fill_colour, source)
        to_object = np.linalg.norm(out - colour, axis=-1)
        candidate = (to_object < np.linalg.norm(out - reference, axis=-1)) & (to_object < tolerance)
        regions = connected_components(candidate) > 0
        touching = [r for r in range(regions.shape[-1]) if regions[..., r][inside].any()]
        if touching and not _reaches_cut_edge(regions[..., touching[0]], box, height, width):
            painted[b, box[0], box[1], k] = np.where(regions[..., touching[0]], 1.0, -1.0)
    return painted


def masked_images(images, masks):
    """Images with everything outside the union of their masks set to 0 (mid-grey): the input of the
    masked classification score. `(B, H, W, 3)`, `(B, H, W, N)` → `(B, H, W, 3)`."""
    union = (np.asarray(masks) > 0).any(-1, keepdims=True)
    return np.where(union, np.asarray(images), 0.0).astype("float32")


def classified_as(probabilities, target):
    """Per image, whether a domain classifier assigns it to `target` ("A" or "B"): `(B,)` bool.

    `probabilities`: `(B,)` or `(B, 1)`, the classifier's P(domain B) per image.
    """
    if target not in ("A", "B"):
        raise ValueError(f"classification_score: target must be 'A' or 'B'; got {target!r}.")
    p = np.asarray(probabilities, "float64").reshape(-1)
    return p > 0.5 if target == "B" else p < 0.5


def classification_score(probabilities, target):
    """Share of images a domain classifier assigns to `target` ("A" or "B") (`classified_as`)."""
    return float(np.mean(classified_as(probabilities, target)))


def bootstrap_interval(hits, totals=None, level=0.95, resamples=2000, seed=0):
    """The percentile-bootstrap `level` interval of the share `sum(hits) / sum(totals)` (the mean of
    `hits` without `totals`): the images, entries of the `(n,)` arrays, drawn `resamples` times with
    replacement, so that the instances of one image stay together. Returns `(low, high)`; NaNs when
    no draw has a total."""
    hits = np.asarray(hits, "float64")
    totals = np.ones_like(hits) if totals is None else np.asarray(totals, "float64")
    draws = np.random.default_rng(seed).integers(0, len(hits), (resamples, len(hits)))
    numerators, denominators = hits[draws].sum(axis=1), totals[draws].sum(axis=1)
    shares = numerators[denominators > 0] / denominators[denominators > 0]
    if not len(shares):
        return float("nan"), float("nan")
    tail = 50 * (1 - level)
    low, high = np.percentile(shares, [tail, 100 - tail])
    return float(low), float(high)


def _psd_sqrt(matrix):
    """Square root of a symmetric positive semi-definite matrix (negative rounding clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def gaussian_frechet_distance(mean_1, cov_1, mean_2, cov_2):
    """Fréchet distance between N(mean_1, cov_1) and N(mean_2, cov_2):
    `|m1 − m2|² + tr(C1 + C2 − 2 (C1^½ C2 C1^½)^½)`."""
    root_1 = _psd_sqrt(np.asarray(cov_1, "float64"))
    cross = _psd_sqrt(root_1 @ np.asarray(cov_2, "float64") @ root_1)
    diff = np.asarray(mean_1, "float64") - np.asarray(mean_2, "float64")
    return float(diff @ diff + np.trace(cov_1) + np.trace(cov_2) - 2 * np.trace(cross))


def frechet_distance(features_1, features_2):
    """FID: the Fréchet distance between Gaussians fitted to two `(n, d)` feature sets (n ≥ 2)."""
    f1, f2 = (np.asarray(f, "float64") for f in (features_1, features_2))
    for name, f in (("features_1", f1), ("features_2", f2)):
        if f.ndim != 2 or len(f) < 2:
            raise ValueError(f"frechet_distance: {name} must be (n, d) with n >= 2; got {f.shape}.")
    return gaussian_frechet_distance(
        f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False)
    )


def polynomial_mmd2(features_1, features_2):
    """Unbiased MMD² with KID's kernel `k(x, y) = (x·y / d + 1)³` between `(m, d)` and `(n, d)`."""
    f1, f2 = (np.asarray(f, "float64") for f in (features_1, features_2))
    d = f1.shape[1]
    k11, k22, k12 = ((a @ b.T / d + 1) ** 3 for a, b in ((f1, f1), (f2, f2), (f1, f2)))
    m, n = len(f1), len(f2)
    return float(
        (k11.sum() - np.trace(k11)) / (m * (m - 1))
        + (k22.sum() - np.trace(k22)) / (n * (n - 1))
        - 2 * k12.mean()
    )


def kernel_distance(features_1, features_2, subsets=10, subset_size=100, seed=0):
    """KID: mean and standard deviation of `polynomial_mmd2` over `subsets` random subsets of
    `min(subset_size, n1, n2)` feature vectors each (without replacement within a subset)."""
    f1, f2 = np.asarray(features_1), np.asarray(features_2)
    size = min(subset_size, len(f1), len(f2))
    if size < 2:
        raise ValueError(f"kernel_distance: need at least 2 vectors per set; got {len(f1)} and {len(f2)}.")
    rng = np.random.default_rng(seed)
    values = [
        polynomial_mmd2(
            f1[rng.choice(len(f1), size, replace=False)], f2[rng.choice(len(f2), size, replace=False)]
        )
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))
