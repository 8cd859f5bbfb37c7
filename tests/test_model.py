"""The InstaGAN model: the sequential training step, skipped steps, the image pool, translate."""

import keras
import numpy as np
import pytest
from keras import ops
from utils import max_diff, numpy, random_image, random_masks

from keras_instagan import InstaGAN

SIZE = 32


def tiny(**kwargs):
    keras.utils.set_random_seed(0)
    options = {"ngf": 4, "ndf": 4, "n_blocks": 1, "ins_max": 4, "ins_per": 2, "pool_size": 2, "seed": 0}
    model = InstaGAN(**{**options, **kwargs})
    model.compile(run_eagerly=True)
    model.build((((None, SIZE, SIZE, 3), (None, SIZE, SIZE, 4)),) * 2)
    return model


def batch(rng, size=2, empty_a=(), empty_b=()):
    image_a, image_b = random_image(rng, size, SIZE, SIZE), random_image(rng, size, SIZE, SIZE)
    masks_a = random_masks(rng, size, SIZE, SIZE, 4, empty=empty_a)
    masks_b = random_masks(rng, size, SIZE, SIZE, 4, empty=empty_b)
    return (
        (ops.convert_to_tensor(image_a), ops.convert_to_tensor(masks_a)),
        (ops.convert_to_tensor(image_b), ops.convert_to_tensor(masks_b)),
    )


def initial_state(data):
    (image_a, masks_a), (image_b, masks_b) = data
    return {
        "image_a": image_a,
        "image_b": image_b,
        "fake_masks_b": -ops.ones_like(masks_a),
        "fake_masks_a": -ops.ones_like(masks_b),
    }


def snapshot(model):
    variables = model.variables + [
        v for opt in (model.g_optimizer, model.d_optimizer_A, model.d_optimizer_B) for v in opt.variables
    ]
    return [(v.path, numpy(v).copy()) for v in variables]


def changed(before, model):
    return [path for (path, old), (_, new) in zip(before, snapshot(model)) if not np.array_equal(old, new)]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.backends("tensorflow")
def test_no_gradient_crosses_sequential_steps(rng):
    import tensorflow as tf

    model = tiny()
    data = batch(rng)
    state = initial_state(data)
    generator_vars = model.G_A.trainable_variables + model.G_B.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        state = model.sequential_step(0, data, state)
        carried = list(state.values())
        # what step 1 would build its losses on: step 0's (translated) images and masks
        downstream = sum(tf.reduce_sum(tf.square(t)) for t in carried)
    assert max_diff(state["image_a"], data[0][0]) > 1e-3  # step 0 did translate the image
    assert all(g is None for g in tape.gradient(downstream, generator_vars))
    # control: the same outputs before detaching do depend on the generator weights
    with tf.GradientTape() as tape:
        fake_image, _ = model.G_A([data[0][0], data[0][1][..., :2]])
        live = tf.reduce_sum(tf.square(fake_image))
    assert any(g is not None for g in tape.gradient(live, generator_vars))


@pytest.mark.backends("tensorflow", "torch")  # an eager step (JAX steps inside `fit` only)
def test_all_empty_chunk_changes_nothing(rng, monkeypatch):
    model = tiny()
    empty = {(b, k) for b in range(2) for k in (2, 3)}  # chunk 1 empty in every sample, both domains
    data = batch(rng, empty_a=empty, empty_b=empty)
    model.train_step(data)
    assert int(model.g_optimizer.iterations) == 1  # chunk 0 updated once, chunk 1 skipped
    assert int(model.d_optimizer_A.iterations) == 1 and int(model.d_optimizer_B.iterations) == 1

    computed, translate_and_update = [], model._translate_and_update

    def spy(i, *args):
        computed.append(i)
        return translate_and_update(i, *args)

    monkeypatch.setattr(model, "_translate_and_update", spy)
    state = model.sequential_step(0, data, initial_state(data))
    before = snapshot(model)
    after = model.sequential_step(1, data, state)
    assert changed(before, model) == []
    assert all(np.array_equal(numpy(after[key]), numpy(state[key])) for key in state)
    assert computed == [0]  # the empty chunk's step is not computed at all


@pytest.mark.backends("tensorflow", "torch")  # an eager step (JAX steps inside `fit` only)
def test_one_domain_without_instances_leaves_its_discriminator_alone(rng):
    model = tiny()
    empty_b = {(b, k) for b in range(2) for k in range(4)}
    data = batch(rng, empty_b=empty_b)
    before = snapshot(model)
    model.train_step(data)
    moved = changed(before, model)
    assert any(path.startswith("D_A/") for path in moved)
    assert not any(path.startswith("D_B/") for path in moved)  # not even its spectral-norm vectors
    assert int(model.d_optimizer_B.iterations) == 0 and int(model.d_optimizer_A.iterations) == 2


