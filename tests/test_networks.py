"""Behaviour of SetGenerator / SetDiscriminator: shapes, set symmetry, empty slots, batching, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from utils import gradients, max_diff, numpy, random_image, random_masks

from keras_instagan import (
    NLayerDiscriminator,
    ResnetGenerator,
    SetAndImageDiscriminator,
    SetDiscriminator,
    SetGenerator,
)
from keras_instagan.networks import GeneratorEncoder, looped_blocks


@pytest.fixture(scope="module")
def generator():
    keras.utils.set_random_seed(0)
    return SetGenerator(ngf=4, n_blocks=1)


@pytest.fixture(scope="module")
def discriminator():
    keras.utils.set_random_seed(1)
    return SetDiscriminator(ndf=4)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("height,width", [(32, 32), (32, 48)])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_output_shapes(generator, discriminator, rng, height, width, batch, n):
    image = random_image(rng, batch, height, width)
    masks = random_masks(rng, batch, height, width, n)
    out_image, out_masks = generator([image, masks])
    assert out_image.shape == (batch, height, width, 3)
    assert out_masks.shape == (batch, height, width, n)
    assert np.abs(numpy(out_image)).max() <= 1.0
    assert discriminator([image, masks]).shape == (batch, height // 8 - 2, width // 8 - 2, 1)


def test_official_discriminator_patch_sizes(discriminator, rng):
    for (h, w), patch in {(200, 200): (23, 23), (64, 64): (6, 6), (240, 160): (28, 18)}.items():
        out = discriminator([random_image(rng, 1, h, w), random_masks(rng, 1, h, w, 1)])
        assert out.shape[1:3] == patch


def test_mask_permutation(generator, discriminator, rng):
    image = random_image(rng, 2, 32, 48)
    masks = random_masks(rng, 2, 32, 48, 4, empty={(1, 2)})
    order = [2, 0, 3, 1]
    out_image, out_masks = generator([image, masks])
    perm_image, perm_masks = generator([image, masks[..., order]])
    assert max_diff(perm_image, out_image) <= 1e-5
    assert max_diff(perm_masks, numpy(out_masks)[..., order]) <= 1e-5
    assert max_diff(discriminator([image, masks[..., order]]), discriminator([image, masks])) <= 1e-5


def test_empty_slots_are_inert(generator, discriminator, rng):
    image = random_image(rng, 2, 32, 32)
    masks = random_masks(rng, 2, 32, 32, 3, empty={(0, 1)})
    out_image, out_masks = generator([image, masks])
    assert np.all(numpy(out_masks)[0, ..., 1] == -1.0)
    assert np.all(numpy(out_masks)[1, ..., 1] != -1.0)

    padded = np.concatenate([masks, -np.ones_like(masks[..., :1])], axis=-1)
    pad_image, pad_masks = generator([image, padded])
    assert max_diff(pad_image, out_image) <= 1e-6
    assert max_diff(numpy(pad_masks)[..., :3], out_masks) <= 1e-6
    assert np.all(numpy(pad_masks)[..., 3] == -1.0)
    assert max_diff(discriminator([image, padded]), discriminator([image, masks])) <= 1e-6


def test_sum_not_mean_over_instances(generator, rng):
    """Duplicating an instance changes the image output: the set feature is a sum."""
    image = random_image(rng, 1, 32, 32)
    masks = random_masks(rng, 1, 32, 32, 1)
    once, _ = generator([image, masks])
    twice, _ = generator([image, np.concatenate([masks, masks], axis=-1)])
    assert max_diff(once, twice) > 1e-4


def test_batch_equals_single_calls(generator, discriminator, rng):
    image = random_image(rng, 3, 32, 32)
    masks = random_masks(rng, 3, 32, 32, 3, empty={(0, 2), (2, 0), (2, 1), (2, 2)})
    out_image, out_masks = generator([image, masks])
    verdict = discriminator([image, masks])
    for b in range(3):
        single_image, single_masks = generator([image[b : b + 1], masks[b : b + 1]])
        assert max_diff(out_image[b : b + 1], single_image) <= 1e-5
        assert max_diff(out_masks[b : b + 1], single_masks) <= 1e-5
        assert max_diff(verdict[b : b + 1], discriminator([image[b : b + 1], masks[b : b + 1]])) <= 1e-5


@pytest.mark.backends("tensorflow")
def test_traced_call_with_dynamic_shapes_equals_eager(generator, rng):
    spec = [tf.TensorSpec((None, None, None, 3)), tf.TensorSpec((None, None, None, None))]
    traced = tf.function(lambda i, m: generator([i, m]), input_signature=spec)
    for batch, size, n in [(2, (32, 32), 3), (1, (16, 24), 1)]:
        image = random_image(rng, batch, *size)
        masks = random_masks(rng, batch, *size, n, empty={(0, n - 1)})
        for got, want in zip(traced(image, masks), generator([image, masks])):
            assert max_diff(got, want) <= 1e-5


@pytest.mark.backends("tensorflow")
def test_training_call_equals_inference_call(generator, rng):
    """`training=True` runs the generator's last convolutions (to 3 and 1 channels) as `thin_conv`;
    the outputs agree with the inference call's plain convolutions, also traced with unknown shapes."""
    spec = [tf.TensorSpec((None, None, None, 3)), tf.TensorSpec((None, None, None, None))]
    traced = tf.function(lambda i, m: generator([i, m], training=True), input_signature=spec)
    for batch, size, n in [(2, (32, 32), 3), (1, (16, 24), 1)]:
        image = random_image(rng, batch, *size)
        masks = random_masks(rng, batch, *size, n, empty={(0, n - 1)})
        for got, want in zip(traced(image, masks), generator([image, masks], training=False)):
            assert max_diff(got, want) <= 1e-5


