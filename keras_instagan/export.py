"""Freeze one generator step into ONNX and LiteRT, checked against Keras.

    python -m keras_instagan.export --run checkpoints/shapes_instagan --direction AtoB \\
        --format onnx litert --out exported/
    (or `python export/export.py ...`, the same command)

One exported step is `SetGenerator([image, masks])`: inputs `image (B, H, W, 3)` and `masks
(B, H, W, ins_per)`, float32 in [-1, 1] (−1 background, +1 instance, empty slots all −1), B, H and W
dynamic (H, W multiples of 4); outputs the translated `fake_image` and `fake_masks`, same shapes.
The sequential translation over any number of instances runs around it, in `instagan_runner.Runner`
(ONNX Runtime) or `InstaGAN.translate` (Keras). Each artifact gets a JSON sidecar (`<file>.json`)
and is run against Keras on a random sample after writing; a difference above the tolerance
(1e-4 for fp32, 1e-2 for fp16 LiteRT) is an error.

Needs `pip install "keras-instagan[export]"` (tf2onnx, onnx, ai-edge-litert) and ONNX Runtime
(`instagan-runner[cpu]`).
"""

import argparse
import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

import keras_instagan
from keras_instagan.networks import SetGenerator
from keras_instagan.run import RunDirectory

FORMATS = ("onnx", "litert")
OPSET = 17
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}


class ExportMismatchError(RuntimeError):
    """An exported artifact differs from Keras by more than the tolerance."""


def signature(ins_per):
    return [
        tf.TensorSpec((None, None, None, 3), tf.float32, name="image"),
        tf.TensorSpec((None, None, None, ins_per), tf.float32, name="masks"),
    ]


def export_onnx(generator, path, ins_per):
    """`generator` → `path` (.onnx, opset 17) with inputs `image`, `masks` and outputs `fake_image`,
    `fake_masks`. Convolutions with at most 4 output channels (the decoders' last layers: 3 and 1)
    are rewritten by `onnx_rewrite.split_thin_convolutions`, same math, faster on ONNX Runtime's CPU."""
    import onnx
    import tf2onnx

    from keras_instagan.onnx_rewrite import split_thin_convolutions

    @tf.function(input_signature=signature(ins_per))
    def step(image, masks):
        fake_image, fake_masks = generator([image, masks], training=False)
        return {"fake_image": fake_image, "fake_masks": fake_masks}

    model, _ = tf2onnx.convert.from_function(step, input_signature=signature(ins_per), opset=OPSET)
    split_thin_convolutions(model)
    onnx.save(model, path)
    return path


def export_litert(generator, path, ins_per, fp16=False):
    """`generator` → `path` (.tflite) through Keras' LiteRT exporter (SavedModel → converter);
    fp16 stores the weights as float16 (half the size)."""
    options = {}
    if fp16:
        options = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "target_spec": {"supported_types": [tf.float16]},
        }
    generator.export(path, format="litert", input_signature=[signature(ins_per)], verbose=False, **options)
    return path


