"""The evaluation metrics on inputs whose answers are known in advance."""

import keras
import numpy as np
import pytest

from keras_instagan import classifier, metrics
from keras_instagan.data import shapes


def square(size, top, left, side):
    mask = -np.ones((size, size), "float32")
    mask[top : top + side, left : left + side] = 1.0
    return mask


def ellipse(size, cy, cx, ry, rx):
    y, x = np.mgrid[0:size, 0:size] + 0.5
    return np.where(((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1, 1.0, -1.0).astype("float32")


def test_background_error_counts_only_pixels_outside_both_mask_sets():
    image = np.zeros((2, 8, 8, 3), "float32")
    masks = -np.ones((2, 8, 8, 1), "float32")
    masks[:, :4, :4] = 1.0  # 16 instance pixels in the input
    translated_masks = -np.ones((2, 8, 8, 1), "float32")
    translated_masks[:, 4:, 4:] = 1.0  # 16 more in the output: 32 background pixels left
    translated = image.copy()
    translated[:, :4, :4] = 1.0  # changes inside the masks do not count
    translated[0, 4:, :4] = 0.4  # 16 of the 32 background pixels of sample 0 change by 0.4
    got = metrics.background_error(image, translated, masks, translated_masks)
    np.testing.assert_allclose(got, [0.4 * 127.5 * 16 / 32, 0.0], rtol=1e-6)
    full = np.ones_like(masks)
    assert np.isnan(metrics.background_error(image, translated, full, full)).all()


def test_object_texture_reads_fine_texture_inside_the_objects_only():
    size, a = 24, 0.2
    checkerboard = np.where(np.add.outer(np.arange(size), np.arange(size)) % 2 == 0, a, -a)
    images = np.full((3, size, size, 3), -0.5, "float32")
    images[:, 2:14, 2:14] = 0.5  # a flat object with a sharp outline
    images[1] = checkerboard[..., None]  # image 2: fine texture everywhere
    masks = -np.ones((3, size, size, 2), "float32")
    masks[:, 2:14, 2:14, 0] = 1.0
    masks[1, 14:22, 14:22, 1] = 1.0  # a second instance in image 2 only
    masks[2, ..., 0] = -1.0
    masks[2, 0:3, 0:3, 1] = 1.0  # image 3: one instance, nothing left after the 2-pixel erosion
    got = metrics.object_texture(images, masks)
    # In a ±a checkerboard each pixel differs from its 3×3 mean by 8a/9 (five of one sign, four of the
    # other); the outline of image 1's flat object is eroded away.
    np.testing.assert_allclose(got[:2], [0.0, 8 * a / 9 * 127.5], atol=1e-4)
    assert np.isnan(got[2])
    images[1, 14:22, 14:22] = 0.0  # the second instance flat: image 2 is the mean of its two instances
    np.testing.assert_allclose(metrics.object_texture(images, masks)[1], 8 * a / 9 * 127.5 / 2, atol=1e-4)
    (real, real_masks), _ = shapes.load(40, 32, 4, seed=9)
    assert np.nanmax(metrics.object_texture(real, real_masks)) < 0.01  # the synthetic objects are flat
    with pytest.raises(ValueError, match="object_texture: images .* differ"):
        metrics.object_texture(images, masks[:, :16])


def test_connected_components_are_found_and_sorted_by_size():
    mask = np.zeros((12, 12), bool)
    mask[0:2, 0:2] = True  # 4 pixels
    mask[5:10, 5] = True  # an L of 9 pixels
    mask[9, 5:10] = True
    mask[0:3, 9:12] = True  # 9 pixels
    mask[2, 2] = True  # only a diagonal neighbour of the first square: its own component
    components = metrics.connected_components(mask)
    assert components.shape == (12, 12, 4)
    assert [int((components[..., k] > 0).sum()) for k in range(4)] == [9, 9, 4, 1]
    np.testing.assert_array_equal((components > 0).any(-1), mask)
    assert metrics.connected_components(np.zeros((5, 5), bool)).shape == (5, 5, 0)


def test_instance_counts_detect_vanished_and_merged_instances():
    size = 16
    masks = np.stack(
        [
            square(size, 0, 0, 4),
            square(size, 0, 8, 4),
            square(size, 8, 0, 6),
            -np.ones((size, size), "float32"),
        ],
        -1,
    )[None]
    counts_in, counts_out = metrics.instance_counts(masks, masks)
    assert (counts_in[0], counts_out[0]) == (3, 3)
    vanished = masks.copy()
    vanished[0, ..., 1] = square(size, 0, 8, 1)  # 1 pixel left of 16: below 10 %
    assert metrics.instance_counts(masks, vanished)[1][0] == 2
    merged = masks.copy()
    merged[0, ..., 1] = square(size, 0, 0, 4)  # the second instance lands on the first one
    assert metrics.instance_counts(masks, merged)[1][0] == 2
    chained = masks.copy()  # 0 ~ 1 and 1 ~ 2 overlap strongly; 0 and 2 barely: one chain
    chained[0, ..., 0] = square(size, 8, 0, 5)
    chained[0, ..., 1] = square(size, 8, 0, 6)
    chained[0, ..., 2] = square(size, 9, 1, 5)
    assert metrics.instance_counts(masks, chained)[1][0] == 1
    assert metrics.instance_fidelity(np.concatenate([masks, masks]), np.concatenate([masks, merged])) == 5 / 6
    with pytest.raises(ValueError, match="masks .* and translated_masks .* differ"):
        metrics.instance_counts(masks, masks[..., :1])
    empty = -np.ones_like(masks)  # a sample without instances, and one whose instances all vanished
    counts_in, counts_out = metrics.instance_counts(
        np.concatenate([empty, masks]), np.concatenate([empty, empty])
    )
    assert counts_in.tolist() == [0, 3] and counts_out.tolist() == [0, 0]
    assert np.isnan(metrics.instance_fidelity(empty, empty))


@pytest.mark.parametrize(
    "mask,shape",
    [
        (square(32, 4, 6, 12), "square"),
        (square(32, 20, 20, 3), "square"),
        (ellipse(32, 16, 16, 8, 8), "ellipse"),
        (ellipse(32, 10, 12, 4, 7), "ellipse"),
        (ellipse(32, 16, 16, 3.5, 3.5), "ellipse"),
        (-np.ones((8, 8), "float32"), None),
    ],
)
def test_shape_of_drawn_shapes(mask, shape):
    assert metrics.shape_of(mask) == shape


def test_partly_hidden_square_is_still_a_square():
    mask = square(32, 4, 4, 16)
    mask[4:9, 4:9] = -1.0  # a corner bite of 10 % of the square
    assert metrics.shape_of(mask) == "square"


def test_shape_score_recognises_the_synthetic_domains():
    (_, masks_a), (_, masks_b) = shapes.load(100, 32, 4, seed=123)
    assert metrics.shape_score(masks_b, "square") >= 0.95
    assert metrics.shape_score(masks_a, "ellipse") >= 0.9
    assert metrics.shape_score(masks_a, "square") <= 0.1


@pytest.mark.parametrize("size,max_instances", [(32, 4), (64, 8)])
def test_shape_score_recognises_triangles_and_crosses(size, max_instances):
    pair = ("triangle", "cross")
    (_, masks_a), (_, masks_b) = shapes.load(60, size, max_instances, seed=5, pair="triangles_crosses")
    assert metrics.shape_score(masks_a, "triangle", candidates=pair) >= 0.95
    assert metrics.shape_score(masks_b, "cross", candidates=pair) >= 0.95
    assert metrics.shape_score(masks_a, "cross", candidates=pair) <= 0.05


def test_shape_of_a_hand_drawn_cross_and_triangle():
    cross = -np.ones((32, 32), "float32")
    cross[12:19, 4:28] = 1.0  # a plus whose arms are 7 of 24 pixels wide (the data's are 1/3)
    cross[4:28, 12:19] = 1.0
    triangle = -np.ones((32, 32), "float32")
    for row in range(20):  # apex at the top, 2·row + 1 pixels wide
        triangle[6 + row, 15 - row : 16 + row] = 1.0
    for candidates in (("triangle", "cross"), shapes.SHAPES):
        assert metrics.shape_of(cross, candidates) == "cross"
        assert metrics.shape_of(triangle, candidates) == "triangle"
    assert metrics.shape_of(cross, ("square", "ellipse")) == "ellipse"  # the nearer of the two
    with pytest.raises(ValueError, match="target must be one of"):
        metrics.shape_score(cross[None, ..., None], "square", candidates=("triangle", "cross"))


def test_shape_score_counts_a_vanished_instance_as_a_failure():
    masks = np.stack([ellipse(32, 8, 8, 5, 5), ellipse(32, 22, 22, 6, 6)], -1)[None]
    translated = np.stack([square(32, 3, 3, 10), -np.ones((32, 32), "float32")], -1)[None]
    assert metrics.shape_score(translated, "square", reference=masks) == 0.5
    assert metrics.shape_score(translated, "square") == 1.0
    with pytest.raises(ValueError, match="target must be one of"):
        metrics.shape_score(translated, "circle")
    hits, instances = metrics.shape_hits(
        np.concatenate([translated, masks]), "square", np.concatenate([masks] * 2)
    )
    assert hits.tolist() == [1, 0] and instances.tolist() == [2, 2]  # per image: the second has no square


def test_bootstrap_interval_resamples_images():
    hits = np.array([1] * 80 + [0] * 20)
    low, high = metrics.bootstrap_interval(hits)
    assert 0.70 < low < 0.8 < high < 0.9
    assert high - low == pytest.approx(2 * 1.96 * np.sqrt(0.8 * 0.2 / 100), abs=0.03)  # the binomial's
    assert metrics.bootstrap_interval(hits) == (low, high)  # seeded
    wider = metrics.bootstrap_interval(hits, level=0.99)
    assert wider[0] < low and wider[1] > high
    narrower = metrics.bootstrap_interval(np.tile(hits, 16))
    assert narrower[1] - narrower[0] < (high - low) / 3
    # two images of 50 instances each, one all right, one all wrong: the draws are 0, 0.5 or 1,
    # not the narrow interval 100 independent instances would give
    assert metrics.bootstrap_interval([50, 0], [50, 50]) == (0.0, 1.0)
    assert metrics.bootstrap_interval([1, 1, 1], [1, 1, 1]) == (1.0, 1.0)
    assert np.isnan(metrics.bootstrap_interval([0, 0], [0, 0])).all()


def scene(shape, background, colour, box):
    """`background` with one flat-coloured `shape` filling `box` (top, left, height, width), and its
    mask `(H, W)`."""
    size = background.shape[0]
    y, x = np.mgrid[0:size, 0:size] + 0.5
    region = shapes.fill(shape, y, x, *box)
    return np.where(region[..., None], colour, background), np.where(region, 1.0, -1.0)


@pytest.mark.parametrize("source,target", [("ellipse", "square"), ("square", "ellipse")])
def test_painted_masks_read_the_shape_from_the_image_not_the_masks(source, target):
    rng = np.random.default_rng(3)
    backgrounds = [shapes._background(rng, 48) * 2 - 1 for _ in range(12)]
    colours = rng.uniform(-1, 1, (12, 3))
    boxes = [(*rng.uniform(6, 20, 2), *rng.uniform(16, 24, 2)) for _ in range(12)]
    sources = [scene(source, bg, c, box) for bg, c, box in zip(backgrounds, colours, boxes)]
    images = np.stack([s[0] for s in sources]).astype("float32")
    masks = np.stack([s[1] for s in sources])[..., None].astype("float32")
    turned = np.stack([scene(target, bg, c, box)[0] for bg, c, box in zip(backgrounds, colours, boxes)])
    soft = turned * 0.9 + rng.normal(0, 0.03, turned.shape)  # a duller colour, some noise

    def painted_score(translated, shape):
        return metrics.shape_score(metrics.painted_masks(images, masks, translated), shape, reference=masks)

    assert painted_score(images, source) == 1.0  # the input itself: its own shapes
    assert painted_score(turned.astype("float32"), target) == 1.0
    assert painted_score(soft.astype("float32"), target) >= 11 / 12
    assert painted_score(images, target) == 0.0  # masks may have turned; the image has not
    flat = np.broadcast_to(colours[:, None, None, :], images.shape).astype("float32")
    assert (metrics.painted_masks(images, masks, flat) < 0).all()  # colour everywhere: no object
    grey = np.zeros_like(images)  # a collapsed generator
    assert (metrics.painted_masks(images, masks, grey) < 0).all()


def test_painted_masks_of_real_images_are_their_visible_instances():
    (images, masks), _ = shapes.load(40, 32, 4, seed=9)
    painted = metrics.painted_masks(images, masks, images)
    assert painted.shape == masks.shape
    assert ((painted > 0) == (masks > 0)).mean() >= 0.995
    with pytest.raises(ValueError, match="painted_masks: images"):
        metrics.painted_masks(images, masks, images[:, :16])


def test_classification_score_and_masked_images():
    p = np.array([[0.9], [0.2], [0.7], [0.4]])
    assert metrics.classification_score(p, "B") == 0.5
    assert metrics.classification_score(p[:3], "A") == 1 / 3
    assert metrics.classified_as(p, "B").tolist() == [True, False, True, False]
    images = np.full((1, 4, 4, 3), 0.5, "float32")
    masks = -np.ones((1, 4, 4, 2), "float32")
    masks[0, 0, 0, 1] = 1.0
    masked = metrics.masked_images(images, masks)
    assert masked[0, 0, 0, 0] == 0.5 and np.count_nonzero(masked) == 3


def test_gaussian_frechet_distance_closed_form():
    mean_1, mean_2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var_1, var_2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = 5.0 + ((np.sqrt(var_1) - np.sqrt(var_2)) ** 2).sum()  # |Δm|² + Σ(√a − √b)² = 5 + 6
    got = metrics.gaussian_frechet_distance(mean_1, np.diag(var_1), mean_2, np.diag(var_2))
    assert got == pytest.approx(expected, abs=1e-9)
    rotation, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))  # FID is rotation-invariant
    rotated = metrics.gaussian_frechet_distance(
        rotation @ mean_1,
        rotation @ np.diag(var_1) @ rotation.T,
        rotation @ mean_2,
        rotation @ np.diag(var_2) @ rotation.T,
    )
    assert rotated == pytest.approx(expected, abs=1e-9)