@pytest.mark.backends("tensorflow", "torch")  # an eager step (JAX steps inside `fit` only)
def test_inactive_sample_contributes_no_loss(rng):
    """Sample 1 has no instance in chunk 1: its image and masks must not change the step-1 update."""
    empty = {(1, 2), (1, 3)}
    data = batch(rng, empty_a=empty, empty_b=empty)
    other = batch(np.random.default_rng(5), empty_a=empty, empty_b=empty)
    mixed = tuple(
        (ops.concatenate([d[0][:1], o[0][1:]], 0), ops.concatenate([d[1][:1], o[1][1:]], 0))
        for d, o in zip(data, other)
    )
    results = []
    for inputs in (data, mixed):
        model = tiny(pool_size=0)
        state = initial_state(inputs)
        state["fake_masks_a"] = ops.concatenate([inputs[0][1][..., :2], state["fake_masks_a"][..., 2:]], -1)
        state["fake_masks_b"] = ops.concatenate([inputs[1][1][..., :2], state["fake_masks_b"][..., 2:]], -1)
        model.sequential_step(1, inputs, state)
        results.append([numpy(v) for v in model.G_A.trainable_variables])
    assert max(max_diff(a, b) for a, b in zip(*results)) <= 1e-6


@pytest.mark.backends("jax")
def test_jitted_jax_iteration_skips_what_the_eager_step_skips(rng):
    """On JAX the compiled iteration makes each skipped update a `jax.lax.cond` that is not taken."""
    model = tiny()
    model.compile()  # the whole iteration one jitted program
    empty = {(b, k) for b in range(2) for k in (2, 3)}  # chunk 1 empty in every sample, both domains
    model.train_on_batch(x=batch(rng, empty_a=empty, empty_b=empty))
    assert int(model.g_optimizer.iterations) == 1  # chunk 0 updated once, chunk 1 skipped
    assert int(model.d_optimizer_A.iterations) == 1 and int(model.d_optimizer_B.iterations) == 1

    before = snapshot(model)
    model.train_on_batch(x=batch(rng, empty_b={(b, k) for b in range(2) for k in range(4)}))
    moved = changed(before, model)
    assert any(path.startswith("D_A/") for path in moved)
    assert not any(path.startswith("D_B/") for path in moved)  # not even its spectral-norm vectors
    assert int(model.d_optimizer_B.iterations) == 1 and int(model.d_optimizer_A.iterations) == 3


@pytest.mark.backends("tensorflow")
def test_fit_runs_graph_mode_and_reports_every_loss(rng):
    import tensorflow as tf

    model = tiny()
    model.compile()  # graph mode
    (ia, ma), (ib, mb) = batch(rng, size=2)
    dataset = tf.data.Dataset.from_tensor_slices(((ia, ma), (ib, mb))).batch(2)
    history = model.fit(dataset, epochs=1, verbose=0)
    names = {"G_A", "G_B", "cyc_A", "cyc_B", "idt_A", "idt_B", "ctx_A", "ctx_B", "D_A", "D_B"}
    assert names <= set(history.history)
    assert all(np.isfinite(history.history[n][0]) for n in names)
    assert int(model.g_optimizer.iterations) == model.steps
    assert history.history["paint_A"] == [0.0] and history.history["paint_B"] == [0.0]  # off by default


def trained_once(data, **loss_weights):
    """A fresh `tiny()` model after one iteration on `data` with SGD(0.1) and the given `compile`
    loss weights; returns the model and the iteration's logs."""
    model = tiny()
    model.compile(
        g_optimizer=keras.optimizers.SGD(0.1),
        d_optimizer=keras.optimizers.SGD(0.1),
        run_eagerly=True,
        **loss_weights,
    )
    return model, model.train_step(data)


@pytest.mark.backends("tensorflow", "torch")  # an eager step (JAX steps inside `fit` only)
def test_paint_term_is_logged_and_trains_the_generators_when_on(rng):
    data = batch(rng, size=2)
    trained = {}
    for weight in (0.0, 1.0):
        model, logs = trained_once(data, lambda_paint=weight)
        trained[weight] = model, float(numpy(logs["paint_A"])), float(numpy(logs["paint_B"]))
    (off, off_a, off_b), (on, on_a, on_b) = trained[0.0], trained[1.0]
    assert off_a == off_b == 0.0 and on_a > 0 and on_b > 0
    assert max(max_diff(a, b) for a, b in zip(on.G_A.weights, off.G_A.weights)) > 1e-6


