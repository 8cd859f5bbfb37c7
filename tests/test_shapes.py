"""The built-in synthetic data (`keras_instagan.data.shapes`): deterministic, exact, domains that
differ only in shape."""

import numpy as np
import pytest

from keras_instagan.data import shapes


def test_shapes_are_deterministic_exact_and_sorted():
    (images_a, masks_a), (images_b, masks_b) = shapes.load(count=6, size=40, max_instances=3, seed=7)
    again = shapes.load(count=6, size=40, max_instances=3, seed=7)
    assert np.array_equal(images_a, again[0][0]) and np.array_equal(masks_b, again[1][1])
    assert not np.array_equal(images_a, shapes.load(count=6, size=40, max_instances=3, seed=8)[0][0])
    for images, masks in ((images_a, masks_a), (images_b, masks_b)):
        assert images.shape == (6, 40, 40, 3) and masks.shape == (6, 40, 40, 3)
        assert images.min() >= -1 and images.max() <= 1
        assert set(np.unique(masks)) <= {-1.0, 1.0}
        areas = (masks > 0).sum(axis=(1, 2))
        assert np.all(areas[:, 0] > 0)  # at least one instance
        assert np.all(np.diff(areas, axis=1) <= 0)  # largest first, empty slots last
        assert np.all((masks > 0).sum(-1) <= 1)  # visible regions do not overlap


def median_fill(masks):
    """Median share of its bounding box that the first instance of each image fills."""
    ratios = []
    for mask in masks[..., 0] > 0:
        rows, cols = np.where(mask)
        ratios.append(mask.sum() / ((np.ptp(rows) + 1) * (np.ptp(cols) + 1)))
    return np.median(ratios)


def test_shapes_differ_only_in_shape():
    """Squares fill their bounding box, ellipses about π/4 of it: the domains differ by shape."""
    (_, masks_a), (_, masks_b) = shapes.load(count=20, size=64, max_instances=1, seed=0)
    assert 0.7 < median_fill(masks_a) < 0.85
    assert median_fill(masks_b) > 0.95


def test_triangles_and_crosses_fill_their_boxes_as_drawn():
    """The second pair differs only in shape too: a triangle fills half its box, a cross 5/9 (the
    shape metric tells them apart by form, `test_metrics`)."""
    (images_a, masks_a), (images_b, masks_b) = shapes.load(20, 64, 1, seed=0, pair="triangles_crosses")
    assert abs(median_fill(masks_a) - 1 / 2) < 0.05
    assert abs(median_fill(masks_b) - 5 / 9) < 0.03
    # the same seed draws the same backgrounds, colours and places: only the shapes change
    ellipse_images, ellipse_masks = shapes.load(20, 64, 1, seed=0)[0]
    outside = ~((masks_a > 0).any(-1) | (ellipse_masks > 0).any(-1))
    np.testing.assert_array_equal(images_a[outside], ellipse_images[outside])
    assert not np.array_equal(masks_a, ellipse_masks)
    with pytest.raises(ValueError, match="pair must be one of"):
        shapes.load(2, 32, pair="circles_stars")


def test_eight_instance_variant_holds_up_to_eight_smaller_objects():
    (_, four), _ = shapes.load(60, 64, 4, seed=2)
    (_, eight), _ = shapes.load(60, 64, 8, seed=2)
    counts = (eight.max(axis=(1, 2)) > 0).sum(-1)
    assert eight.shape[-1] == 8 and counts.max() >= 7 and counts.min() >= 1

    def area(masks):
        return (masks > 0).sum(axis=(1, 2))[:, 0].mean()  # the largest object's area

    assert area(eight) < 0.75 * area(four)
