"""Helpers the benchmarks share: timing, the per-layer benchmarks' options and gradients, the
training benchmarks' reference data, model and iteration, and memory reading. Benchmarks import
this module only, never each other (run them from the repository root: `python bench/<name>.py`)."""

import argparse
import os
import time

import numpy as np


def measure(function, args, repeats):
    """Median milliseconds of `function(*args)` over `repeats` calls after two warm-up calls (its
    results, tensors, are read back to NumPy inside the timing)."""
    function(*args)
    function(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        [value.numpy() for value in result]
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1e3


def median_seconds(call, repeats):
    """Median seconds of `call()` over `repeats` calls after one warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def forward_and_gradients(implementation, upstream):
    """`(x, kernel)` → `[y, dx, dkernel]`, y = implementation(x, kernel), the gradients those of
    Σ y·upstream (what a training step computes), for `tf.function`."""
    import tensorflow as tf

    def forward_backward(x, kernel):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = implementation(x, kernel)
            loss = tf.reduce_sum(y * upstream)
        return [y] + tape.gradient(loss, [x, kernel])

    return forward_backward


def layer_bench_args(description, **extra):
    """The options of the per-layer benchmarks (`--size`, `--ngf`, `--repeats`, `--threads`, and an
    integer option per `extra` name: `(default, help)`), parsed; TensorFlow set to `--threads` threads
    per op, one op at a time."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=64, help="image height and width")
    p.add_argument("--ngf", type=int, default=32, help="generator base width")
    p.add_argument("--repeats", type=int, default=30, help="timed calls (median reported)")
    p.add_argument("--threads", type=int, default=2, help="threads per op")
    for name, (default, help) in extra.items():
        p.add_argument(f"--{name}", type=int, default=default, help=help)
    args = p.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return args


def reference_data(ins_max, size=64, batch=1, instances=None):
    """The two domains' `(image, masks)`, NHWC numpy: uniform noise images and ins_max nested squares,
    every slot an instance, largest first (`bench/official_step.py` times the same data); `batch`
    copies of that sample. With `instances` k, only the first k slots hold one (the rest stay −1)."""
    rng = np.random.default_rng(0)

    def domain():
        image = rng.uniform(-1, 1, (1, size, size, 3)).astype("float32")
        masks = -np.ones((1, size, size, ins_max), "float32")
        for k in range(ins_max if instances is None else min(instances, ins_max)):
            side = 40 - 3 * k
            masks[0, k : k + side, k : k + side, k] = 1.0
        return np.repeat(image, batch, axis=0), np.repeat(masks, batch, axis=0)

    return domain(), domain()


def reference_model(data, ins_max, ins_per, ngf, n_blocks, **compile_options):
    """InstaGAN with ndf = ngf, compiled with `compile_options` (`InstaGAN.compile`) and built for the
    shapes of `data`, the `(image, masks)` pair of each domain."""
    from keras_instagan import InstaGAN

    model = InstaGAN(ngf=ngf, ndf=ngf, n_blocks=n_blocks, ins_max=ins_max, ins_per=ins_per)
    model.compile(**compile_options)
    model.build(tuple((tuple(image.shape), tuple(masks.shape)) for image, masks in data))
    return model


def training_iteration(model, data, backend):
    """A call that runs one training iteration of `model` on `data` and returns once its losses are
    computed: on TensorFlow `model.train_step` traced with `tf.function` (what `fit` runs), its logs
    read back; on the other backends `model.train_on_batch` (on JAX one jitted program)."""
    if backend != "tensorflow":
        return lambda: model.train_on_batch(x=data)
    import tensorflow as tf

    data = tf.nest.map_structure(tf.constant, data)
    step = tf.function(model.train_step)
    return lambda: [value.numpy() for value in tf.nest.flatten(step(data))]


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")
