"""Unpaired sampling without TensorFlow (`keras_instagan.data.sampling.UnpairedSequence`, the data path
of the JAX and PyTorch backends): epochs, aligned crops and flips, re-sorted masks, clear errors."""

import numpy as np
import pytest

from keras_instagan.data import UnpairedSequence, shapes
from keras_instagan.data.sampling import sort_masks_by_area


def encoded_domain(count, size, rng):
    """Samples whose image channels 0 and 1 encode masks 0 and 1 (so alignment survives any crop or
    flip) and whose channel 2 holds the sample's index."""
    masks = np.where(rng.uniform(size=(count, size, size, 2)) > 0.5, 1.0, -1.0).astype("float32")
    images = np.zeros((count, size, size, 3), "float32")
    images[..., 0], images[..., 1] = masks[..., 0] * 0.5, masks[..., 1] * 0.25
    images[..., 2] = (np.arange(count) / 100.0)[:, None, None]
    return images, masks


def test_epoch_batches_and_aligned_crops_and_flips():
    rng = np.random.default_rng(0)
    domain_a, domain_b = encoded_domain(5, 20, rng), encoded_domain(3, 20, rng)
    sequence = UnpairedSequence(domain_a, domain_b, batch_size=2, seed=0, crop=(12, 16), flip=True)
    assert len(sequence) == 2  # max(5, 3) = 5 samples, incomplete batch dropped
    seen_a = []
    for epoch in range(6):
        for index in range(len(sequence)):
            (((image_a, masks_a), (image_b, masks_b)),) = sequence[index]
            assert image_a.shape == (2, 12, 16, 3) and masks_b.shape == (2, 12, 16, 2)
            assert image_a.dtype == masks_a.dtype == np.float32
            for image, masks in ((image_a, masks_a), (image_b, masks_b)):
                area = np.sum(masks + 1.0, axis=(1, 2))
                assert np.all(area[:, 0] >= area[:, 1])  # largest first after the crop
                for k in range(2):  # each image channel still encodes the mask that sits there
                    match = [np.array_equal(image[k, ..., 0], masks[k, ..., j] * 0.5) for j in (0, 1)]
                    assert any(match)
            seen_a += [round(float(v) * 100) for v in image_a[:, 0, 0, 2]]
        if epoch == 0:
            assert sorted(seen_a) == sorted(set(seen_a))  # one pass: no A sample twice
        sequence.on_epoch_end()
    assert set(seen_a) == set(range(5))
    assert sequence[0][0][0][0].shape == (2, 12, 16, 3)


def test_about_half_the_samples_are_flipped():
    images = np.zeros((4, 8, 8, 3), "float32")
    images[..., 0] = np.linspace(-1, 1, 8)  # rises left to right, falls when flipped
    masks = -np.ones((4, 8, 8, 1), "float32")
    sequence = UnpairedSequence((images, masks), (images, masks), batch_size=4, seed=0, flip=True)
    flips = []
    for _ in range(25):
        (((image_a, _), (image_b, _)),) = sequence[0]
        flips += [bool(image[0, 0, 0] > 0) for image in (*image_a, *image_b)]
        sequence.on_epoch_end()
    assert 70 < sum(flips) < 130  # of 200, p = 0.5
    unflipped = UnpairedSequence((images, masks), (images, masks), batch_size=4, seed=0)
    assert np.all(unflipped[0][0][0][0][:, 0, 0, 0] < 0)


def test_same_seed_same_batches_and_a_batch_depends_only_on_its_index():
    domains = shapes.load(6, 32, 2, seed=0)
    first = UnpairedSequence(*domains, batch_size=2, seed=3, crop=(28, 28), flip=True)
    second = UnpairedSequence(*domains, batch_size=2, seed=3, crop=(28, 28), flip=True)
    late = first[2]
    np.testing.assert_array_equal(second[2][0][1][0], late[0][1][0])
    np.testing.assert_array_equal(first[0][0][0][1], second[0][0][0][1])
    np.testing.assert_array_equal(first[2][0][0][0], late[0][0][0])


def test_shards_split_each_global_batch_between_processes():
    """Each process of a multi-process run (`shard=(index, count)`) gets its slice of the global
    batch; together the slices are the unsharded batch, every draw (order, crop, flip) included."""
    domains = shapes.load(8, 32, 2, seed=0)
    options = dict(batch_size=4, seed=3, crop=(28, 28), flip=True)
    whole = UnpairedSequence(*domains, **options)
    parts = [UnpairedSequence(*domains, shard=(i, 2), **options) for i in range(2)]
    assert len(parts[0]) == len(whole) == 2
    for batch in range(len(whole)):
        for side in (0, 1):
            for part in (0, 1):  # image, masks
                halves = [p[batch][0][side][part] for p in parts]
                assert halves[0].shape[0] == 2
                np.testing.assert_array_equal(np.concatenate(halves), whole[batch][0][side][part])
    with pytest.raises(ValueError, match=r"shard \(0, 3\) .* count dividing batch_size=4"):
        UnpairedSequence(*domains, shard=(0, 3), **options)
    with pytest.raises(ValueError, match=r"shard \(2, 2\)"):
        UnpairedSequence(*domains, shard=(2, 2), **options)


def test_sort_masks_by_area_is_stable():
    masks = -np.ones((4, 4, 3), "float32")
    masks[:1, :1, 0] = 1.0
    masks[:2, :2, 1] = 1.0
    masks[:1, 1:2, 2] = 1.0
    order = [int(np.sum(m > 0)) for m in np.moveaxis(sort_masks_by_area(masks), -1, 0)]
    assert order == [4, 1, 1]
    np.testing.assert_array_equal(sort_masks_by_area(masks)[..., 1], masks[..., 0])


def test_errors_name_the_problem():
    domains = shapes.load(3, 32, 2, seed=0)
    with pytest.raises(ValueError, match="batch_size=8 is larger than the data set"):
        UnpairedSequence(*domains, batch_size=8)
    with pytest.raises(ValueError, match=r"crop \(40, 40\) is larger than domain_a's samples \(32, 32\)"):
        UnpairedSequence(*domains, crop=(40, 40))
    empty = (domains[0][0][:0], domains[0][1][:0])
    with pytest.raises(ValueError, match="domain_b has no samples"):
        UnpairedSequence(domains[0], empty)
    with pytest.raises(IndexError, match="batch 3 of 3"):
        UnpairedSequence(*domains)[3]
