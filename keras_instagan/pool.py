"""The image pool of fake samples shown to a discriminator (docs/official.md §5.5).

CycleGAN's history buffer: while fewer than `pool_size` fakes are stored, each new fake is stored and
returned; afterwards, per sample, with probability 0.5 a random stored fake is returned and replaced
by the new one, else the new one is returned. Stored values are detached.

The buffer lives in the model's variables (so it is checkpointed and restored with the run) and is
queried inside the traced training step. Under a `tf.distribute` strategy each replica keeps its own
buffer (`synchronization="on_read"`), as each worker of a data-parallel job would.
"""

import keras
from keras import ops

from keras_instagan.layers import PACKAGE


def _first(index):
    """Start indices `(index, 0, 0, 0)` of one integer type (JAX requires it)."""
    zero = ops.zeros_like(index)
    return index, zero, zero, zero


@keras.saving.register_keras_serializable(package=PACKAGE)
class FakePool(keras.layers.Layer):
    """A pool of up to `pool_size` past fakes `(H, W, C)`; `pool_size = 0` returns the input as is.

    `pool(fakes, active)`: `fakes` `(B, H, W, C)`, `active` `(B,)` float (1.0 = this sample is a real
    fake of this step; inactive samples neither enter nor leave the pool and come back unchanged).
    """

    def __init__(self, pool_size=50, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if self.pool_size > 0:
            if None in tuple(input_shape[1:]):
                raise ValueError(
                    f"FakePool: the fakes must have a static (H, W, C); got {tuple(input_shape)}. "
                    "Train on fixed-size crops."
                )
            per_replica = {
                "trainable": False,
                "synchronization": "on_read",
                "aggregation": "only_first_replica",
            }
            self.buffer = keras.Variable(
                "zeros",
                shape=(self.pool_size,) + tuple(input_shape[1:]),
                dtype=self.compute_dtype,
                name="buffer",
                **per_replica,
            )
            self.stored = keras.Variable("zeros", shape=(), dtype="int32", name="stored", **per_replica)

    def call(self, fakes, active):
        fakes = ops.stop_gradient(fakes)
        if self.pool_size == 0:
            return fakes
        draws = keras.random.uniform((ops.shape(fakes)[0], 2), seed=self.seed_generator)

        def query(i, carry):
            out, buffer, stored = carry
            fake = fakes[i]
            filling = stored < self.pool_size
            swap = ops.logical_and(ops.logical_not(filling), draws[i, 0] > 0.5)
            slot = ops.where(
                filling, stored, ops.cast(draws[i, 1] * self.pool_size, "int32") % self.pool_size
            )
            is_active = active[i] > 0
            old = ops.take(buffer, slot, axis=0)
            write = ops.logical_and(is_active, ops.logical_or(filling, swap))
            buffer = ops.slice_update(buffer, _first(slot), ops.where(write, fake, old)[None])
            stored = stored + ops.cast(ops.logical_and(is_active, filling), "int32")
            returned = ops.where(ops.logical_and(is_active, swap), old, fake)
            return ops.slice_update(out, _first(i), returned[None]), buffer, stored

        carry = fakes, ops.convert_to_tensor(self.buffer), ops.convert_to_tensor(self.stored)
        out, buffer, stored = ops.fori_loop(0, ops.shape(fakes)[0], query, carry)
        self.buffer.assign(buffer)
        self.stored.assign(stored)
        return out

    def compute_output_shape(self, input_shape, active_shape=None):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "seed": self.seed}
