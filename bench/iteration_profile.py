"""Where the time of JAX's jitted training iteration goes, operation by operation.

    taskset -c 0 python bench/iteration_profile.py            # the reference configuration
    taskset -c 0 python bench/iteration_profile.py --top 30

On the JAX backend the whole iteration is one XLA program (`keras_instagan/trainers/jax.py`). This
traces `--steps` iterations of the reference configuration (64×64, ngf = ndf = 32, 9 blocks,
ins_max 4, ins_per 2, the data of `bench/train_step.py`) with `jax.profiler`, after `--warmup`
untraced ones, and reads the events of XLA's CPU threads from the trace: the seconds of each kind of
operation (an instruction's name less its number: `conv_general_dilated`, `dot`, `ynn_fusion`, …)
per iteration, and for the convolutions the same split by shape and by the layer they come from
(XLA's optimised program, dumped with `--xla_dump_to`, names each instruction's layer). One core
(`taskset`) keeps one XLA thread, so that the operations' seconds add up to the iteration's. The last
line printed is a JSON object.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import shutil
import sys
import tempfile
import time


def events(trace_dir):
    """`(name, microseconds)` of every operation XLA ran on its CPU threads in the trace."""
    path = sorted(glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True))[-1]
    with gzip.open(path) as f:
        trace = json.load(f)
    trace = trace["traceEvents"] if isinstance(trace, dict) else trace
    threads = {
        (e["pid"], e["tid"]): e["args"]["name"]
        for e in trace
        if e.get("ph") == "M" and e.get("name") == "thread_name"
    }
    return [
        (e["name"], e["dur"])
        for e in trace
        if e.get("ph") == "X"
        and "XLA" in threads.get((e["pid"], e["tid"]), "")
        and not e["name"].startswith("ThunkExecutor")
    ]


def convolutions(dump_dir):
    """Each convolution of the largest optimised program → `(result shape, window, layer)`."""
    text = max(glob.glob(os.path.join(dump_dir, "*after_optimizations.txt")), key=os.path.getsize)
    found = {}
    pattern = r"%(\S+) = (\S+?)\{[^}]*\} convolution\(.*?window=\{([^}]*)\}.*?op_name=\"([^\"]*)\""
    with open(text) as f:
        program = f.read()
    for name, shape, window, op_name in re.findall(pattern, program):
        layer = re.sub(r"jit\(\w+\)/(while/body/closed_call/)?", "", op_name)
        found[name] = (shape, window, re.sub(r"_\d+/", "/", re.sub(r"\b[GD]_[AB]\b", "net", layer)))
    return found


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=64, help="image height and width")
    p.add_argument("--ngf", type=int, default=32, help="generator and discriminator width")
    p.add_argument("--n_blocks", type=int, default=9, help="residual blocks")
    p.add_argument("--ins_max", type=int, default=4)
    p.add_argument("--ins_per", type=int, default=2)
    p.add_argument("--steps", type=int, default=3, help="traced iterations")
    p.add_argument("--warmup", type=int, default=2, help="untraced iterations first (compilation)")
    p.add_argument("--top", type=int, default=15, help="rows of each table")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="iteration_profile_")
    os.environ["KERAS_BACKEND"] = "jax"
    dump = f"--xla_dump_to={work}/hlo --xla_dump_hlo_as_text"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {dump}"
    import jax
    from common import reference_data

    from keras_instagan import InstaGAN

    if jax.default_backend() != "cpu":
        sys.exit(f"bench/iteration_profile.py reads XLA's CPU threads; JAX runs on {jax.default_backend()}")
    data = reference_data(args.ins_max, args.size)
    model = InstaGAN(
        ngf=args.ngf, ndf=args.ngf, n_blocks=args.n_blocks, ins_max=args.ins_max, ins_per=args.ins_per
    )
    model.compile()
    model.build(tuple((image.shape, masks.shape) for image, masks in data))
    for _ in range(args.warmup):
        model.train_on_batch(x=data)
    seconds = []
    with jax.profiler.trace(f"{work}/trace", create_perfetto_trace=True):
        for _ in range(args.steps):
            start = time.perf_counter()
            model.train_on_batch(x=data)
            seconds.append(time.perf_counter() - start)

    ops, convs, count = collections.Counter(), collections.Counter(), collections.Counter()
    known = convolutions(f"{work}/hlo")
    for name, micros in events(f"{work}/trace"):
        kind = re.sub(r"[.\d]+$", "", name)
        ops[kind] += micros / 1e3 / args.steps
        count[kind] += 1 / args.steps
        if name in known:
            convs[" ".join(known[name])] += micros / 1e3 / args.steps
    shutil.rmtree(work)  # the trace and XLA's dumped programs: tens of MB
    total = sum(ops.values())
    iteration = 1e3 * sorted(seconds)[len(seconds) // 2]
    print(f"iteration {iteration:.0f} ms; XLA's operations {total:.0f} ms ({count.total():.0f} of them)")
    for kind, ms in ops.most_common(args.top):
        print(f"  {kind:40s} {ms:8.1f} ms  {100 * ms / total:5.1f} %  {count[kind]:6.0f}")
    print("convolutions by shape and layer:")
    for key, ms in convs.most_common(args.top):
        print(f"  {ms:8.1f} ms  {key}")
    summary = {
        "iteration_ms": round(iteration, 1),
        "operations_ms": round(total, 1),
        "by_kind_ms": {k: round(v, 1) for k, v in ops.most_common(args.top)},
        "convolutions_ms": round(sum(convs.values()), 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