@pytest.mark.backends("tensorflow", "torch")  # an eager step (JAX steps inside `fit` only)
def test_context_reference_original_compares_later_steps_with_the_photo(rng):
    """`compile(context_reference="original")`: step 1 of 2 compares its translation with the original
    image outside every mask translated so far (real and generated), the official `"step"` with its
    input outside the current chunk; one-step iterations are the same either way."""
    from keras_instagan import losses

    data = batch(rng, size=2)
    (image_a, masks_a), _ = data
    ctx = {}
    for reference in ("step", "original"):
        model = tiny()
        model.compile(run_eagerly=True, context_reference=reference)
        state = model.sequential_step(0, data, initial_state(data))
        for tracker in model.trackers.values():
            tracker.reset_state()
        fake_image, fake_masks = model.G_A([state["image_a"], masks_a[..., 2:]], training=True)
        if reference == "original":
            translated = ops.concatenate([state["fake_masks_b"][..., :2], fake_masks], axis=-1)
            want = losses.context_loss(image_a, fake_image, masks_a, translated)
        else:
            want = losses.context_loss(state["image_a"], fake_image, masks_a[..., 2:], fake_masks)
        model.sequential_step(1, data, state)
        ctx[reference] = float(numpy(model.trackers["ctx_A"].result()))
        assert ctx[reference] == pytest.approx(10 * float(numpy(ops.mean(want))), rel=1e-5)
    assert abs(ctx["original"] - ctx["step"]) > 1e-4
    one_step = []
    for reference in ("step", "original"):
        model = tiny(ins_per=4)
        model.compile(g_optimizer=keras.optimizers.SGD(0.1), run_eagerly=True, context_reference=reference)
        model.train_step(data)
        one_step.append(model)
    assert max(max_diff(a, b) for a, b in zip(one_step[0].G_A.weights, one_step[1].G_A.weights)) == 0
    with pytest.raises(ValueError, match="context_reference='photo'"):
        tiny().compile(context_reference="photo")


def settle_spectral_norms(model, iterations=100):
    """Run the discriminators' spectral-norm power iterations until σ has converged, so that a few
    more of them (one per discriminator call in training) no longer change the discriminators."""
    for discriminator in (model.D_A, model.D_B):
        for layer in discriminator._flatten_layers():
            if hasattr(layer, "normalized_kernel"):
                for _ in range(iterations):
                    layer.normalized_kernel(training=True)


@pytest.mark.backends("tensorflow", "torch")  # an eager step (JAX steps inside `fit` only)
def test_mismatch_term_teaches_the_discriminator_that_a_picture_must_follow_its_masks(rng):
    """With `lambda_mismatch`, the real A image under its translated (B) masks counts as fake for D_A:
    after one iteration from the same weights (small steps, spectral norms settled), D_A's fake loss
    on that pair, D_A(pair)², is lower than without the term."""
    data = batch(rng, size=2)
    (image_a, masks_a), _ = data
    trained = []
    for weight in (0.0, 5.0):
        model = tiny()
        settle_spectral_norms(model)
        model.compile(
            g_optimizer=keras.optimizers.SGD(0.001),
            d_optimizer=keras.optimizers.SGD(0.001),
            run_eagerly=True,
            lambda_mismatch=weight,
        )
        model.train_step(data)
        trained.append(model)
    off, on = trained
    _, translated_masks = off.translate(numpy(image_a), numpy(masks_a))
    pair = [image_a, ops.convert_to_tensor(translated_masks)]
    loss_off = float(np.mean(numpy(off.D_A(pair)) ** 2))
    loss_on = float(np.mean(numpy(on.D_A(pair)) ** 2))
    assert loss_on < 0.9 * loss_off, (loss_on, loss_off)


