"""`InstaGAN`: the two generators, the two discriminators, and the sequential training step.

Training data: a `tf.data.Dataset` of unpaired elements `((image_A, masks_A), (image_B, masks_B))`,
images `(B, H, W, 3)` in [-1, 1], masks `(B, H, W, ins_max)` with −1 = background, +1 = instance,
sorted by decreasing area and padded with empty (all −1) slots.

One `train_step` is the official `optimize_parameters` (docs/official.md §5.2): the masks are
translated in `ins_max // ins_per` sequential steps of `ins_per` masks each. Step i translates chunk i
of the masks on the (detached) image that step i−1 produced, updates both generators, then both
discriminators. No gradient crosses steps, so memory depends on `ins_per`, not on `ins_max`.

Differences from the official code, all bug fixes (docs/official.md §8):
- batches: every loss is computed per sample; samples without an instance in the current chunk add
  no loss and carry their image unchanged to the next step; each term is normalised by the number of
  active samples in the *global* batch, so the update is the same on one device or under
  `MirroredStrategy`;
- a network whose loss has no active sample in the global batch is not updated at all (its
  optimizer's moments and step counter stay as they are). The discriminators each get their own copy
  of the discriminator optimizer, which is what PyTorch's per-parameter Adam state amounts to.
- the generator update calls the discriminators with `training=False`, so it does not advance their
  spectral-norm power iteration.

The same model trains the baselines of the paper's ablation (`netG`, `netD`): CycleGAN
(`netG="resnet", netD="basic"`) and CycleGAN+Seg (`netG="resnet_seg", netD="basic"`: the masks of each
image merged into one extra channel). A baseline generator translates in one step (`ins_per` =
all slots); without masks (CycleGAN) the cycle and identity losses see the image only.
"""

import keras
import numpy as np
from keras import ops

from instagan_runner.sequential import sequential_translate
from keras_instagan import losses
from keras_instagan.layers import PACKAGE
from keras_instagan.networks import (
    GENERATOR_MIN_SIZE,
    check_inputs,
    make_networks,
    merged_mask,
    nonempty_slots,
)
from keras_instagan.pool import FakePool
from keras_instagan.run import RunDirectory
from keras_instagan.trainers import backend_trainer

DIRECTIONS = ("AtoB", "BtoA")
# Each loss term and the domain whose instances drive it ("idt_A" is G_A's identity loss on B input).
LOSS_SOURCES = {
    "G_A": "A",
    "cyc_A": "A",
    "ctx_A": "A",
    "paint_A": "A",
    "D_A": "A",
    "idt_B": "A",
    "G_B": "B",
    "cyc_B": "B",
    "ctx_B": "B",
    "paint_B": "B",
    "D_B": "B",
    "idt_A": "B",
}


def _default_adam():
    """The official optimizer: Adam(2e-4, β1 0.5, β2 0.999)."""
    return keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.999)


def _active_mean(per_sample, active, count):
    """Σ active·loss / count, with `count` the number of active samples in the global batch."""
    return ops.sum(per_sample * active) / ops.maximum(count, 1.0)


