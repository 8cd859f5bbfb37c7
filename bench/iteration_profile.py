"""Where the time of a compiled training iteration goes, XLA operation by XLA operation.

    taskset -c 0 python bench/iteration_profile.py                          # JAX, the reference configuration
    taskset -c 1 python bench/iteration_profile.py --backend tensorflow     # TensorFlow's XLA updates
    taskset -c 0 python bench/iteration_profile.py --top 30

Both backends run the iteration as XLA programs on a CPU: on JAX one jitted program
(`keras_instagan/trainers/jax.py`, timed with `train_on_batch`), on TensorFlow one XLA program per
update inside the traced step (`compile(jit_compile=True)`, timed as `bench/train_step.py` does, with
one thread per op). This traces `--steps` iterations of the reference configuration (64×64, ngf =
ndf = 32, 9 blocks, ins_max 4, ins_per 2, the data of `bench/train_step.py`) with the backend's
profiler, after `--warmup` untraced ones, and reads the events of XLA's operations from the trace,
each named by its program and instruction. XLA's optimised programs (dumped with `--xla_dump_to`)
tell each instruction's operation, shape and layer, so the seconds per iteration add up by operation
(`dot`, `convolution`, `copy`, …; a fusion that XLA hands to YNNPACK counts as `ynn_fusion`), by
instruction name less its number (`transpose_copy_fusion`, …), and for the convolutions and the
matrix products by shape and layer. Loops and conditionals (`while`, `conditional`) hold other
operations and are left out of the sums. One core (`taskset`) keeps one XLA thread, so that the
operations' seconds add up to what the iteration spends in XLA; the rest of the iteration is the
runtime between them and the host. TensorFlow's trace is read with the profiler's own protocol
buffers (`tensorflow.tsl`). The last line printed is a JSON object.
"""

import argparse
import collections
import functools
import glob
import gzip
import json
import os
import re
import shutil
import sys
import tempfile
import time

from common import reference_data, reference_model, training_iteration

CONTAINERS = ("while", "conditional", "call")
INSTRUCTION = re.compile(r"\s*(?:ROOT )?%(\S+) = (.+?) ([a-z][\w-]*)\((.*)")


def instructions(path):
    """Each instruction of an optimised program's text → `(operation, shape, layer)`."""
    found = {}
    with open(path) as f:
        for line in f:
            match = INSTRUCTION.match(line)
            if not match:
                continue
            name, shape, operation, rest = match.groups()
            if operation == "fusion" and '"__ynn_fusion"' in rest:
                operation = "ynn_fusion"
            op_name = re.search(r'op_name="([^"]*)"', rest)
            layer = "" if op_name is None else op_name.group(1)
            layer = re.sub(r"jit\(\w+\)/|(while/body/closed_call/)+|cond/branch_\d_fun/", "", layer)
            layer = re.sub(r"\b[GD]_[AB]\b", "net", re.sub(r"(_\d+)+(?=/)", "", layer))
            found[name] = (operation, re.sub(r"\{[^}]*\}", "", shape), layer)
    return found


def jax_events(trace_dir):
    """`(program, instruction, microseconds)` of every operation on XLA's CPU threads (JAX's trace)."""
    path = sorted(glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True))[-1]
    with gzip.open(path) as f:
        trace = json.load(f)
    trace = trace["traceEvents"] if isinstance(trace, dict) else trace
    return [
        (e["args"]["hlo_module"], e["args"]["hlo_op"], e["dur"])
        for e in trace
        if e.get("ph") == "X" and "hlo_op" in e.get("args", {}) and not e["name"].startswith("end: ")
    ]


