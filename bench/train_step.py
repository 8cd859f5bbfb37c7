"""Speed and memory of one InstaGAN training iteration on the CPU.

    python bench/train_step.py               # the reference configuration + the memory sweep
    python bench/train_step.py --steps 20

Reference configuration (docs/official.md §9): batch 1, 64×64, ngf = ndf = 32, 9 blocks,
ins_max 4, ins_per 2, four non-empty masks, 2 threads (`--inter_op 1`: TensorFlow runs one op at a
time, each on 2 threads; faster here than 2 ops at once). One iteration = `InstaGAN.train_step`
traced with `tf.function` (what `fit` runs) and the networks compiled with XLA
(`compile(jit_compile=True)`; `--no_jit` for without): ins_max/ins_per sequential steps, each a
generator and a discriminator update. The official PyTorch code took 3.14 s per iteration on these
2 cores (docs/official.md §9) on a fast day; the speed of this shared machine changes from day to
day by up to 2×, so the official iteration is also timed now, in a fresh process after ours
(`bench/official_step.py`, PyTorch, skipped with `--no_official` or where torch is not installed),
and `ratio_to_official` is against that measurement.

Memory, for ins_max/ins_per = 2/2, 8/2 and 8/8 while the steady-state steps run: the peak of
TensorFlow's tensor memory (its allocator's statistics, `TF_CPU_ALLOCATOR_USE_BFC=true`; the CPU
counterpart of the GPU memory the paper reports) and the peak resident memory of the process (which
adds the runtime, the traced graph and compiled code). With ins_per fixed, memory should not grow
with ins_max (the paper's claim).
Each configuration runs in a fresh process. The last line printed is a JSON object.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from importlib.util import find_spec

import numpy as np

OFFICIAL_SECONDS = 3.14


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def reference_data(ins_max, size=64):
    """The two domains' `(image, masks)`, NHWC numpy: uniform noise images and ins_max nested squares,
    every slot an instance, largest first (`bench/official_step.py` times the same data)."""
    rng = np.random.default_rng(0)

    def domain():
        image = rng.uniform(-1, 1, (1, size, size, 3)).astype("float32")
        masks = -np.ones((1, size, size, ins_max), "float32")
        for k in range(ins_max):
            side = 40 - 3 * k
            masks[0, k : k + side, k : k + side, k] = 1.0
        return image, masks

    return domain(), domain()


def measure(ins_max, ins_per, steps, warmup, threads, inter_op, jit):
    """Runs in the child process: returns seconds per iteration and memory figures."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["TF_CPU_ALLOCATOR_USE_BFC"] = "true"  # TensorFlow's tensor-memory statistics
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(inter_op)

    from keras_instagan import InstaGAN

    data = tf.nest.map_structure(tf.constant, reference_data(ins_max))
    model = InstaGAN(ngf=32, ndf=32, n_blocks=9, ins_max=ins_max, ins_per=ins_per)
    model.compile(jit_compile=jit)
    model.build(tf.nest.map_structure(lambda t: tuple(t.shape), data))
    step = tf.function(model.train_step)
    start = time.perf_counter()
    for _ in range(warmup):
        step(data)
    first = time.perf_counter() - start

    tf.config.experimental.reset_memory_stats("CPU:0")
    before, peak, running = rss_mb(), [0.0], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(data)
        times.append(time.perf_counter() - start)
    running[0] = False
    sampler.join()
    return {
        "ins_max": ins_max,
        "ins_per": ins_per,
        "seconds_per_step": float(np.median(times)),
        "warmup_seconds": round(first, 1),
        "peak_rss_mb": round(peak[0], 1),
        "rss_before_steps_mb": round(before, 1),
        "tensor_peak_mb": round(tf.config.experimental.get_memory_info("CPU:0")["peak"] / 2**20, 1),
    }


def run_child(ins_max, ins_per, steps, warmup, threads, inter_op, jit):
    command = [
        sys.executable,
        __file__,
        "--child",
        f"{ins_max},{ins_per}",
        "--steps",
        str(steps),
        "--warmup",
        str(warmup),
        "--threads",
        str(threads),
        "--inter_op",
        str(inter_op),
    ]
    command += [] if jit else ["--no_jit"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"bench/train_step.py: {ins_max}/{ins_per} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_official(steps, warmup, threads):
    """`bench/official_step.py` in a fresh process: its seconds per iteration, or None without torch."""
    if find_spec("torch") is None:
        return None
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "official_step.py")
    command = [
        sys.executable,
        script,
        "--steps",
        str(steps),
        "--warmup",
        str(warmup),
        "--threads",
        str(threads),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"bench/official_step.py failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds_per_step"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=10, help="timed iterations (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first (tracing)")
    p.add_argument("--threads", type=int, default=2, help="threads per op")
    p.add_argument("--inter_op", type=int, default=1, help="ops run at once")
    p.add_argument(
        "--no_jit",
        action="store_true",
        help="no XLA for the network calls (InstaGAN.compile(jit_compile=False))",
    )
    p.add_argument(
        "--no_official",
        action="store_true",
        help="do not time the official iteration (bench/official_step.py) after ours",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        ins_max, ins_per = map(int, args.child.split(","))
        print(
            json.dumps(
                measure(
                    ins_max, ins_per, args.steps, args.warmup, args.threads, args.inter_op, not args.no_jit
                )
            )
        )
        return

    runs, official = {}, None
    for ins_max, ins_per in ((4, 2), (2, 2), (8, 2), (8, 8)):
        runs[f"{ins_max}/{ins_per}"] = run = run_child(
            ins_max, ins_per, args.steps, args.warmup, args.threads, args.inter_op, not args.no_jit
        )
        print(
            f"ins_max/ins_per {ins_max}/{ins_per}: {run['seconds_per_step']:.3f} s/iteration, "
            f"tensor peak {run['tensor_peak_mb']:.0f} MB, peak RSS {run['peak_rss_mb']:.0f} MB",
            flush=True,
        )
        if (ins_max, ins_per) == (4, 2) and not args.no_official:  # right after ours: same machine state
            official = run_official(args.steps, args.warmup, args.threads)
            if official is not None:
                print(f"official iteration (PyTorch, bench/official_step.py): {official:.3f} s", flush=True)
    reference = runs["4/2"]["seconds_per_step"]
    growth = {
        key: round(runs["8/2"][key] / runs["2/2"][key] - 1.0, 3) for key in ("tensor_peak_mb", "peak_rss_mb")
    }
    summary = {
        "config": "batch 1, 64x64, ngf=ndf=32, 9 blocks, ins_max 4, ins_per 2, 4 masks, "
        f"{args.threads} threads per op, {args.inter_op} op(s) at once, "
        f"XLA networks {'off' if args.no_jit else 'on'}",
        "seconds_per_step": round(reference, 3),
        "official_pytorch_seconds": official,
        "ratio_to_official": None if official is None else round(reference / official, 3),
        "official_pytorch_seconds_section_9": OFFICIAL_SECONDS,
        "ratio_to_section_9": round(reference / OFFICIAL_SECONDS, 3),
        "tensor_peak_mb": {k: v["tensor_peak_mb"] for k, v in runs.items()},
        "peak_rss_mb": {k: v["peak_rss_mb"] for k, v in runs.items()},
        "tensor_8_2_vs_2_2": growth["tensor_peak_mb"],
        "rss_8_2_vs_2_2": growth["peak_rss_mb"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
