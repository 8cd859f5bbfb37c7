"""Latency of one generator step on each runtime and precision, as a ratio to the official PyTorch
forward timed in the same run; the quality figures of each reduced precision; the runner's throughput.

    python bench/inference.py                  # 256×256, ngf 64, 9 blocks, image + 2 masks, 2 threads
    python bench/inference.py --run checkpoints/shapes_instagan   # + quality figures of a trained run
    python bench/inference.py --size 128 --repeats 3 --profile    # + ONNX Runtime's time per operator

One step = `SetGenerator([image (1, 256, 256, 3), masks (1, 256, 256, 2)])`, both masks non-empty,
random weights of the official size (the cost does not depend on the values). Median of `--repeats`
calls after a warm-up call, on `--threads` threads. Timed in one process, one after the other:

- the official forward (`keras_instagan.torch_reference.ResnetSetGenerator`, PyTorch, no gradients);
- Keras eager and `tf.function`;
- ONNX Runtime float32 and int8 (static, calibrated on the sheep of `data/shp2gir_coco_sample`);
- LiteRT float32, float16 and int8 (dynamic range), with XNNPACK, and float32 without the export
  forms (`litert_plain_fp32`: the upsampling and padding as Keras runs them);
- `instagan_runner.Runner.translate` (float32 and int8 ONNX) on batches of `--batches` images: images
  per second.

Quality figures (`keras_instagan.quantize`: worst PSNR of the image, worst IoU of a mask against
float32 Keras on held-out images; guard 35 dB, 0.98): for the random official-size network on the
giraffe images of the sample folder (random weights are a hard case: nothing in them was trained to
be smooth), and, with `--run`, for that run's trained generator on its own data, at its size (the
exporter's guard). `fastest_passing` is the fastest variant whose figures pass: the trained run's
where given. The last line printed is JSON.
"""

import argparse
import collections
import json
import os
import tempfile

from common import median_seconds

SAMPLE_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "shp2gir_coco_sample")


def onnxruntime_profile(path, feed, threads, runs=3):
    """Seconds per operator type in the last of `runs` calls, from ONNX Runtime's profiler."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(os.path.dirname(path), "profile")
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
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


def official_forward_seconds(args, image, masks):
    """The official generator's forward at this configuration, or None where torch is missing."""
    try:
        import torch
    except ImportError:
        return None
    import numpy as np

    from keras_instagan.torch_reference import ResnetSetGenerator

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    network = ResnetSetGenerator(args.ngf, args.n_blocks).eval()
    inputs = torch.from_numpy(np.concatenate([image, masks], -1)).permute(0, 3, 1, 2)
    with torch.no_grad():
        return median_seconds(lambda: network(inputs), args.repeats)


def export_all(generator, folder, calibration):
    """Every artifact of the benchmark: `{name: (path, kind)}`; `litert_plain_fp32` is LiteRT float32
    exported without the export forms (as before them: MIRROR_PAD and TRANSPOSE_CONV)."""
    from keras_instagan import quantize
    from keras_instagan.export import export_litert, export_onnx, signature

    onnx_path = export_onnx(generator, os.path.join(folder, "g.onnx"), 2)
    artifacts = {"onnxruntime_fp32": (onnx_path, "onnx")}
    int8 = quantize.quantize_onnx(onnx_path, os.path.join(folder, "g_int8.onnx"), *calibration)
    artifacts["onnxruntime_int8"] = (int8, "onnx")
    for precision in ("fp32", "fp16", "int8"):
        path = export_litert(generator, os.path.join(folder, f"g_{precision}.tflite"), 2, precision)
        artifacts[f"litert_{precision}"] = (path, "litert")
    plain = os.path.join(folder, "g_plain.tflite")
    generator.export(plain, format="litert", input_signature=[signature(2)], verbose=False)
    artifacts["litert_plain_fp32"] = (plain, "litert")
    return artifacts


def sample_images(side, size, count=None):
    """The sample folder's images of one side at `size`, with their two largest masks."""
    import numpy as np

    from keras_instagan.data import FolderDomain

    images, masks = FolderDomain(SAMPLE_DATA, "sample", side, (size, size), 2).load_all(count)
    return images.astype(np.float32), np.ascontiguousarray(masks, np.float32)


def random_network_figures(generator, artifacts, size):
    """Quality figures of the reduced-precision artifacts of the random network on the giraffes."""
    from keras_instagan.export import GuardData

    guard = GuardData(None, sample_images("B", size))
    expected = guard.expected(generator)
    return {
        name: guard.figures(path, kind, expected)
        for name, (path, kind) in artifacts.items()
        if not name.endswith("fp32")
    }