def sample_inputs(ins_per, height=64, width=64, batch=1, seed=0):
    """A random image and `ins_per` rectangle masks, the last slot empty when ins_per > 1."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(-1, 1, (batch, height, width, 3)).astype(np.float32)
    masks = -np.ones((batch, height, width, ins_per), np.float32)
    for k in range(max(1, ins_per - 1)):
        top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
        masks[:, top : top + height // 3, left : left + width // 3, k] = 1.0
    return image, masks


def run_onnx(path, image, masks):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    outputs = dict(
        zip([o.name for o in session.get_outputs()], session.run(None, {"image": image, "masks": masks}))
    )
    return outputs["fake_image"], outputs["fake_masks"]


def run_litert(path, image, masks):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(path).get_signature_runner()
    outputs = runner(image=image, masks=masks)
    by_channels = sorted(outputs.values(), key=lambda x: x.shape[-1] != 3)  # image (3 ch) first
    return by_channels[0], by_channels[1]


def max_difference(generator, path, kind, image, masks):
    """Max |artifact − Keras| over the image and the masks."""
    expected = [keras.ops.convert_to_numpy(x) for x in generator([image, masks], training=False)]
    got = (run_onnx if kind == "onnx" else run_litert)(path, image, masks)
    return float(max(np.abs(g - e).max() for g, e in zip(got, expected)))


def load_generator(source, direction):
    """A `SetGenerator` and the run's config from a run directory (`G_A.keras` for "AtoB", `G_B`
    for "BtoA") or from a `.keras` file."""
    if source.endswith(".keras"):
        if not os.path.exists(source):
            raise FileNotFoundError(f"{source}: file not found")
        return keras.saving.load_model(source, compile=False), {}
    run = RunDirectory(source)
    config = run.read_config()
    return run.load_generator(direction), config


def export_generator(
    source, direction="AtoB", formats=FORMATS, out_dir=".", ins_per=None, fp16=False, check_size=(64, 64)
):
    """Export one generator of a run (or a `.keras` generator) and check every artifact.

    Returns `{path: max abs difference to Keras}`; raises `ExportMismatchError` above the tolerance.
    """
    generator, config = load_generator(source, direction)
    if not isinstance(generator, SetGenerator):
        raise ValueError(f"{source}: holds a {type(generator).__name__}, not a SetGenerator")
    ins_per = int(ins_per or config.get("ins_per", 2))
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown formats {sorted(unknown)}; known: {FORMATS}")
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(
        out_dir, f"G_{direction}" if source.endswith(".keras") else {"AtoB": "G_A", "BtoA": "G_B"}[direction]
    )
    image, masks = sample_inputs(ins_per, *check_size)
    report = {}
    for kind in formats:
        precision = "fp16" if fp16 and kind == "litert" else "fp32"
        path = stem + (".onnx" if kind == "onnx" else ("_fp16" if precision == "fp16" else "") + ".tflite")
        (export_onnx if kind == "onnx" else export_litert)(
            generator, path, ins_per, **({"fp16": fp16} if kind == "litert" else {})
        )
        difference = max_difference(generator, path, kind, image, masks)
        metadata = {
            "format": kind,
            "precision": precision,
            "direction": direction,
            "ins_per": ins_per,
            "ngf": generator.ngf,
            "n_blocks": generator.n_blocks,
            "source": os.path.abspath(source),
            "inputs": {
                "image": "float32 (B, H, W, 3) in [-1, 1]",
                "masks": f"float32 (B, H, W, {ins_per}) in [-1, 1], -1 background, +1 instance, "
                "empty slots all -1",
            },
            "outputs": {
                "fake_image": "float32 (B, H, W, 3) in [-1, 1]",
                "fake_masks": f"float32 (B, H, W, {ins_per}) in [-1, 1]",
            },
            "size_rule": "H and W multiples of 4; B, H, W dynamic",
            "check": {
                "size": list(check_size),
                "max_abs_diff_to_keras": difference,
                "tolerance": TOLERANCE[precision],
            },
            "versions": _versions(kind),
        }
        with open(os.path.splitext(path)[0] + ".json", "w") as f:
            json.dump(metadata, f, indent=2)
        report[path] = difference
        if difference > TOLERANCE[precision]:
            raise ExportMismatchError(
                f"{path}: max |{kind} − Keras| = {difference:.2e} > {TOLERANCE[precision]:.0e} ({precision})"
            )
    return report


def _versions(kind):
    versions = {
        "keras_instagan": keras_instagan.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
    }
    if kind == "onnx":
        import onnx
        import tf2onnx

        versions.update(tf2onnx=tf2onnx.__version__, onnx=onnx.__version__, opset=OPSET)
    else:
        import ai_edge_litert

        versions["ai_edge_litert"] = getattr(ai_edge_litert, "__version__", "unknown")
    return versions


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run directory (train.py, convert) or a G .keras file")
    p.add_argument("--direction", default="AtoB", choices=("AtoB", "BtoA"))
    p.add_argument("--format", nargs="+", default=list(FORMATS), choices=FORMATS)
    p.add_argument("--out", default=None, help="output folder (default: <run>/exported)")
    p.add_argument("--ins_per", type=int, help="masks per step (default: the run's ins_per)")
    p.add_argument("--fp16", action="store_true", help="LiteRT with float16 weights")
    args = p.parse_args(argv)
    run_dir = os.path.dirname(os.path.abspath(args.run)) if args.run.endswith(".keras") else args.run
    out = args.out or RunDirectory(run_dir).exported
    try:
        report = export_generator(args.run, args.direction, args.format, out, args.ins_per, args.fp16)
    except (ValueError, FileNotFoundError, ExportMismatchError) as error:
        sys.exit(f"export: {error}")
    for path, difference in report.items():
        print(f"export: {path}  max |artifact − Keras| = {difference:.2e}")


if __name__ == "__main__":
    main()
