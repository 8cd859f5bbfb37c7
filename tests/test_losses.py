"""Each loss on tensors small enough to compute by hand."""

import numpy as np
from utils import gradients, numpy

from keras_instagan import losses


def test_lsgan():
    prediction = np.array([[[[0.5], [1.0]]], [[[0.0], [2.0]]]], "float32")  # (2, 1, 2, 1)
    # sample 0: ((0.5-1)² + 0²) / 2 = 0.125; sample 1: (1 + 1) / 2 = 1.0
    np.testing.assert_allclose(numpy(losses.lsgan_loss(prediction, 1.0)), [0.125, 1.0])
    # fake target 0: sample 0: (0.25 + 1) / 2 = 0.625; sample 1: (0 + 4) / 2 = 2.0
    np.testing.assert_allclose(numpy(losses.lsgan_loss(prediction, 0.0)), [0.625, 2.0])


def test_cycle_and_identity_are_l1_over_image_and_masks():
    image = np.zeros((1, 1, 2, 3), "float32")
    masks = -np.ones((1, 1, 2, 1), "float32")
    rec_image = image.copy()
    rec_image[0, 0, 0] = [0.3, -0.3, 0.0]
    rec_masks = masks.copy()
    rec_masks[0, 0, 1, 0] = 0.2
    # |diff| sums to 0.6 + 1.2 = 1.8 over (3 + 1) * 2 = 8 elements
    expected = [1.8 / 8]
    np.testing.assert_allclose(
        numpy(losses.cycle_loss((rec_image, rec_masks), (image, masks))), expected, rtol=1e-6
    )
    np.testing.assert_allclose(
        numpy(losses.identity_loss((rec_image, rec_masks), (image, masks))), expected, rtol=1e-6
    )


def test_union_background():
    real = np.array([-1.0, 1.0, 0.0, -1.0], "float32").reshape(1, 1, 4, 1)
    fake = np.array([-1.0, -1.0, -0.5, 0.9], "float32").reshape(1, 1, 4, 1)
    # coverage: 0, 1, 0.5 + 0.25 = 0.75, 0.95 → weight 1, 0, 0.25, 0.05
    np.testing.assert_allclose(
        numpy(losses.union_background(real, fake)).ravel(), [1.0, 0.0, 0.25, 0.05], atol=1e-6
    )
    two = np.concatenate([real, real], axis=-1)  # overlapping real instances saturate at 1
    np.testing.assert_allclose(
        numpy(losses.union_background(two, fake)).ravel(), [1.0, 0.0, 0.0, 0.05], atol=1e-6
    )


def test_context_loss():
    image = np.zeros((1, 1, 2, 3), "float32")
    translated = np.array([[[[0.4, 0.4, 0.4], [1.0, 1.0, 1.0]]]], "float32")
    real = np.array([[[[-1.0], [1.0]]]], "float32")  # pixel 1 is inside a real instance
    fake = -np.ones_like(real)
    # weight [1, 0]: only pixel 0 counts, 3 × 0.4 over 6 elements = 0.2
    np.testing.assert_allclose(numpy(losses.context_loss(image, translated, real, fake)), [0.2], rtol=1e-6)


def test_context_weight_is_not_detached():
    image = np.zeros((1, 1, 1, 3), "float32")
    translated = np.ones((1, 1, 1, 3), "float32")
    real = -np.ones((1, 1, 1, 1), "float32")
    fake = np.full((1, 1, 1, 1), -0.5, "float32")
    (grad,) = gradients(lambda fake: losses.context_loss(image, translated, real, fake), fake)
    # loss = (1 - (fake + 1) / 2) · 1 → d/dfake = −0.5
    np.testing.assert_allclose(grad.ravel(), [-0.5])


def test_paint_loss_is_zero_when_the_picture_follows_the_masks():
    """An object moved 2 pixels right by its translated mask: painting the new area in the object's
    colour and the left-behind area in the background's costs nothing; keeping the old picture costs
    the two areas' colour difference, and only the image gets a gradient."""
    object_colour, background = np.array([0.8, -0.2, 0.1]), np.array([-0.5, 0.3, 0.0])
    real = -np.ones((1, 8, 8, 1), "float32")
    real[0, 2:6, 1:5] = 1.0
    made = -np.ones((1, 8, 8, 1), "float32")
    made[0, 2:6, 3:7] = 1.0

    def picture(mask):
        inside = (mask[..., :1] > 0).astype("float32")
        return (inside * object_colour + (1 - inside) * background).astype("float32")

    follows = losses.paint_loss(picture(made), real, made)
    np.testing.assert_allclose(numpy(follows), [0.0], atol=1e-6)
    kept = losses.paint_loss(picture(real), real, made)
    moved = 8 + 8  # 4×2 pixels newly covered, 4×2 pixels left behind
    expected = moved * np.abs(object_colour - background).sum() / (8 * 8 * 3)
    np.testing.assert_allclose(numpy(kept), [expected], rtol=1e-5)
    # an empty slot (no overlap, no colour) adds nothing
    empty = -np.ones_like(real)
    both = losses.paint_loss(
        picture(real), np.concatenate([real, empty], -1), np.concatenate([made, empty], -1)
    )
    np.testing.assert_allclose(numpy(both), [expected], rtol=1e-5)

    image_gradient, mask_gradient = gradients(
        lambda image, masks: losses.paint_loss(image, real, masks), picture(real), made
    )
    assert np.abs(image_gradient).sum() > 0 and not mask_gradient.any()