def trained_run_figures(run, folder):
    """Quality figures of the reduced-precision exports of a trained run's G_A (the exporter's guard,
    not enforced here)."""
    from keras_instagan.export import export_generator

    report = export_generator(
        run, "AtoB", ("onnx", "litert"), folder, fp16=True, quantize_int8=True, enforce_guard=False
    )
    names = {".onnx": "onnxruntime", ".tflite": "litert"}
    figures = {}
    for path, metadata in report.items():
        if "quality_guard" in metadata:
            name = f"{names[os.path.splitext(path)[1]]}_{metadata['precision']}"
            figures[name] = {k: metadata["quality_guard"][k] for k in ("psnr_db", "mask_iou")}
    return figures


def runner_throughput(artifacts, threads, size, batches):
    """Images per second of `Runner.translate` on batches of the sample sheep (repeated), each image
    with its two masks, for the float32 and int8 ONNX files."""
    import numpy as np

    from instagan_runner import Runner

    images, masks = sample_images("A", size)
    pixels = np.round((images + 1) * 127.5).astype(np.uint8)
    instance_masks = [[masks[i, ..., k] > 0 for k in range(2)] for i in range(len(images))]
    rates = {}
    for name in ("onnxruntime_fp32", "onnxruntime_int8"):
        runner = Runner(artifacts[name][0], providers=["CPUExecutionProvider"], ins_per=2, threads=threads)
        for batch in batches:
            chosen = [i % len(images) for i in range(batch)]
            batch_masks = [instance_masks[i] for i in chosen]
            seconds = median_seconds(
                lambda runner=runner, chosen=chosen, batch_masks=batch_masks: runner.translate(
                    pixels[chosen], batch_masks
                ),
                1,
            )
            rates[f"{name}_batch_{batch}"] = round(batch / seconds, 3)
    return rates


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--n_blocks", type=int, default=9)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", type=int, nargs="*", default=[1, 4, 8], help="runner batch sizes")
    p.add_argument("--run", help="a trained run: quality figures of its G_A in each reduced precision")
    p.add_argument("--profile", action="store_true", help="ONNX Runtime's time per operator type")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    from keras_instagan import SetGenerator
    from keras_instagan.export import artifact_step

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(0)
    generator = SetGenerator(args.ngf, args.n_blocks)
    image, masks = (x[:1] for x in sample_images("A", args.size))
    seconds = {"official_pytorch": official_forward_seconds(args, image, masks)}
    traced = tf.function(lambda i, m: generator([i, m], training=False))
    seconds["keras_eager"] = median_seconds(lambda: generator([image, masks], training=False), args.repeats)
    seconds["tf_function"] = median_seconds(lambda: traced(image, masks), args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        artifacts = export_all(generator, folder, sample_images("A", args.size, 4))
        for name, (path, kind) in artifacts.items():
            step = artifact_step(path, kind, args.threads)
            seconds[name] = median_seconds(lambda step=step: step(image, masks), args.repeats)
            print(f"{name:18s} {seconds[name]:.3f} s", flush=True)
        random_figures = random_network_figures(generator, artifacts, args.size)
        throughput = runner_throughput(artifacts, args.threads, args.size, args.batches)
        profile = None
        if args.profile:
            profile = onnxruntime_profile(
                artifacts["onnxruntime_fp32"][0], {"image": image, "masks": masks}, args.threads
            )
        run_figures = trained_run_figures(args.run, os.path.join(folder, "run")) if args.run else None
    official = seconds["official_pytorch"]
    figures = run_figures or random_figures
    passing = [
        name for name in seconds if name.endswith("fp32") or (name in figures and passes(figures[name]))
    ]
    fastest = min(passing, key=seconds.get)
    summary = {
        "seconds": {k: None if v is None else round(v, 3) for k, v in seconds.items()},
        "ratio_to_official": None
        if official is None
        else {k: round(v / official, 3) for k, v in seconds.items() if k != "official_pytorch"},
        "litert_fp32_vs_onnxruntime_fp32": round(seconds["litert_fp32"] / seconds["onnxruntime_fp32"], 3),
        "quality_random_network": round_figures(random_figures),
        "quality_trained_run": round_figures(run_figures) if run_figures else None,
        "fastest_passing": fastest,
        "fastest_passing_ratio_to_official": None
        if official is None
        else round(seconds[fastest] / official, 3),
        "runner_images_per_second": throughput,
        "config": {
            "size": args.size,
            "ngf": args.ngf,
            "n_blocks": args.n_blocks,
            "masks": 2,
            "threads": args.threads,
            "repeats": args.repeats,
            "run": args.run,
        },
    }
    if profile:
        summary["onnxruntime_profile_seconds"] = {op: round(t, 4) for op, t in profile.items()}
    print(json.dumps(summary))


def passes(figures):
    from keras_instagan.quantize import GUARD

    return all(figures[key] >= bound for key, bound in GUARD.items())


def round_figures(figures):
    return {name: {k: round(float(v), 3) for k, v in values.items()} for name, values in figures.items()}


if __name__ == "__main__":
    main()