def test_frechet_distance_of_samples_approaches_the_closed_form():
    rng = np.random.default_rng(0)
    cov_1 = np.array([[2.0, 0.5], [0.5, 1.0]])
    cov_2 = np.array([[1.0, -0.3], [-0.3, 0.5]])
    x = rng.multivariate_normal([0.0, 0.0], cov_1, 50_000)
    y = rng.multivariate_normal([1.0, -1.0], cov_2, 50_000)
    expected = metrics.gaussian_frechet_distance([0.0, 0.0], cov_1, [1.0, -1.0], cov_2)
    assert metrics.frechet_distance(x, y) == pytest.approx(expected, rel=0.03)
    assert metrics.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="features_2 must be"):
        metrics.frechet_distance(x, y[:1])


def test_kernel_distance_matches_the_moment_formula():
    # d = 1: k(x, y) = (xy + 1)³ = x³y³ + 3x²y² + 3xy + 1, so MMD² = Σ c_j (E x^j − E y^j)² with
    # c = (3, 3, 1) for j = 1, 2, 3. For N(μ, 1) against N(0, 1): 3μ² + 3μ⁴ + (μ³ + 3μ)².
    mu = 0.5
    expected = 3 * mu**2 + 3 * mu**4 + (mu**3 + 3 * mu) ** 2
    rng = np.random.default_rng(1)
    x, y = rng.normal(mu, 1.0, (20_000, 1)), rng.normal(0.0, 1.0, (20_000, 1))
    mean, std = metrics.kernel_distance(x, y, subsets=20, subset_size=2000)
    assert mean == pytest.approx(expected, rel=0.1)
    assert std > 0
    same, _ = metrics.kernel_distance(x, rng.normal(mu, 1.0, (20_000, 1)), subsets=20, subset_size=2000)
    assert abs(same) < 0.1 * expected