@keras.saving.register_keras_serializable(package=PACKAGE)
class InstaGAN(backend_trainer(), keras.Model):
    """InstaGAN with `G_A` (A→B), `G_B` (B→A), `D_A` (judges B), `D_B` (judges A).

    Args:
        ngf, n_blocks: generator width and residual blocks (official 64, 9).
        ndf, n_layers: discriminator width and depth (official 64, 3).
        ins_max: mask slots per image in training (official 4).
        ins_per: masks translated per sequential step (official 2).
        pool_size: fakes remembered per discriminator (official 50; 0 = no pool). The pool is part
            of the model (not a callback) because it acts inside the traced step and its contents
            must be saved and restored with the run.
        seed: seed of the image pool's random draws.
        netG: "set" (InstaGAN), "resnet" (CycleGAN baseline) or "resnet_seg" (CycleGAN+Seg: masks
            merged into one channel). The baselines translate all slots in one step: `ins_per` is
            set to `ins_max` (1 for "resnet_seg", whose one slot is the union).
        netD: "set" (InstaGAN), "set_union" (its image stream also sees the masks' union; this
            library's variant, `networks.SetDiscriminator`), "set_image" (InstaGAN's beside an
            image-only PatchGAN, each judging every patch; this library's variant,
            `networks.SetAndImageDiscriminator`) or "basic" (CycleGAN's PatchGAN).
    """

    def __init__(
        self,
        ngf=64,
        ndf=64,
        n_blocks=9,
        n_layers=3,
        ins_max=4,
        ins_per=2,
        pool_size=50,
        seed=None,
        netG="set",
        netD="set",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if netG == "set" and (ins_per < 1 or ins_max < ins_per):
            raise ValueError(
                f"InstaGAN: need 1 <= ins_per <= ins_max; got ins_per={ins_per}, ins_max={ins_max}."
            )
        if netG == "set" and ins_max % ins_per:
            raise ValueError(
                f"InstaGAN: ins_max={ins_max} is not a multiple of ins_per={ins_per}; the official "
                "code silently drops the remainder, here it is an error."
            )
        self.ngf, self.ndf, self.n_blocks, self.n_layers = ngf, ndf, n_blocks, n_layers
        self.netG, self.netD = netG, netD
        self.G_A, self.D_A = make_networks(netG, netD, ngf, ndf, n_blocks, n_layers, "A")
        self.G_B, self.D_B = make_networks(netG, netD, ngf, ndf, n_blocks, n_layers, "B")
        self.merge_masks = netG == "resnet_seg"
        # Mask channels the networks see per image: all `ins_max` slots, or their union.
        self.slots = 1 if self.merge_masks else ins_max
        self.ins_max, self.seed = ins_max, seed
        self.ins_per = ins_per if netG == "set" else self.slots
        self.pool_A = FakePool(pool_size, seed=seed, name="pool_A")
        self.pool_B = FakePool(pool_size, seed=None if seed is None else seed + 1, name="pool_B")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_SOURCES}

    @property
    def steps(self):
        """Sequential steps per training iteration: `ins_max // ins_per` (1 for the baselines)."""
        return self.slots // self.ins_per

    @property
    def pool_size(self):
        return self.pool_A.pool_size

    def build(self, input_shape):
        """Create the image pools from the element shape `((image, masks), (image, masks))`."""
        (image_shape, _), _ = input_shape
        fake_shape = tuple(image_shape[:3]) + (3 + self.slots,)
        self.pool_A.build(fake_shape)
        self.pool_B.build(fake_shape)
        self.built = True

    def compile(
        self,
        g_optimizer=None,
        d_optimizer=None,
        lambda_A=10.0,
        lambda_B=10.0,
        lambda_idt=1.0,
        lambda_ctx=1.0,
        lambda_paint=0.0,
        lambda_mismatch=0.0,
        context_reference="step",
        jit_compile=False,
        xla_forms="auto",
        **kwargs,
    ):
        """Optimizers and loss weights. Defaults: Adam(2e-4, β1 0.5) and the official λ's.

        Effective weights, as in the official code: cycle λ_A (λ_B), identity λ_A·λ_idt, context
        λ_A·λ_ctx; with the defaults every term but the GAN term weighs 10. `lambda_paint` (this
        library's addition, 0 = off as in the paper) weighs `losses.paint_loss` by λ_A·λ_paint.
        `lambda_mismatch` (this library's addition, 0 = off) weighs a third term of each
        discriminator's loss: the real source image under the masks translated so far counts as fake
        (`_discriminator_update`).

        `context_reference` is what the context loss of a sequential step compares the translated
        image with outside the masks: `"step"` (the official code) the step's input, the previous
        step's detached output, outside the current chunk's real and translated masks; `"original"`
        (this library's option) the original image, outside every mask translated so far (real and
        translated), so that a background drifting over the steps is pulled back to the photo. The
        two agree on a one-step iteration.

        `jit_compile=True` compiles with XLA the generator update of each sequential step (every
        network call in it, forward and backward, as one program), the gradient of each
        discriminator update, and each optimizer update: faster on a CPU (`bench/train_step.py`,
        docs/benchmarks.md), at the price of a longer first step. These programs are traced inside
        `kernels.xla_kernels()`: strided, discriminator and upsampling convolutions get the kernel
        gradient XLA computes fastest (`kernels.window_grad_conv`,
        `kernels.window_grad_conv_transpose`) and the residual blocks' convolutions run as Winograd
        F(2×2, 3×3) (`kernels.winograd_conv`). The rest of the step (conditional
        updates, image pool, cross-replica sums) stays outside XLA. Under a `tf.distribute` strategy
        the networks are called without `tf.function` and this option has no effect.

        `xla_forms` chooses whether the XLA programs (TensorFlow's with `jit_compile=True`, JAX's
        one program per iteration on a CPU) are traced with those forms (True) or with XLA's own
        convolutions (False): the same functions to float rounding; without the forms XLA compiles
        faster and, at large widths, runs slower. `"auto"` (default): with the forms, except on
        TensorFlow when ngf and ndf are both below 16, where they cost compilation time and gain
        nothing (JAX's one program needs them at every width; docs/benchmarks.md).
        """
        if context_reference not in ("step", "original"):
            raise ValueError(f"context_reference={context_reference!r}: expected 'step' or 'original'")
        if xla_forms not in (True, False, "auto"):
            raise ValueError(f"xla_forms={xla_forms!r}: expected True, False or 'auto'")
        self.context_reference = context_reference
        self.jit_networks = bool(jit_compile)
        self.xla_forms = self.forms_pay() if xla_forms == "auto" else xla_forms
        super().compile(jit_compile=False, **kwargs)
        # Keras keeps a `model.optimizer` (RMSprop by default) that InstaGAN never uses: built empty,
        # so that nothing (`BackupAndRestore`, Keras' symbolic build) gives it a slot for every weight.
        self.optimizer.build([])
        self.g_optimizer = g_optimizer or _default_adam()
        d_optimizer = d_optimizer or _default_adam()
        self.d_optimizer_A = d_optimizer
        self.d_optimizer_B = d_optimizer.__class__.from_config(d_optimizer.get_config())
        self.lambdas = {
            "A": float(lambda_A),
            "B": float(lambda_B),
            "idt": float(lambda_idt),
            "ctx": float(lambda_ctx),
            "paint": float(lambda_paint),
            "mismatch": float(lambda_mismatch),
        }
        self.g_optimizer.build(self.G_A.trainable_variables + self.G_B.trainable_variables)
        self.d_optimizer_A.build(self.D_A.trainable_variables)
        self.d_optimizer_B.build(self.D_B.trainable_variables)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        """One-step translation of both domains: `((img_A, masks_A), (img_B, masks_B))` →
        `(G_A([img_A, masks_A]), G_B([img_B, masks_B]))`. Use `translate` for the sequential one."""
        (image_a, masks_a), (image_b, masks_b) = inputs
        return self.G_A([image_a, masks_a]), self.G_B([image_b, masks_b])

    # ---------------------------------------------------------------------------------------------
    # Training

    def _generator_losses(self, x, masks, fake, rec, same, d_verdict, context, active, count, side):
        """The generator terms of one direction; `side` names the source domain ("A" or "B").
        `context` is `(image, real_masks, translated_masks)`, what the context loss compares `fake`'s
        image with and the masks left out of it."""
        lam = self.lambdas[side]
        original = (x, masks)
        if self.netG == "resnet":  # CycleGAN: the masks only pass through; its losses see the image
            rec, same, original = rec[:1], same[:1], original[:1]
        gan = _active_mean(losses.lsgan_loss(d_verdict, 1.0), active, count)
        cyc = lam * _active_mean(losses.cycle_loss(rec, original), active, count)
        idt = lam * self.lambdas["idt"] * _active_mean(losses.identity_loss(same, original), active, count)
        ctx = (
            lam
            * self.lambdas["ctx"]
            * _active_mean(losses.context_loss(context[0], fake[0], *context[1:]), active, count)
        )
        if not self.lambdas["paint"] or self.netG != "set":
            return gan, cyc, idt, ctx, None
        paint = (
            lam
            * self.lambdas["paint"]
            * _active_mean(losses.paint_loss(fake[0], masks, fake[1]), active, count)
        )
        return gan, cyc, idt, ctx, paint

    def train_step(self, data):
        """One training iteration: `steps` sequential steps, each starting from the detached output
        of the one before."""
        if len(data) != 2:  # arrays given to `fit(x=...)`, `train_on_batch(x)`: `(x,)`, `(x, None, None)`
            data = data[0]
        # in the model's dtype: float32 batches (the data pipelines') train a float64 model too
        data = tuple(tuple(ops.cast(x, self.compute_dtype) for x in side) for side in data)
        (image_a, masks_a), (image_b, masks_b) = data
        if self.merge_masks:
            masks_a, masks_b = merged_mask(masks_a), merged_mask(masks_b)
            data = (image_a, masks_a), (image_b, masks_b)
        state = {
            "image_a": image_a,
            "image_b": image_b,
            "fake_masks_b": -ops.ones_like(masks_a),
            "fake_masks_a": -ops.ones_like(masks_b),
        }
        state = self.run_steps(lambda i, state: self.sequential_step(i, data, state), self.steps, state)
        return self.finish_logs({name: tracker.result() for name, tracker in self.trackers.items()})

    def sequential_step(self, i, data, state):
        """Step i (a Python int) of the sequential loop: translate mask chunk i, update G, then D;
        return the new state.

        `state` carries, detached, what step i starts from: `image_a`, `image_b`, the current images,
        and `fake_masks_b`, `fake_masks_a`, `(B, H, W, slots)` buffers of the masks generated by the
        earlier steps in each direction (−1 in the slots of later chunks; `slots`: `ins_max`, or 1 for
        CycleGAN+Seg, whose data `train_step` has merged). The discriminators see the image with this
        buffer, the current chunk filled in.

        A step whose chunk is empty in every sample of both domains would change nothing (its
        empty masks stay −1, no image moves, every update and metric is skipped): it is not computed
        (`run_if`), as the official code computes no direction without an instance.
        """
        masks_a, masks_b = data[0][1], data[1][1]
        n = self.ins_per
        chunk_shape = tuple(ops.shape(masks_a)[:3]) + (n,)
        chunks = tuple(ops.slice(masks, (0, 0, 0, i * n), chunk_shape) for masks in (masks_a, masks_b))
        active = tuple(ops.max(nonempty_slots(chunk), axis=1) for chunk in chunks)
        counts = tuple(self.sum_over_replicas(ops.sum(a)) for a in active)

        def step():
            return self._translate_and_update(i, data, state, chunks, active, counts)

        return self.run_if(counts[0] + counts[1] > 0, step, state)

    def _translate_and_update(self, i, data, state, chunks, active, counts):
        """The body of `sequential_step` once chunk i holds an instance somewhere: translate it,
        update G, then D; `chunks`, `active` and `counts` are each domain's `(B, H, W, ins_per)` chunk,
        `(B,)` active samples and their number over the global batch."""
        (image_a, masks_a), (image_b, masks_b) = data
        n = self.ins_per
        (chunk_a, chunk_b), (active_a, active_b), (count_a, count_b) = chunks, active, counts
        in_chunk = ops.arange(self.slots) // n == i  # the slots of chunk i
        if self.context_reference == "original":  # the photo, outside every mask translated so far
            done = ops.arange(self.slots) // n <= i
            reference = (image_a, image_b, ops.where(done, masks_a, -1.0), ops.where(done, masks_b, -1.0))
        else:  # the step's input, outside the current chunk (the official code)
            reference = (state["image_a"], state["image_b"], chunk_a, chunk_b)
        generator_gradients = self.compiled_update("generator_update", self._generator_gradients)
        grads, terms, fake_b, fake_a, fake_masks_b, fake_masks_a = generator_gradients(
            state["image_a"],
            state["image_b"],
            chunk_a,
            chunk_b,
            state["fake_masks_b"],
            state["fake_masks_a"],
            in_chunk,
            active_a,
            active_b,
            count_a,
            count_b,
            *reference,
        )
        g_vars = self.G_A.trainable_variables + self.G_B.trainable_variables
        self.apply_gradients(self.g_optimizer, grads, g_vars)

        fake_b_all = ops.concatenate([fake_b[0], fake_masks_b], axis=-1)
        fake_a_all = ops.concatenate([fake_a[0], fake_masks_a], axis=-1)
        mismatch_b = mismatch_a = None
        if self.lambdas["mismatch"]:
            later = ops.arange(self.slots) // n > i  # the slots of the chunks still to translate
            mismatch_b = ops.concatenate([image_a, ops.where(later, masks_a, fake_masks_b)], axis=-1)
            mismatch_a = ops.concatenate([image_b, ops.where(later, masks_b, fake_masks_a)], axis=-1)
        d_a = self.run_if(
            count_a > 0,
            lambda: self._discriminator_update(
                self.D_A,
                self.d_optimizer_A,
                (image_b, masks_b),
                self.pool_B(fake_b_all, active_a),
                active_a,
                count_a,
                mismatch_b,
            ),
            ops.zeros((), "float32"),
        )
        d_b = self.run_if(
            count_b > 0,
            lambda: self._discriminator_update(
                self.D_B,
                self.d_optimizer_B,
                (image_a, masks_a),
                self.pool_A(fake_a_all, active_b),
                active_b,
                count_b,
                mismatch_a,
            ),
            ops.zeros((), "float32"),
        )

        values = {**terms, "D_A": d_a, "D_B": d_b}
        counts = {"A": count_a, "B": count_b}
        for name, value in values.items():
            ran = ops.cast(counts[LOSS_SOURCES[name]] > 0, "float32")
            self.trackers[name].update_state(self.sum_over_replicas(value), sample_weight=ran)

        keep_a, keep_b = active_a[:, None, None, None] > 0, active_b[:, None, None, None] > 0
        return {
            "image_a": ops.stop_gradient(ops.where(keep_a, fake_b[0], state["image_a"])),
            "image_b": ops.stop_gradient(ops.where(keep_b, fake_a[0], state["image_b"])),
            "fake_masks_b": ops.stop_gradient(fake_masks_b),
            "fake_masks_a": ops.stop_gradient(fake_masks_a),
        }

    def _generator_gradients(
        self,
        image_a,
        image_b,
        chunk_a,
        chunk_b,
        fake_masks_b,
        fake_masks_a,
        in_chunk,
        active_a,
        active_b,
        count_a,
        count_b,
        reference_a,
        reference_b,
        reference_masks_a,
        reference_masks_b,
    ):
        """The generator update's gradients for one sequential step (one XLA program with
        `jit_compile=True`).

        Translates the current images `image_a`, `image_b` `(B, H, W, 3)` with mask chunks `chunk_a`,
        `chunk_b` `(B, H, W, ins_per)`, computes every generator term and the gradient of their sum
        for both generators (`sequential_step` applies it). `fake_masks_b`, `fake_masks_a`
        `(B, H, W, slots)` are the masks the earlier steps generated; `in_chunk` `(slots,)` marks the
        current chunk's slots. The context loss compares the translations with `reference_a`,
        `reference_b` outside `reference_masks_a`, `reference_masks_b` and the translated masks
        (`compile(context_reference=...)`: the current images and chunks with the chunks'
        translations, or the original images with every real and translated mask so far).

        Returns the gradients, the loss terms (a dict of scalars), `fake_b`, `fake_a` (each
        `(image, masks)`) and the mask buffers with the current chunk filled in.

        As one XLA program the whole update is faster than a compiled program per network call:
        XLA then drops what no gradient needs (the discriminators' filter gradients) and keeps
        the intermediate activations inside the program (docs/benchmarks.md).
        """
        G_A, G_B = self.network_call(self.G_A, True), self.network_call(self.G_B, True)
        G_A_data = self.network_call(self.G_A, True, input_gradients=False)
        G_B_data = self.network_call(self.G_B, True, input_gradients=False)
        D_A, D_B = self.network_call(self.D_A, False), self.network_call(self.D_B, False)

        def loss():
            fake_b = G_A_data([image_a, chunk_a])
            same_b = G_A_data([image_b, chunk_b])
            fake_a = G_B_data([image_b, chunk_b])
            same_a = G_B_data([image_a, chunk_a])
            rec_a = G_B(list(fake_b))
            rec_b = G_A(list(fake_a))
            masks_b = ops.where(in_chunk, ops.tile(fake_b[1], (1, 1, 1, self.steps)), fake_masks_b)
            masks_a = ops.where(in_chunk, ops.tile(fake_a[1], (1, 1, 1, self.steps)), fake_masks_a)
            verdict_b = D_A([fake_b[0], masks_b])
            verdict_a = D_B([fake_a[0], masks_a])
            original = self.context_reference == "original"
            context_b = (reference_a, reference_masks_a, masks_b if original else fake_b[1])
            context_a = (reference_b, reference_masks_b, masks_a if original else fake_a[1])
            g_a, cyc_a, idt_b, ctx_a, paint_a = self._generator_losses(
                image_a, chunk_a, fake_b, rec_a, same_a, verdict_b, context_b, active_a, count_a, "A"
            )
            g_b, cyc_b, idt_a, ctx_b, paint_b = self._generator_losses(
                image_b, chunk_b, fake_a, rec_b, same_b, verdict_a, context_a, active_b, count_b, "B"
            )
            terms = {
                "G_A": g_a,
                "cyc_A": cyc_a,
                "idt_A": idt_a,
                "ctx_A": ctx_a,
                "G_B": g_b,
                "cyc_B": cyc_b,
                "idt_B": idt_b,
                "ctx_B": ctx_b,
            }
            total = g_a + cyc_a + idt_b + ctx_a + g_b + cyc_b + idt_a + ctx_b
            if paint_a is not None:  # off: the sum stays the official one, bit for bit
                terms.update(paint_A=paint_a, paint_B=paint_b)
                total = total + paint_a + paint_b
            else:
                terms.update(paint_A=ops.zeros_like(ctx_a), paint_B=ops.zeros_like(ctx_b))
            return total, (terms, tuple(fake_b), tuple(fake_a), masks_b, masks_a)

        g_vars = self.G_A.trainable_variables + self.G_B.trainable_variables
        _, (terms, fake_b, fake_a, masks_b, masks_a), grads = self.value_and_gradients(loss, g_vars)
        return grads, terms, fake_b, fake_a, masks_b, masks_a

    def _discriminator_update(self, discriminator, optimizer, real, fake, active, count, mismatch=None):
        """LSGAN update of one discriminator: 0.5·[(D(real) − 1)² + D(fake)²] over active samples
        (its gradient as one XLA program with `jit_compile=True`).

        `real` is `(image, masks)` of the discriminator's domain, `fake` `(B, H, W, 3 + slots)` the
        pooled translations. With `lambda_mismatch` λ > 0, `mismatch` `(B, H, W, 3 + slots)` is the
        other domain's real image under its masks translated so far (the later chunks' masks as they
        were): what a generator that turns the masks and leaves the picture would produce. It counts
        as fake too, adding 0.5·λ·D(mismatch)², so that the discriminator checks that the picture
        agrees with the masks (docs/quality.md). Returns the loss, a float32 scalar."""
        weight = self.lambdas["mismatch"]

        def gradients(real, fake, active, count, *mismatch):
            judge = self.network_call(discriminator, True, input_gradients=False)

            def loss():
                verdict_real = judge(real)
                verdict_fake = judge([fake[..., :3], fake[..., 3:]])
                value = 0.5 * (
                    _active_mean(losses.lsgan_loss(verdict_real, 1.0), active, count)
                    + _active_mean(losses.lsgan_loss(verdict_fake, 0.0), active, count)
                )
                for pair in mismatch:
                    verdict = judge([pair[..., :3], pair[..., 3:]])
                    value = value + 0.5 * weight * _active_mean(
                        losses.lsgan_loss(verdict, 0.0), active, count
                    )
                return value, ()

            value, _, grads = self.value_and_gradients(loss, discriminator.trainable_variables)
            return value, grads

        compiled = self.compiled_update(("discriminator_update", discriminator.name), gradients)
        value, grads = compiled(list(real), fake, active, count, *([] if mismatch is None else [mismatch]))
        self.apply_gradients(optimizer, grads, discriminator.trainable_variables)
        return ops.cast(value, "float32")

    # ---------------------------------------------------------------------------------------------
    # Inference

    def translate(self, image, masks, direction="AtoB"):
        """Sequential translation of an image and any number of instance masks.

        Masks are sorted by decreasing (soft) area, split into chunks of `ins_per`, and each chunk with an
        instance is translated on the image the previous chunk produced (empty chunks are skipped;
        a sample without an instance in a chunk keeps its image). The loop is
        `instagan_runner.sequential_translate`, shared with the ONNX Runtime runner. The baselines
        translate once: CycleGAN returns the masks unchanged, CycleGAN+Seg returns one translated
        union mask `(B, H, W, 1)`.

        Args:
            image: `(B, H, W, 3)` in [-1, 1], H and W multiples of 4.
            masks: `(B, H, W, N)`, N ≥ 1, −1 background / +1 instance; empty slots allowed.
            direction: "AtoB" (uses `G_A`) or "BtoA" (uses `G_B`).

        Returns:
            `(image, masks)` as NumPy arrays: the translated image and the translated masks in the
            input order (empty slots stay −1).
        """
        if direction not in DIRECTIONS:
            raise ValueError(f"translate: direction must be one of {DIRECTIONS}; got {direction!r}.")
        generator = self.G_A if direction == "AtoB" else self.G_B
        image = np.asarray(image, "float32")
        masks = np.asarray(masks, "float32")
        check_inputs([image, masks], "translate", multiple_of=4, min_size=GENERATOR_MIN_SIZE)
        if self.merge_masks:
            masks = ops.convert_to_numpy(merged_mask(masks))

        def step(image, chunk):
            return tuple(ops.convert_to_numpy(x) for x in generator([image, chunk]))

        ins_per = self.ins_per if self.netG == "set" else masks.shape[-1]
        return sequential_translate(step, image, masks, ins_per)

    @classmethod
    def from_run(cls, run_dir, **overrides):
        """An `InstaGAN` from a run directory written by `train.py` or `keras_instagan.convert`.

        `config.json` gives the options (official values for those a converted run does not record;
        widths and depths come from the saved networks); the networks are loaded from
        `G_A.keras` … `D_B.keras`, those the run holds (a converted run may hold the generators
        only; the others keep fresh weights), or, for a run stopped before its end, from its last
        `state/`. `overrides` replace options, e.g. `ins_per=4` for inference in larger chunks.
        """
        run = RunDirectory(run_dir)
        config = run.read_config()
        saved = run.saved_networks()
        model = cls(**{**run.model_options(config, saved), **overrides})
        if saved:
            run.load_networks(model, saved)
            return model
        if not run.trained_directions():
            raise FileNotFoundError(
                f"{run_dir}: holds neither G_A.keras … D_B.keras nor state/: nothing to load"
            )
        size = config.get("fineSizeH", 64), config.get("fineSizeW", 64)
        model.build((((1, *size, 3), (1, *size, model.ins_max)),) * 2)
        model.compile()
        run.load_state_weights(model)
        return model

    def get_config(self):
        return {
            **super().get_config(),
            "ngf": self.ngf,
            "ndf": self.ndf,
            "n_blocks": self.n_blocks,
            "n_layers": self.n_layers,
            "ins_max": self.ins_max,
            "ins_per": self.ins_per,
            "pool_size": self.pool_size,
            "seed": self.seed,
            "netG": self.netG,
            "netD": self.netD,
        }