@pytest.mark.backends("tensorflow")
@pytest.mark.parametrize("xla_forms", [True, False])
def test_xla_step_equals_eager_step(rng, monkeypatch, xla_forms):
    """`compile(jit_compile=True)`: generator and discriminator updates under XLA, the rest traced; one
    step (whose second chunk of sample 2 is empty) must update every weight as the eager step does,
    with the XLA programs' convolution forms (`kernels.xla_kernels()`) and, with `xla_forms=False`,
    with XLA's own convolutions (no form traced). Three residual blocks per encoder, which the XLA
    updates run as one loop (`networks.looped_blocks`).

    In float64: in float32 one ReLU input within ~1e-6 of zero (1 in ~25k) can fall on the other side
    under XLA's different rounding, which moves a whole channel's gradient by a few percent. SGD, not
    Adam: Adam's first steps move each weight by ~lr·sign(gradient), blind to gradient errors."""
    import tensorflow as tf

    from keras_instagan import kernels
    from keras_instagan.trainers import tensorflow as trainer

    traced_forms = []
    for name in ("window_grad_conv", "window_grad_conv_transpose", "winograd_conv"):
        form = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *args, form=form: traced_forms.append(form) or form(*args))
    loops, loop = [], trainer._while_loop_blocks
    monkeypatch.setattr(trainer, "_while_loop_blocks", lambda *args: loops.append(args) or loop(*args))
    data = tf.nest.map_structure(lambda t: tf.cast(t, "float64"), batch(rng, empty_a=[(1, 2), (1, 3)]))
    keras.config.set_dtype_policy("float64")
    try:
        eager, xla = tiny(n_blocks=3), tiny(n_blocks=3)
        initial = [numpy(v).copy() for v in xla.G_A.weights]
        for model, jit in ((eager, False), (xla, True)):
            model.compile(
                g_optimizer=keras.optimizers.SGD(0.01),
                d_optimizer=keras.optimizers.SGD(0.01),
                jit_compile=jit,
                xla_forms=xla_forms,
                run_eagerly=not jit,
            )
        eager.train_step(data)
        tf.function(xla.train_step)(data)
    finally:
        keras.config.set_dtype_policy("float32")
    assert bool(traced_forms) == xla_forms
    assert loops and all(stacked[0].shape[0] == 3 for _, _, stacked in loops)
    assert int(xla.g_optimizer.iterations) == int(eager.g_optimizer.iterations) == 2
    assert max(max_diff(v, old) for v, old in zip(xla.G_A.weights, initial)) > 1e-3
    for name in ("G_A", "G_B", "D_A", "D_B"):
        for expected, actual in zip(getattr(eager, name).weights, getattr(xla, name).weights):
            assert actual.dtype == "float64"
            assert max_diff(actual, expected) < 1e-10, (name, expected.path)


def test_xla_forms_auto_follows_the_backend_and_the_widths():
    """`compile(xla_forms="auto")`: JAX's one program (and PyTorch, which compiles nothing) keep the
    forms at every width; TensorFlow's separate programs drop them when ngf and ndf are both below
    16. An explicit True/False wins; anything else is an error naming the option."""
    for widths, tensorflow_forms in (((8, 8), False), ((16, 8), True), ((8, 16), True)):
        model = InstaGAN(ngf=widths[0], ndf=widths[1], n_blocks=1)
        model.compile()
        assert model.xla_forms is (tensorflow_forms or keras.backend.backend() != "tensorflow")
        for explicit in (True, False):
            model.compile(xla_forms=explicit)
            assert model.xla_forms is explicit
    with pytest.raises(ValueError, match="xla_forms='fast'"):
        model.compile(xla_forms="fast")


def test_translate_sorts_chunks_skips_empty_and_keeps_order(rng):
    model = tiny(ins_per=2)
    image = random_image(rng, 2, SIZE, SIZE)
    masks = random_masks(rng, 2, SIZE, SIZE, 5, empty={(0, 1), (1, 0), (1, 3), (1, 4)})
    out_image, out_masks = model.translate(image, masks, "AtoB")
    assert out_image.shape == image.shape and out_masks.shape == masks.shape
    assert np.all(out_masks[0, ..., 1] == -1) and np.all(out_masks[1, ..., [0, 3, 4]] == -1)

    # by hand for sample 0: sort by area, chunks of 2, each on the previous chunk's image
    areas = (masks[0] > 0).sum(axis=(0, 1))
    order = np.argsort(-areas, kind="stable")
    current, expected = image[:1], np.empty_like(masks[:1])
    for start in range(0, 5, 2):
        chunk = masks[:1, ..., order[start : start + 2]]
        if (chunk > -1).any():
            current, translated = (numpy(t) for t in model.G_A([current, chunk]))
            chunk = translated
        expected[..., order[start : start + 2]] = chunk
    assert max_diff(out_image[:1], current) <= 1e-5
    assert max_diff(out_masks[:1], expected) <= 1e-5

    permuted = [3, 0, 4, 2, 1]
    again_image, again_masks = model.translate(image[:1], masks[:1, ..., permuted], "AtoB")
    assert max_diff(again_image, out_image[:1]) <= 1e-5
    assert max_diff(again_masks, out_masks[:1, ..., permuted]) <= 1e-5


