"""The generators' residual blocks with their 3×3 convolutions as TensorFlow's convolution and as
`keras_instagan.kernels.winograd_conv`, which `TorchConv2D` uses for them in the training calls
inside the XLA programs of `InstaGAN.compile(jit_compile=True)`.

    python bench/residual_blocks.py
    python bench/residual_blocks.py --size 256 --ngf 64 --blocks 9

Shapes of the training reference configuration (64×64, ngf 32, 9 blocks, ins_per 2): the residual
blocks of one encoder, 4·ngf channels at a quarter of the image size, on one image (the image
encoder) and on two masks (the mask encoder). Forward + gradients (input and every kernel and bias,
as in a training step) of `ResnetBlock` layers called with `training=True`, traced with `tf.function`,
with XLA (`jit_compile=True`) and without; "winograd" traces them inside `kernels.xla_kernels()`.
The four variants of a shape are timed in turn, `--rounds` times (median of `--repeats` calls after
two warm-up calls each time; the median of the rounds is reported), so that a slow spell of the
machine does not fall on one variant only. 2 threads. The last line printed is a JSON object.
"""

import json
import time

from common import layer_bench_args, measure


def main():
    args = layer_bench_args(
        __doc__, blocks=(9, "residual blocks"), rounds=(3, "times each variant is timed, in turn")
    )
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_instagan.kernels import xla_kernels
    from keras_instagan.layers import ResnetBlock

    rng = np.random.default_rng(0)
    size, channels = args.size // 4, 4 * args.ngf
    blocks = keras.Sequential([ResnetBlock(channels) for _ in range(args.blocks)])
    blocks.build((None, size, size, channels))
    results = []
    for name, batch in (("image", 1), ("masks", 2)):
        x = tf.constant(rng.standard_normal((batch, size, size, channels)).astype("float32"))
        upstream = tf.constant(rng.standard_normal(x.shape).astype("float32"))

        def forward_backward(x, upstream=upstream):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(blocks(x, training=True) * upstream)
            return tape.gradient(loss, [x] + blocks.trainable_variables)

        def winograd(x, forward_backward=forward_backward):
            with xla_kernels():
                return forward_backward(x)

        variants = {
            (label, jit): tf.function(function, jit_compile=jit)
            for label, function in (("conv", forward_backward), ("winograd", winograd))
            for jit in (True, False)
        }
        compile_s = {}
        for key, function in variants.items():
            start = time.perf_counter()
            function(x)
            compile_s[key] = time.perf_counter() - start
        times = {key: [] for key in variants}
        for _ in range(args.rounds):
            for key, function in variants.items():
                times[key].append(measure(function, (x,), args.repeats))
        for (label, jit), values in times.items():
            ms = round(float(np.median(values)), 1)
            results.append(
                {
                    "encoder": name,
                    "batch": batch,
                    "implementation": label,
                    "xla": jit,
                    "forward_backward_ms": ms,
                    "first_call_s": round(compile_s[label, jit], 1),
                }
            )
            print(
                f"{name:5s} B{batch} {args.blocks} blocks {size}x{size}x{channels} {label:8s} "
                f"XLA {'on ' if jit else 'off'}: forward + backward {ms:7.1f} ms "
                f"(first call {compile_s[label, jit]:5.1f} s)",
                flush=True,
            )
    print(
        json.dumps(
            {
                "size": args.size,
                "ngf": args.ngf,
                "blocks": args.blocks,
                "threads": args.threads,
                "runs": results,
            }
        )
    )


if __name__ == "__main__":
    main()
