"""The unpaired input pipeline (`keras_instagan.data.unpaired`): aligned crops and flips, epochs
and batches."""

import numpy as np
import pytest
import tensorflow as tf
from utils import numpy

from keras_instagan.data import shapes, unpaired_dataset
from keras_instagan.data.unpaired import crop_and_flip


def test_crop_and_flip_move_masks_with_the_image():
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (20, 24, 3)).astype("float32")
    masks = np.where(rng.uniform(size=(20, 24, 2)) > 0.5, 1.0, -1.0).astype("float32")
    # channel 0 of the image encodes the masks, so alignment survives any crop/flip
    image[..., 0] = masks[..., 0] * 0.5
    image[..., 1] = masks[..., 1] * 0.25
    for seed in range(8):
        tf.random.set_seed(seed)
        out_image, out_masks = crop_and_flip(image, masks, (12, 16), flip=True)
        out_image, out_masks = numpy(out_image), numpy(out_masks)
        assert out_masks.shape == (12, 16, 2)
        np.testing.assert_array_equal(out_image[..., 0], out_masks[..., 0] * 0.5)
        np.testing.assert_array_equal(out_image[..., 1], out_masks[..., 1] * 0.25)


def test_unpaired_dataset_epoch_and_batches():
    domain_a = shapes.make_domain("A", 5, size=36, max_instances=2)
    domain_b = shapes.make_domain("B", 3, size=36, max_instances=2)
    dataset = unpaired_dataset(domain_a, domain_b, batch_size=2, seed=0, crop=(32, 32), flip=True)
    batches = list(dataset)
    assert len(batches) == 2  # max(5, 3) = 5 samples, incomplete batch dropped
    (image_a, masks_a), (image_b, masks_b) = batches[0]
    assert image_a.shape == (2, 32, 32, 3) and masks_b.shape == (2, 32, 32, 2)
    with pytest.raises(ValueError, match="batch_size=8 is larger than the data set"):
        unpaired_dataset(domain_a, domain_b, batch_size=8)