def tensorflow_events(trace_dir):
    """`(program id, instruction, microseconds)` of every XLA operation in TensorFlow's trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True))[-1], "rb") as f:
        space.ParseFromString(f.read())
    found = []
    for plane in space.planes:
        names = {k: m.name for k, m in plane.stat_metadata.items()}
        for line in plane.lines:
            for e in line.events:
                stats = {names[s.metadata_id]: s for s in e.stats}
                name = plane.event_metadata[e.metadata_id].name
                if "program_id" in stats and "hlo_op" in stats and not name.startswith("end: "):
                    program = stats["program_id"].int64_value or stats["program_id"].uint64_value
                    found.append((program, name, e.duration_ps / 1e6))
    return found


def programs(dump_dir, backend):
    """The dumped optimised programs, keyed as the trace names them: JAX by module name (the largest
    program of that name), TensorFlow by program id."""
    found, sizes = {}, {}
    for path in glob.glob(os.path.join(dump_dir, "*cpu_after_optimizations.txt")):
        number, name = re.match(
            r"module_(\d+)\.(.+)\.cpu_after_optimizations\.txt", os.path.basename(path)
        ).groups()
        key = name if backend == "jax" else int(number)
        if os.path.getsize(path) > sizes.get(key, -1):
            found[key], sizes[key] = path, os.path.getsize(path)
    return {key: instructions(path) for key, path in found.items()}


def traced_iterations(args, data, work):
    """Seconds of `args.steps` iterations traced by the backend's profiler (after `args.warmup`
    untraced ones), and the trace's XLA events."""
    if args.backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        start_trace, stop_trace = tf.profiler.experimental.start, tf.profiler.experimental.stop
        read_events, options = tensorflow_events, {"jit_compile": True}
    else:
        import jax

        if jax.default_backend() != "cpu":
            sys.exit(
                f"bench/iteration_profile.py reads XLA's CPU operations; JAX runs on {jax.default_backend()}"
            )
        start_trace = functools.partial(jax.profiler.start_trace, create_perfetto_trace=True)
        stop_trace, read_events, options = jax.profiler.stop_trace, jax_events, {}
    model = reference_model(data, args.ins_max, args.ins_per, args.ngf, args.n_blocks, **options)
    call, seconds = training_iteration(model, data, args.backend), []

    def iteration():
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)

    for _ in range(args.warmup):
        iteration()
    seconds.clear()
    start_trace(f"{work}/trace")
    for _ in range(args.steps):
        iteration()
    stop_trace()
    return seconds, read_events(f"{work}/trace")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("jax", "tensorflow"), default="jax")
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
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    dump = f"--xla_dump_to={work}/hlo --xla_dump_hlo_as_text"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {dump}"
    data = reference_data(args.ins_max, args.size)
    seconds, events = traced_iterations(args, data, work)
    known = programs(f"{work}/hlo", args.backend)
    shutil.rmtree(work)  # the trace and XLA's dumped programs: over 100 MB

    by_operation, by_kind, by_shape, count = (collections.Counter() for _ in range(4))
    for program, name, micros in events:
        operation, shape, layer = known.get(program, {}).get(name, ("?", "", ""))
        if operation in CONTAINERS:
            continue
        ms = micros / 1e3 / args.steps
        by_operation[operation] += ms
        by_kind[re.sub(r"[.\d]+$", "", name)] += ms
        count[operation] += 1 / args.steps
        if operation in ("convolution", "dot", "ynn_fusion"):
            by_shape[f"{operation} {shape} {layer}"] += ms
    total = sum(by_operation.values())
    iteration = 1e3 * sorted(seconds)[len(seconds) // 2]
    print(
        f"{args.backend}: iteration {iteration:.0f} ms; XLA's operations {total:.0f} ms "
        f"({count.total():.0f} of them; outside them {iteration - total:.0f} ms)"
    )
    print("by operation:")
    for operation, ms in by_operation.most_common(args.top):
        print(f"  {operation:40s} {ms:8.1f} ms  {100 * ms / total:5.1f} %  {count[operation]:6.0f}")
    print("by instruction name:")
    for kind, ms in by_kind.most_common(args.top):
        print(f"  {kind:40s} {ms:8.1f} ms  {100 * ms / total:5.1f} %")
    print("convolutions and matrix products by shape and layer:")
    for key, ms in by_shape.most_common(args.top):
        print(f"  {ms:8.1f} ms  {key}")
    summary = {
        "backend": args.backend,
        "iteration_ms": round(iteration, 1),
        "operations_ms": round(total, 1),
        "by_operation_ms": {k: round(v, 1) for k, v in by_operation.most_common(args.top)},
        "by_kind_ms": {k: round(v, 1) for k, v in by_kind.most_common(args.top)},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
