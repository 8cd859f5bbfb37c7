"""The generators' last convolutions (to 3 and 1 channels) as TensorFlow convolutions and as
`keras_instagan.kernels.thin_conv`, which `TorchConv2D` uses for them with `training=True`.

    python bench/thin_conv.py
    python bench/thin_conv.py --size 256 --ngf 64

Shapes of the training reference configuration (64×64, ngf 32, ins_per 2): the image decoder's
7×7 convolution 2·ngf → 3 on one image and the mask decoder's 3·ngf → 1 on two masks, reflection
padding included. For each: the forward pass, and forward + gradients (input and kernel, as in a
training step), traced with `tf.function`, with XLA (`jit_compile=True`, what
`InstaGAN.compile(jit_compile=True)` runs) and without. Median of `--repeats` calls after two
warm-up calls, 2 threads. The last line printed is a JSON object.
"""

import json

from common import forward_and_gradients, layer_bench_args, measure


def main():
    args = layer_bench_args(__doc__)
    import numpy as np
    import tensorflow as tf
    from keras import ops

    from keras_instagan.kernels import thin_conv

    rng = np.random.default_rng(0)
    implementations = {"conv": lambda x, k: ops.conv(x, k, 1, "valid"), "thin_conv": thin_conv}
    results = []
    for name, batch, channels, out in (("image 7x7", 1, 2 * args.ngf, 3), ("mask 7x7", 2, 3 * args.ngf, 1)):
        padded = args.size + 6
        x = tf.constant(rng.standard_normal((batch, padded, padded, channels)).astype("float32"))
        kernel = tf.constant(0.05 * rng.standard_normal((7, 7, channels, out)).astype("float32"))
        upstream = tf.constant(rng.standard_normal((batch, args.size, args.size, out)).astype("float32"))
        for label, implementation in implementations.items():

            def forward(x, kernel, implementation=implementation):
                return [implementation(x, kernel)]

            forward_backward = forward_and_gradients(implementation, upstream)

            for jit in (True, False):
                row = {
                    "layer": name,
                    "batch": batch,
                    "channels": f"{channels}->{out}",
                    "implementation": label,
                    "xla": jit,
                }
                for key, function in (("forward_ms", forward), ("forward_backward_ms", forward_backward)):
                    row[key] = round(
                        measure(tf.function(function, jit_compile=jit), (x, kernel), args.repeats), 2
                    )
                results.append(row)
                print(
                    f"{name:9s} B{batch} {channels:3d}->{out} {label:9s} XLA {'on ' if jit else 'off'}: "
                    f"forward {row['forward_ms']:7.2f} ms, forward + backward "
                    f"{row['forward_backward_ms']:7.2f} ms",
                    flush=True,
                )
    print(json.dumps({"size": args.size, "ngf": args.ngf, "threads": args.threads, "runs": results}))


if __name__ == "__main__":
    main()
