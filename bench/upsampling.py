"""The generators' upsampling layers as TensorFlow's transposed convolution and as
`keras_instagan.kernels.window_grad_conv_transpose`, which `TorchConv2DTranspose` uses for its
training calls inside the XLA programs of `InstaGAN.compile(jit_compile=True)`.

    python bench/upsampling.py
    python bench/upsampling.py --size 256 --ngf 64

Shapes of the training reference configuration (64×64, ngf 32, ins_per 2): the image decoder's two
3×3 stride-2 transposed convolutions 8·ngf → 4·ngf → 2·ngf on one image, the mask decoder's
12·ngf → 6·ngf → 3·ngf on two masks. For each: forward + gradients (input and kernel, as in a training
step), traced with `tf.function`, with XLA (`jit_compile=True`) and without. Median of `--repeats`
calls after two warm-up calls, 2 threads. The last line printed is a JSON object.
"""

import json

from common import forward_and_gradients, layer_bench_args, measure


def main():
    args = layer_bench_args(__doc__)
    import numpy as np
    import tensorflow as tf
    from keras import ops

    from keras_instagan.kernels import window_grad_conv_transpose

    rng = np.random.default_rng(0)
    implementations = {
        "conv_transpose": lambda x, k: ops.conv_transpose(x, k, 2, "valid"),
        "window_grad": lambda x, k: window_grad_conv_transpose(x, k, 2),
    }
    ngf, size = args.ngf, args.size
    layers = (
        ("image 1", 1, size // 4, 8 * ngf, 4 * ngf),
        ("image 2", 1, size // 2, 4 * ngf, 2 * ngf),
        ("mask 1", 2, size // 4, 12 * ngf, 6 * ngf),
        ("mask 2", 2, size // 2, 6 * ngf, 3 * ngf),
    )
    results = []
    for name, batch, height, channels, out in layers:
        x = tf.constant(rng.standard_normal((batch, height, height, channels)).astype("float32"))
        kernel = tf.constant(0.05 * rng.standard_normal((3, 3, out, channels)).astype("float32"))
        upstream = tf.constant(
            rng.standard_normal((batch, 2 * height + 1, 2 * height + 1, out)).astype("float32")
        )
        for label, implementation in implementations.items():
            forward_backward = forward_and_gradients(implementation, upstream)
            for jit in (True, False):
                ms = round(
                    measure(tf.function(forward_backward, jit_compile=jit), (x, kernel), args.repeats), 2
                )
                results.append(
                    {
                        "layer": name,
                        "batch": batch,
                        "size": height,
                        "channels": f"{channels}->{out}",
                        "implementation": label,
                        "xla": jit,
                        "forward_backward_ms": ms,
                    }
                )
                print(
                    f"{name:7s} B{batch} {height}x{height} {channels:3d}->{out:3d} {label:14s} "
                    f"XLA {'on ' if jit else 'off'}: forward + backward {ms:7.2f} ms",
                    flush=True,
                )
    print(json.dumps({"size": size, "ngf": ngf, "threads": args.threads, "runs": results}))


if __name__ == "__main__":
    main()
