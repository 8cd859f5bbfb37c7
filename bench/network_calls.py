"""Forward + backward of each network of a training iteration, one compiled program per network, on
TensorFlow or JAX: where a backend's iteration loses time, network by network.

    taskset -c 1 python bench/network_calls.py                  # TensorFlow
    taskset -c 1 python bench/network_calls.py --backend jax

Shapes of the training reference configuration (64×64, ngf = ndf = 32, 9 blocks, ins_max 4,
ins_per 2): the generator's image encoder on one image, its mask encoder on `ins_per` masks, its
image decoder and mask decoder on their inputs, the whole `SetGenerator` (one image and `ins_per`
masks) and the `SetDiscriminator` (one image and `ins_max` masks). Each is called with
`training=True` inside `kernels.xla_kernels()` (the convolution forms the XLA training programs use
on a CPU) and differentiated for its trainable weights and its inputs, with the loss Σ mean(out²):
TensorFlow traces it with `tf.function(jit_compile=True)` and `GradientTape`, JAX with `jax.jit` of
`jax.grad`. Median of `--repeats` calls after two warm-up calls; the first call's seconds
(tracing and compilation) beside it. JAX uses every core it is given and TensorFlow one thread per
op, so pin the process to one core with `taskset` to compare backends. The last line printed is a
JSON object.
"""

import argparse
import json
import os
import time

import numpy as np
from common import median_seconds


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=64, help="image height and width")
    p.add_argument("--ngf", type=int, default=32, help="generator and discriminator base width")
    p.add_argument("--n_blocks", type=int, default=9, help="residual blocks")
    p.add_argument("--ins_max", type=int, default=4, help="masks the discriminator sees")
    p.add_argument("--ins_per", type=int, default=2, help="masks the generator translates at once")
    p.add_argument("--repeats", type=int, default=10, help="timed calls (median reported)")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow", help="Keras backend")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["KERAS_BACKEND"] = args.backend

    import keras

    from keras_instagan.networks import SetDiscriminator, SetGenerator

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    generator = SetGenerator(ngf=args.ngf, n_blocks=args.n_blocks)
    discriminator = SetDiscriminator(ndf=args.ngf)
    size, width = args.size, 4 * args.ngf
    feature = size // 4
    image, masks, all_masks = (1, size, size, 3), (1, size, size, args.ins_per), (1, size, size, args.ins_max)
    parts = {
        "image encoder": (generator.encoder_img, image),
        "mask encoder": (generator.encoder_seg, (args.ins_per, size, size, 1)),
        "image decoder": (generator.decoder_img, (1, feature, feature, 2 * width)),
        "mask decoder": (generator.decoder_seg, (args.ins_per, feature, feature, 3 * width)),
        "generator": (generator, [image, masks]),
        "discriminator": (discriminator, [image, all_masks]),
    }
    results = {}
    for name, (network, shapes) in parts.items():
        first, median = time_network(backend, network, inputs(shapes), args.repeats)
        results[name] = {"ms": round(median * 1e3, 1), "first_call_s": round(first, 1)}
        print(f"{name}: {median * 1e3:.1f} ms, first call {first:.1f} s", flush=True)
    config = (
        f"{size}x{size}, ngf=ndf={args.ngf}, {args.n_blocks} blocks, ins_max {args.ins_max}, "
        f"ins_per {args.ins_per}, forward + backward, one compiled program per network"
    )
    print(json.dumps({"backend": backend, "config": config, "networks": results}))


def inputs(shapes):
    """Uniform images in [-1, 1] for one shape, or `[image, masks]` with ±1 masks for a pair."""
    rng = np.random.default_rng(0)
    if isinstance(shapes, list):
        image, masks = shapes
        return [
            rng.uniform(-1, 1, image).astype("float32"),
            np.where(rng.uniform(size=masks) > 0.5, 1.0, -1.0).astype("float32"),
        ]
    return rng.uniform(-1, 1, shapes).astype("float32")


def time_network(backend, network, x, repeats):
    """(first call seconds, median seconds) of the network's compiled forward + backward."""
    import keras
    from keras import ops

    from keras_instagan.kernels import xla_kernels

    def loss_of(x):
        return sum(ops.mean(out**2) for out in keras.tree.flatten(network(x, training=True)))

    if backend == "jax":
        import jax

        trainable, other = network.trainable_variables, network.non_trainable_variables

        def loss(trainable_values, other_values, x):
            mapping = list(zip(trainable, trainable_values)) + list(zip(other, other_values))
            with keras.StatelessScope(state_mapping=mapping):
                return loss_of(x)

        gradients = jax.jit(jax.grad(loss, argnums=(0, 2)))
        values = ([v.value for v in trainable], [v.value for v in other])

        def call():
            jax.block_until_ready(gradients(*values, x))

    else:
        import tensorflow as tf

        x = keras.tree.map_structure(tf.constant, x)

        @tf.function(jit_compile=True)
        def gradients(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = loss_of(x)
            return tape.gradient(loss, network.trainable_variables + keras.tree.flatten(x))

        def call():
            [g.numpy() for g in gradients(x)]

    with xla_kernels():
        start = time.perf_counter()
        call()
        first = time.perf_counter() - start
        return first, median_seconds(call, repeats)


if __name__ == "__main__":
    main()
