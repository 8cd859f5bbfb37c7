"""Latency of one generator step on each runtime: Keras eager, tf.function, ONNX Runtime, LiteRT.

    python bench/inference.py                  # 256×256, ngf 64, 9 blocks, image + 2 masks
    python bench/inference.py --size 128 --repeats 5
    python bench/inference.py --repeats 5 --profile   # + ONNX Runtime's time per operator type

One step = `SetGenerator([image (1, 256, 256, 3), masks (1, 256, 256, 2)])`, both masks non-empty,
random official-size weights (the cost does not depend on the values). Median of `--repeats` calls
after one warm-up call, on `--threads` threads. The official PyTorch forward takes 3.20 s on these
2 cores (docs/official.md §9); targets: the fastest runtime ≤ 1.9 s, and ONNX Runtime (the one
production uses) no slower than tf.function. ONNX Runtime uses CUDA when onnxruntime-gpu and a GPU
are there (the `provider` field says which ran).

It also measures this CPU's float32 matrix-product rate (ONNX Runtime's MatMul, 2048³, best of 5)
and, for the default configuration (389 GFLOP, docs/official.md §2.4), the time that rate puts
under one step: no runtime that does every multiplication of the step can be faster on this CPU.
The last line printed is JSON.
"""

import argparse
import collections
import json
import os
import statistics
import tempfile
import time

OFFICIAL_SECONDS = 3.20
OFFICIAL_GFLOP = 389  # one step at 256×256, ngf 64, 9 blocks, image + 2 masks (FLOP = 2·MAC)


def median_seconds(call, repeats):
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def session_options(threads, profile=False):
    """ONNX Runtime options: `threads` threads per operator, optionally with its profiler on."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = profile
    return options


def matmul_gflops(threads, n=2048):
    """Best-of-5 float32 (n×n)·(n×n) rate of ONNX Runtime's CPU MatMul on `threads` threads."""
    import numpy as np
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    node = helper.make_node("MatMul", ["a", "b"], ["c"])
    a, b, c = (helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "abc")
    graph = helper.make_graph([node], "matmul", [a, b], [c])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # the newest IR version onnxruntime 1.31 reads
    onnx.checker.check_model(model)
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), session_options(threads), providers=["CPUExecutionProvider"]
    )
    feed = {x: np.random.default_rng(0).uniform(size=(n, n)).astype(np.float32) for x in "ab"}
    session.run(None, feed)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        session.run(None, feed)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def onnxruntime_profile(path, feed, threads, providers, runs=3):
    """Seconds per operator type in the last of `runs` calls, from ONNX Runtime's profiler."""
    import onnxruntime

    options = session_options(threads, profile=True)
    options.profile_file_prefix = os.path.join(os.path.dirname(path), "profile")
    session = onnxruntime.InferenceSession(path, options, providers=providers)
    for _ in range(runs):
        session.run(None, feed)
    with open(session.end_profiling()) as f:
        events = json.load(f)
    last = max(e["ts"] for e in events if e.get("name") == "model_run")
    seconds = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= last:
            seconds[e["args"]["op_name"]] += e["dur"] / 1e6
    return dict(seconds.most_common())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--n_blocks", type=int, default=9)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--profile", action="store_true", help="ONNX Runtime's time per operator type")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import onnxruntime
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from keras_instagan import SetGenerator
    from keras_instagan.export import export_litert, export_onnx, sample_inputs

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(0)
    generator = SetGenerator(args.ngf, args.n_blocks)
    image, masks = sample_inputs(3, args.size, args.size)
    masks = np.ascontiguousarray(masks[..., :2])  # two non-empty masks
    traced = tf.function(lambda i, m: generator([i, m], training=False))
    results = {
        "keras_eager": median_seconds(lambda: generator([image, masks], training=False), args.repeats),
        "tf_function": median_seconds(lambda: traced(image, masks), args.repeats),
    }
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(generator, os.path.join(tmp, "g.onnx"), 2)
        litert_path = export_litert(generator, os.path.join(tmp, "g.tflite"), 2)
        options = session_options(args.threads)
        providers = [
            p
            for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
            if p in onnxruntime.get_available_providers()
        ]
        session = onnxruntime.InferenceSession(onnx_path, options, providers=providers)
        feed = {"image": image, "masks": masks}
        results["onnxruntime"] = median_seconds(lambda: session.run(None, feed), args.repeats)
        profile = onnxruntime_profile(onnx_path, feed, args.threads, providers) if args.profile else None
        interpreter = Interpreter(litert_path, num_threads=args.threads)
        runner = interpreter.get_signature_runner()
        results["litert"] = median_seconds(lambda: runner(image=image, masks=masks), args.repeats)
    fastest = min(results, key=results.get)
    gflops = matmul_gflops(args.threads)
    default = (args.size, args.ngf, args.n_blocks) == (256, 64, 9)
    summary = {
        "seconds": {k: round(v, 3) for k, v in results.items()},
        "official_pytorch_seconds": OFFICIAL_SECONDS,
        "fastest": fastest,
        "fastest_ratio_to_official": round(results[fastest] / OFFICIAL_SECONDS, 3),
        "fastest_target_met": results[fastest] <= 1.9,
        "onnxruntime_vs_tf_function": round(results["onnxruntime"] / results["tf_function"], 3),
        "onnxruntime_target_met": results["onnxruntime"] <= results["tf_function"],
        "provider": session.get_providers()[0],
        "cpu_matmul_gflops": round(gflops, 1),
        "step_gflop": OFFICIAL_GFLOP if default else None,
        "seconds_at_matmul_rate": round(OFFICIAL_GFLOP / gflops, 3) if default else None,
        "config": {
            "size": args.size,
            "ngf": args.ngf,
            "n_blocks": args.n_blocks,
            "masks": 2,
            "threads": args.threads,
            "repeats": args.repeats,
        },
    }
    if profile:
        summary["onnxruntime_profile_seconds"] = {op: round(t, 4) for op, t in profile.items()}
        total = sum(profile.values())
        for op, seconds in list(profile.items())[:8]:
            print(f"  onnxruntime {op:16s} {seconds:.3f} s  {100 * seconds / total:4.1f} %")
    for name, seconds in results.items():
        print(f"{name:12s} {seconds:.3f} s")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