@pytest.mark.slow
def test_domain_classifier_learns_the_synthetic_domains():
    (images_a, masks_a), (images_b, masks_b) = shapes.load(600, 32, 4, seed=5)
    (test_a, test_ma), (test_b, test_mb) = shapes.load(60, 32, 4, seed=6)
    plain = classifier.train_domain_classifier(images_a, images_b)
    p_a, p_b = classifier.predict(plain, test_a), classifier.predict(plain, test_b)
    accuracy = (metrics.classification_score(p_a, "A") + metrics.classification_score(p_b, "B")) / 2
    assert accuracy >= 0.9
    masked = classifier.train_domain_classifier(images_a, images_b, masks_a, masks_b)
    p_a = classifier.predict(masked, metrics.masked_images(test_a, test_ma))
    p_b = classifier.predict(masked, metrics.masked_images(test_b, test_mb))
    assert (metrics.classification_score(p_a, "A") + metrics.classification_score(p_b, "B")) / 2 >= 0.9
    assert classifier.features(plain, test_a).shape == (60, 32)


def test_features_of_a_fixed_size_extractor():
    keras.utils.set_random_seed(0)
    extractor = keras.Sequential(  # a small random "Inception": fixed 16×16 input, a 4-D output
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(5, 3, strides=2, activation="relu")]
    )
    images = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype("float32")
    got = classifier.features(extractor, images, batch_size=2)
    resized = keras.ops.image.resize(images, (16, 16), interpolation="bilinear")
    expected = keras.ops.convert_to_numpy(extractor(resized)).mean(axis=(1, 2))
    assert got.shape == (3, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_background_error():
    image = np.zeros((1, 2, 2, 3), "float32")
    translated = np.full((1, 2, 2, 3), 0.2, "float32")
    translated[0, 0, 0] = 1.0  # changed, but inside a mask
    masks = -np.ones((1, 2, 2, 1), "float32")
    masks[0, 0, 0, 0] = 1.0
    np.testing.assert_allclose(
        metrics.background_error(image, translated, masks, -np.ones_like(masks)), [0.2 * 127.5]
    )
    everything = np.ones_like(masks)
    assert np.isnan(metrics.background_error(image, translated, everything, everything)[0])
