"""Speed and memory of one InstaGAN training iteration on the CPU.

    python bench/train_step.py               # the reference configuration + the memory sweep
    python bench/train_step.py --steps 20
    python bench/train_step.py --backend jax # the same on another Keras backend (jax, torch)
    python bench/train_step.py --reference_only   # 4/2 only
    python bench/train_step.py --xla_forms off    # XLA's own convolutions (InstaGAN.compile(xla_forms=False))
    python bench/train_step.py --batch 2          # 2 samples an iteration (copies of the reference sample)
    python bench/train_step.py --instances 1      # only the largest mask an instance: step 2 is skipped

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

Memory, for ins_max/ins_per = 2/2, 8/2, 8/4 and 8/8 while the steady-state steps run: the peak of
TensorFlow's tensor memory (its allocator's statistics, `TF_CPU_ALLOCATOR_USE_BFC=true`; the CPU
counterpart of the GPU memory the paper reports) and the peak resident memory of the process (which
adds the runtime, the traced graph and compiled code). With ins_per fixed, memory should not grow
with ins_max (the paper's claim); 8/4 shows what a chunk size between the two saves.
Other Keras backends (`--backend jax` or `torch`, each in a child process with that
`KERAS_BACKEND`): one iteration is `model.train_on_batch` of a compiled model (on JAX the whole
iteration as one jitted program, `trainers/jax.py`; PyTorch runs eagerly), the first step's time is
that of the first call (tracing and compilation included), and memory is the peak resident memory
only (these backends keep no tensor-memory statistics on the CPU). JAX uses every core it is given
(pin the process with `taskset` to compare at one core); PyTorch gets `--threads` threads. Every
backend also reports the process's minor page faults and kernel seconds per timed iteration
(`getrusage`).
With `--batch B` an iteration trains B copies of the sample; `seconds_per_sample` is the
iteration's seconds over B, and `ratio_to_official` compares it with the official (batch-1)
iteration. With `--instances K` only the K largest mask slots of each configuration hold an
instance (the others stay empty), so the steps of chunks without any are skipped, as in training on
images with fewer objects than ins_max; the official iteration is not timed then. Each
configuration runs in a fresh process. The last line printed is a JSON object.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from importlib.util import find_spec

import numpy as np
from common import reference_data, reference_model, rss_mb, training_iteration

OFFICIAL_SECONDS = 3.14
# ins_max, ins_per: the reference first, then the memory sweep
CONFIGS = ((4, 2), (2, 2), (8, 2), (8, 4), (8, 8))
FORMS = {"auto": "auto", "on": True, "off": False}  # --xla_forms → InstaGAN.compile(xla_forms=...)


def warm_up(call, count):
    """Seconds of the first `call()` (tracing and compilation included), then `count` − 1 more."""
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    for _ in range(count - 1):
        call()
    return first


def peak_rss_while(call, steps):
    """Median seconds of `steps` calls of `call()`, the resident memory before them and its peak
    during them (MB, sampled every 5 ms), and the process's minor page faults and system (kernel)
    seconds per call."""
    before, peak, running = rss_mb(), [0.0], [True]
    usage = resource.getrusage(resource.RUSAGE_SELF)

    def sample():
        while running[0]:
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    running[0] = False
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_SELF)
    kernel = {
        "page_faults_per_step": round((after.ru_minflt - usage.ru_minflt) / steps),
        "system_seconds_per_step": round((after.ru_stime - usage.ru_stime) / steps, 3),
    }
    return float(np.median(times)), before, peak[0], kernel


def time_iterations(call, args, before_timing=None):
    """`args.warmup` calls of `call()` (the first one's seconds kept), then `before_timing()` and
    `args.steps` timed calls; returns the figures every backend reports."""
    first = warm_up(call, args.warmup)
    if before_timing is not None:
        before_timing()
    seconds, before, peak, kernel = peak_rss_while(call, args.steps)
    return {
        "seconds_per_step": seconds,
        "first_step_seconds": round(first, 1),
        **kernel,
        "peak_rss_mb": round(peak, 1),
        "rss_before_steps_mb": round(before, 1),
    }


def accelerator_memory(backend):
    """The accelerator that trained and its peak memory in MB, or None on a CPU."""
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "cpu":
            return None
        return {
            "name": device.device_kind,
            "peak_mb": round(device.memory_stats()["peak_bytes_in_use"] / 2**20, 1),
        }
    import torch

    if not torch.cuda.is_available():
        return None
    return {
        "name": torch.cuda.get_device_name(),
        "peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
    }


def measure_keras_backend(ins_max, ins_per, args):
    """`measure` on JAX or PyTorch (the child's `KERAS_BACKEND`): `train_on_batch` of a compiled model."""
    if args.backend == "torch":
        import torch

        torch.set_num_threads(args.threads)
    data = reference_data(ins_max, args.size, args.batch, args.instances)
    model = reference_model(data, ins_max, ins_per, args.ngf, args.n_blocks, xla_forms=FORMS[args.xla_forms])
    figures = time_iterations(training_iteration(model, data, args.backend), args)
    return {
        "ins_max": ins_max,
        "ins_per": ins_per,
        **figures,
        "tensor_peak_mb": None,
        "device": accelerator_memory(args.backend),
    }


def measure(ins_max, ins_per, args):
    """Runs in the child process: returns seconds per iteration and memory figures."""
    if args.backend != "tensorflow":
        return measure_keras_backend(ins_max, ins_per, args)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["TF_CPU_ALLOCATOR_USE_BFC"] = "true"  # TensorFlow's tensor-memory statistics
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)

    data = reference_data(ins_max, args.size, args.batch, args.instances)
    model = reference_model(
        data,
        ins_max,
        ins_per,
        args.ngf,
        args.n_blocks,
        jit_compile=not args.no_jit,
        xla_forms=FORMS[args.xla_forms],
    )
    figures = time_iterations(
        training_iteration(model, data, "tensorflow"),
        args,
        lambda: tf.config.experimental.reset_memory_stats("CPU:0"),
    )
    tensor_peak = tf.config.experimental.get_memory_info("CPU:0")["peak"] / 2**20
    return {"ins_max": ins_max, "ins_per": ins_per, **figures, "tensor_peak_mb": round(tensor_peak, 1)}


def shared_options(args):
    """The options a child process (ours or `bench/official_step.py`) takes over from this run."""
    options = ["--steps", args.steps, "--warmup", args.warmup, "--threads", args.threads]
    return [str(o) for o in options + ["--size", args.size, "--ngf", args.ngf, "--n_blocks", args.n_blocks]]


def run_child(ins_max, ins_per, args):
    command = [sys.executable, __file__, "--child", f"{ins_max},{ins_per}", *shared_options(args)]
    command += ["--inter_op", str(args.inter_op), "--backend", args.backend, "--batch", str(args.batch)]
    command += [] if args.instances is None else ["--instances", str(args.instances)]
    command += ["--no_jit"] if args.no_jit else []
    command += ["--xla_forms", args.xla_forms]
    env = {**os.environ, "KERAS_BACKEND": args.backend}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode:
        sys.exit(f"bench/train_step.py: {ins_max}/{ins_per} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_official(args):
    """`bench/official_step.py` in a fresh process: its seconds per iteration, or None without torch."""
    if find_spec("torch") is None:
        return None
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "official_step.py")
    command = [sys.executable, script, *shared_options(args), "--device", args.official_device]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"bench/official_step.py failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds_per_step"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=10, help="timed iterations (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first (tracing), at least 1")
    p.add_argument("--threads", type=int, default=2, help="threads per op")
    p.add_argument("--inter_op", type=int, default=1, help="ops run at once")
    p.add_argument("--size", type=int, default=64, help="image height and width (reference: 64)")
    p.add_argument("--ngf", type=int, default=32, help="generator and discriminator width (reference: 32)")
    p.add_argument("--n_blocks", type=int, default=9, help="residual blocks (reference: 9)")
    p.add_argument("--batch", type=int, default=1, help="samples per iteration (reference: 1)")
    p.add_argument(
        "--instances", type=int, help="mask slots that hold an instance, largest first (default: all)"
    )
    p.add_argument(
        "--no_jit",
        action="store_true",
        help="no XLA for the network calls (InstaGAN.compile(jit_compile=False))",
    )
    p.add_argument(
        "--xla_forms",
        choices=tuple(FORMS),
        default="auto",
        help="the convolution forms of the XLA programs (InstaGAN.compile(xla_forms=...)): "
        "auto (default), on, or off (XLA's own convolutions)",
    )
    p.add_argument(
        "--no_official",
        action="store_true",
        help="do not time the official iteration (bench/official_step.py) after ours",
    )
    p.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        default="tensorflow",
        help="the Keras backend that trains (default tensorflow)",
    )
    p.add_argument(
        "--official_device", default="cpu", help="torch device of the official iteration (cpu, cuda)"
    )
    p.add_argument(
        "--reference_only",
        action="store_true",
        help="the reference configuration (4/2) only, no memory sweep",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        ins_max, ins_per = map(int, args.child.split(","))
        print(json.dumps(measure(ins_max, ins_per, args)))
        return

    runs, official = {}, None
    for ins_max, ins_per in CONFIGS[: 1 if args.reference_only else None]:
        runs[f"{ins_max}/{ins_per}"] = run = run_child(ins_max, ins_per, args)
        tensor = "" if run["tensor_peak_mb"] is None else f"tensor peak {run['tensor_peak_mb']:.0f} MB, "
        print(
            f"ins_max/ins_per {ins_max}/{ins_per}: {run['seconds_per_step']:.3f} s/iteration, "
            f"first step {run['first_step_seconds']:.1f} s, {tensor}"
            f"peak RSS {run['peak_rss_mb']:.0f} MB, {run.get('page_faults_per_step')} page faults "
            f"and {run.get('system_seconds_per_step')} s in the kernel an iteration",
            flush=True,
        )
        # the official iteration right after ours: the same machine state
        if (ins_max, ins_per) == (4, 2) and not args.no_official and args.instances is None:
            official = run_official(args)
            if official is not None:
                print(f"official iteration (PyTorch, bench/official_step.py): {official:.3f} s", flush=True)
    reference = runs["4/2"]["seconds_per_step"]
    per_sample = reference / args.batch
    growth = {
        key: None
        if "2/2" not in runs or runs["2/2"][key] is None
        else round(runs["8/2"][key] / runs["2/2"][key] - 1.0, 3)
        for key in ("tensor_peak_mb", "peak_rss_mb")
    }
    own_convolutions = f", convolution forms {args.xla_forms}"
    how = {
        "tensorflow": f"{args.inter_op} op(s) at once, XLA networks {'off' if args.no_jit else 'on'}"
        + own_convolutions,
        "jax": "the iteration as one jitted program" + own_convolutions,
        "torch": "eager",
    }[args.backend]
    summary = {
        "backend": args.backend,
        "config": f"batch {args.batch}, {args.size}x{args.size}, ngf=ndf={args.ngf}, {args.n_blocks} blocks, "
        f"ins_max 4, ins_per 2, {4 if args.instances is None else min(args.instances, 4)} masks, "
        f"{args.threads} threads per op, {how}",
        "seconds_per_step": round(reference, 3),
        "seconds_per_sample": round(per_sample, 3),
        "first_step_seconds": runs["4/2"]["first_step_seconds"],
        "page_faults_per_step": runs["4/2"].get("page_faults_per_step"),
        "system_seconds_per_step": runs["4/2"].get("system_seconds_per_step"),
        "official_pytorch_seconds": official,
        "ratio_to_official": None if official is None else round(per_sample / official, 3),
        "official_pytorch_seconds_section_9": OFFICIAL_SECONDS,
        "ratio_to_section_9": round(per_sample / OFFICIAL_SECONDS, 3),
        "tensor_peak_mb": {k: v["tensor_peak_mb"] for k, v in runs.items()},
        "peak_rss_mb": {k: v["peak_rss_mb"] for k, v in runs.items()},
        "device": runs["4/2"].get("device"),
        "tensor_8_2_vs_2_2": growth["tensor_peak_mb"],
        "rss_8_2_vs_2_2": growth["peak_rss_mb"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