def test_official_parameter_counts():
    generator = SetGenerator(ngf=64, n_blocks=9)
    discriminator = SetDiscriminator(ndf=64, n_layers=3)
    assert generator.count_params() == 26_815_108
    assert sum(int(np.prod(w.shape)) for w in discriminator.trainable_weights) == 9_721_729
    assert sum(int(np.prod(w.shape)) for w in discriminator.non_trainable_weights) == 32_705


def test_depth_is_configurable():
    assert SetGenerator(ngf=16, n_blocks=9).count_params() == 1_685_668
    assert SetGenerator(ngf=16, n_blocks=6).count_params() < 1_685_668
    assert sum(int(np.prod(w.shape)) for w in SetDiscriminator(16).trainable_weights) == 611_809
    shallow = SetDiscriminator(ndf=4, n_layers=2)
    image, masks = np.zeros((1, 32, 32, 3), "float32"), -np.ones((1, 32, 32, 1), "float32")
    assert shallow([image, masks]).shape == (1, 32 // 4 - 2, 32 // 4 - 2, 1)


def test_looped_blocks_equal_the_blocks_one_after_another(rng):
    """Inside `looped_blocks()` (what the JAX trainer traces its iteration in) each encoder runs its
    residual blocks as one `ops.scan` over their stacked weights: the same translation and the same
    gradient for the input image as the blocks called one after another."""
    keras.utils.set_random_seed(2)
    generator = SetGenerator(ngf=4, n_blocks=3)
    assert isinstance(generator.encoder_img, GeneratorEncoder)
    masks = random_masks(rng, 2, 32, 32, 2, empty={(1, 1)})
    image = random_image(rng, 2, 32, 32)

    def translate(image):
        out_image, out_masks = generator([image, masks], training=True)
        return ops.concatenate([ops.reshape(out_image, (-1,)) ** 2, ops.reshape(out_masks, (-1,))], axis=0)

    plain, (plain_grad,) = translate(image), gradients(translate, image)
    with looped_blocks():
        looped, (looped_grad,) = translate(image), gradients(translate, image)
    assert max_diff(looped, plain) <= 1e-5
    assert max_diff(looped_grad, plain_grad) <= 1e-5 * np.max(np.abs(plain_grad))
    assert np.max(np.abs(plain_grad)) > 0


def test_generator_encoder_config_round_trip(rng):
    encoder = SetGenerator(ngf=4, n_blocks=3).encoder_img
    copy = GeneratorEncoder.from_config(encoder.get_config())
    assert [type(layer) for layer in copy.layers] == [type(layer) for layer in encoder.layers]
    copy.set_weights(encoder.get_weights())
    image = random_image(rng, 1, 32, 32)
    assert max_diff(copy(image), encoder(image)) == 0


def test_keras_file_round_trip(generator, discriminator, rng, tmp_path):
    image = random_image(rng, 2, 32, 32)
    masks = random_masks(rng, 2, 32, 32, 2, empty={(1, 1)})
    for model in (generator, discriminator):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert type(loaded) is type(model)
        for got, want in zip(
            keras.tree.flatten(loaded([image, masks])), keras.tree.flatten(model([image, masks]))
        ):
            assert max_diff(got, want) == 0.0


def test_config_round_trip(generator, discriminator, rng):
    image = random_image(rng, 1, 32, 32)
    masks = random_masks(rng, 1, 32, 32, 2)
    for model in (generator, discriminator):
        clone = type(model).from_config(model.get_config())
        assert clone.get_config() == model.get_config()
        clone.set_weights(model.get_weights())
        for got, want in zip(
            keras.tree.flatten(clone([image, masks])), keras.tree.flatten(model([image, masks]))
        ):
            assert max_diff(got, want) == 0.0


@pytest.mark.parametrize(
    "image_shape,masks_shape,fill,message",
    [
        ((1, 30, 32, 3), (1, 30, 32, 1), -1.0, "H = 30"),
        ((1, 32, 34, 3), (1, 32, 34, 1), -1.0, "W = 34"),
        ((1, 32, 32, 4), (1, 32, 32, 1), -1.0, r"`image` must have shape \(B, H, W, 3\)"),
        ((1, 32, 32, 3), (1, 32, 32, 0), -1.0, "N = 0"),
        ((1, 32, 32, 3), (1, 32, 32), -1.0, r"`masks` must have shape \(B, H, W, N\)"),
        ((1, 32, 32, 3), (1, 32, 36, 1), -1.0, "differ in W"),
        ((1, 32, 32, 3), (1, 32, 32, 1), 255.0, r"`masks` values must lie in \[-1, 1\].*255"),
        ((1, 32, 32, 3), (1, 32, 32, 1), np.nan, "`masks` holds NaN"),
        (
            (2, 32, 32, 3),
            (1, 32, 32, 1),
            -1.0,
            r"\(2, 32, 32, 3\) and `masks` \(1, 32, 32, 1\) differ in batch",
        ),
        ((1, 4, 4, 3), (1, 4, 4, 1), -1.0, "H = 4 .* at least 8"),
    ],
)
def test_bad_generator_inputs(generator, image_shape, masks_shape, fill, message):
    image = np.zeros(image_shape, "float32")
    masks = np.full(masks_shape, fill, "float32")
    with pytest.raises(ValueError, match=f"SetGenerator.*{message}"):
        generator([image, masks])


def test_generator_refuses_a_0_to_255_image(generator):
    with pytest.raises(
        ValueError,
        match=r"SetGenerator: `image` values must lie in \[-1, 1\] \(RGB scaled "
        r"to \[-1, 1\], not 0–255\); got range \[0, 255\]",
    ):
        generator(
            [
                np.linspace(0, 255, 32 * 32 * 3, dtype="float32").reshape(1, 32, 32, 3),
                -np.ones((1, 32, 32, 1), "float32"),
            ]
        )


def test_bad_discriminator_inputs(discriminator):
    with pytest.raises(ValueError, match="SetDiscriminator.*at least 24"):
        discriminator([np.zeros((1, 16, 32, 3), "float32"), -np.ones((1, 16, 32, 1), "float32")])
    with pytest.raises(ValueError, match="SetDiscriminator expects inputs \\[image, masks\\]"):
        discriminator(np.zeros((1, 32, 32, 3), "float32"))


def test_baseline_parameter_counts_are_cyclegans():
    assert ResnetGenerator(ngf=64, n_blocks=9).count_params() == 11_378_179
    assert sum(int(np.prod(w.shape)) for w in NLayerDiscriminator(ndf=64).trainable_weights) == 2_764_737


def test_cyclegan_generator_ignores_masks_and_passes_them_through(rng):
    generator = ResnetGenerator(ngf=4, n_blocks=1)
    image = random_image(rng, 2, 32, 32)
    masks = random_masks(rng, 2, 32, 32, 3)
    out_image, out_masks = generator([image, masks])
    other_image, _ = generator([image, random_masks(rng, 2, 32, 32, 1)])
    assert out_image.shape == (2, 32, 32, 3)
    assert max_diff(out_image, other_image) == 0.0
    assert max_diff(out_masks, masks) == 0.0


def test_cyclegan_seg_sees_only_the_union_of_the_masks(rng):
    generator = ResnetGenerator(ngf=4, n_blocks=1, merge_masks=True)
    discriminator = NLayerDiscriminator(ndf=4, merge_masks=True)
    image = random_image(rng, 2, 32, 32)
    masks = -np.ones((2, 32, 32, 2), "float32")
    masks[:, 4:12, 4:12, 0] = 1.0
    masks[0, 20:28, 20:28, 1] = 1.0
    union = masks.max(-1, keepdims=True)
    swapped = np.concatenate([union, -np.ones_like(union), -np.ones_like(union)], -1)  # same union
    out_image, out_masks = generator([image, masks])
    assert out_masks.shape == (2, 32, 32, 1)
    for got, want in zip(generator([image, swapped]), (out_image, out_masks)):
        assert max_diff(got, want) <= 1e-6
    assert max_diff(discriminator([image, swapped]), discriminator([image, masks])) <= 1e-6
    assert max_diff(discriminator([image, masks]), discriminator([image, -np.ones_like(masks)])) > 0
    empty = generator([image, -np.ones_like(masks)])[1]
    assert numpy(empty).max() == -1.0  # a sample without instances keeps its (empty) union
    plain = NLayerDiscriminator(ndf=4)
    assert plain([image, masks]).shape == (2, 2, 2, 1)
    assert max_diff(plain([image, masks]), plain([image, -np.ones_like(masks)])) == 0.0


def test_baseline_networks_save_and_reload(rng, tmp_path):
    image = random_image(rng, 1, 32, 32)
    masks = random_masks(rng, 1, 32, 32, 2)
    for model in (ResnetGenerator(ngf=4, n_blocks=1, merge_masks=True), NLayerDiscriminator(ndf=4)):
        clone = type(model).from_config(model.get_config())
        assert clone.get_config() == model.get_config()
        model.save(tmp_path / "net.keras")
        loaded = keras.saving.load_model(tmp_path / "net.keras")
        assert type(loaded) is type(model) and loaded.merge_masks == model.merge_masks
        for got, want in zip(
            keras.tree.flatten(loaded([image, masks])), keras.tree.flatten(model([image, masks]))
        ):
            assert max_diff(got, want) == 0.0


def test_set_and_image_discriminator_judges_the_pair_and_the_picture_alone(rng, tmp_path):
    """`netD="set_image"`: channel 0 is a set discriminator's verdict (order and empty slots do not
    matter), channel 1 an image-only PatchGAN's (the masks do not matter at all); it saves."""
    keras.utils.set_random_seed(2)
    judge = SetAndImageDiscriminator(ndf=4)
    image = random_image(rng, 2, 32, 32)
    masks = random_masks(rng, 2, 32, 32, 3, empty={(1, 2)})
    verdict = keras.ops.convert_to_numpy(judge([image, masks]))
    assert verdict.shape == (2, 2, 2, 2)
    assert max_diff(verdict[..., :1], judge.pair([image, masks])) == 0.0
    assert max_diff(verdict[..., 1:], judge.picture([image, masks])) == 0.0
    assert max_diff(judge([image, masks[..., [2, 0, 1]]]), verdict) <= 1e-5
    other = keras.ops.convert_to_numpy(judge([image, random_masks(rng, 2, 32, 32, 3)]))
    assert max_diff(other[..., 1], verdict[..., 1]) == 0.0 and max_diff(other[..., 0], verdict[..., 0]) > 1e-4
    judge.save(tmp_path / "judge.keras")
    loaded = keras.saving.load_model(tmp_path / "judge.keras")
    assert type(loaded) is SetAndImageDiscriminator
    assert max_diff(loaded([image, masks]), verdict) == 0.0


def test_union_discriminator_is_a_set_function_that_sees_the_union_with_the_image(rng, tmp_path):
    """`netD="set_union"`: the image stream's first filter takes image + union of the masks; the
    verdict still does not depend on the order of the masks or on empty slots, and it saves."""
    keras.utils.set_random_seed(1)
    union = SetDiscriminator(ndf=4, see_union=True)
    assert union.feature_img.layers[0].kernel.shape == (4, 4, 4, 4)
    assert SetDiscriminator(ndf=4).feature_img.layers[0].kernel.shape == (4, 4, 3, 4)
    image = random_image(rng, 2, 32, 32)
    masks = random_masks(rng, 2, 32, 32, 3, empty={(1, 2)})
    verdict = union([image, masks])
    assert max_diff(union([image, masks[..., [2, 0, 1]]]), verdict) <= 1e-5
    padded = np.concatenate([masks, -np.ones_like(masks[..., :1])], axis=-1)
    assert max_diff(union([image, padded]), verdict) <= 1e-5
    union.save(tmp_path / "union.keras")
    loaded = keras.saving.load_model(tmp_path / "union.keras")
    assert loaded.see_union and max_diff(loaded([image, masks]), verdict) == 0.0