def test_translate_direction_and_errors(rng):
    model = tiny()
    image, masks = random_image(rng, 1, SIZE, SIZE), random_masks(rng, 1, SIZE, SIZE, 1)
    a_to_b, _ = model.translate(image, masks, "AtoB")
    b_to_a, _ = model.translate(image, masks, "BtoA")
    assert max_diff(b_to_a, model.G_B([image, masks])[0]) <= 1e-5
    assert max_diff(a_to_b, b_to_a) > 1e-4
    with pytest.raises(ValueError, match="direction must be one of"):
        model.translate(image, masks, "AB")
    with pytest.raises(ValueError, match="translate.*N = 0"):
        model.translate(image, masks[..., :0])
    with pytest.raises(ValueError, match="translate.*H = 30"):
        model.translate(image[:, :30], masks[:, :30])


def test_model_options_and_config():
    with pytest.raises(ValueError, match="ins_max=5 is not a multiple of ins_per=2"):
        InstaGAN(ngf=4, ndf=4, n_blocks=1, ins_max=5, ins_per=2)
    with pytest.raises(ValueError, match="1 <= ins_per <= ins_max"):
        InstaGAN(ngf=4, ndf=4, n_blocks=1, ins_max=2, ins_per=4)
    model = tiny(ins_max=6, ins_per=3, pool_size=7)
    clone = InstaGAN.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert (clone.steps, clone.pool_size) == (2, 7)


@pytest.mark.backends("tensorflow", "torch")  # an eager step (JAX steps inside `fit` only)
@pytest.mark.parametrize("netG,netD", [("resnet", "basic"), ("resnet_seg", "basic"), ("resnet_seg", "set")])
def test_baselines_train_in_one_step_and_translate(rng, netG, netD):
    model = tiny(netG=netG, netD=netD)
    assert (model.steps, model.ins_per) == ((1, 4) if netG == "resnet" else (1, 1))
    before = snapshot(model)
    model.train_step(batch(rng))
    assert any(path.startswith("G_A") for path in changed(before, model))
    assert int(numpy(model.g_optimizer.iterations)) == 1
    image = random_image(rng, 2, SIZE, SIZE)
    masks = random_masks(rng, 2, SIZE, SIZE, 5, empty={(1, 4)})
    fake, fake_masks = model.translate(image, masks)
    assert fake.shape == image.shape
    if netG == "resnet":
        np.testing.assert_array_equal(fake_masks, masks)
    else:
        assert fake_masks.shape == (2, SIZE, SIZE, 1)
    clone = InstaGAN.from_config(model.get_config())
    assert (clone.netG, clone.netD, clone.steps) == (netG, netD, 1)


@pytest.mark.backends("tensorflow", "torch")  # an eager step (JAX steps inside `fit` only)
def test_set_and_image_discriminators_train_both_heads(rng):
    """`netD="set_image"`: one iteration updates both heads of each discriminator (the pair's and the
    picture's) and the generators, and the model's config keeps the choice."""
    model = tiny(netD="set_image")
    before = snapshot(model)
    model.train_step(batch(rng))
    moved = changed(before, model)
    for head in ("D_A/pair", "D_A/picture", "D_B/pair", "D_B/picture", "G_A"):
        assert any(path.startswith(head) for path in moved), head
    assert InstaGAN.from_config(model.get_config()).netD == "set_image"


def test_cyclegan_losses_leave_the_passed_through_masks_out(rng):
    model = tiny(netG="resnet", netD="basic")
    x = ops.convert_to_tensor(random_image(rng, 2, SIZE, SIZE))
    masks = ops.convert_to_tensor(random_masks(rng, 2, SIZE, SIZE, 4))
    verdict = ops.zeros((2, 2, 2, 1))
    shifted = (x + 0.1, masks)  # image off by 0.1 everywhere, masks exact
    active = ops.ones((2,))
    _, cyc, idt, ctx, paint = model._generator_losses(
        x, masks, (x, masks), shifted, shifted, verdict, (x, masks, masks), active, 2.0, "A"
    )
    # mean |Δ| over the image alone is 0.1 (over image + 4 masks it would be 0.1·3/7)
    assert float(cyc) == pytest.approx(10 * 0.1, rel=1e-5)
    assert float(idt) == pytest.approx(10 * 0.1, rel=1e-5)
    assert float(ctx) == 0.0 and paint is None  # off by default
    with pytest.raises(ValueError, match="netG must be one of"):
        InstaGAN(ngf=4, ndf=4, n_blocks=1, netG="unet")
