"""Freeze one generator step into ONNX and LiteRT, checked against Keras, in float32 and in
reduced precision behind a quality guard.

    python -m keras_instagan.export --run checkpoints/shapes_instagan --direction AtoB \\
        --format onnx litert --out exported/
    python -m keras_instagan.export --run checkpoints/shapes_instagan --quantize int8 --fp16
    (or `python export/export.py ...`, the same command)

One exported step is `SetGenerator([image, masks])`: inputs `image (B, H, W, 3)` and `masks
(B, H, W, ins_per)`, float32 in [-1, 1] (−1 background, +1 instance, empty slots all −1), B, H and W
dynamic (H, W multiples of 4); outputs the translated `fake_image` and `fake_masks`, same shapes.
The sequential translation over any number of instances runs around it, in `instagan_runner.Runner`
(ONNX Runtime) or `InstaGAN.translate` (Keras). Each artifact gets a JSON sidecar (`<file>.json`)
with its precision and checks. A float32 artifact is run against Keras on a random sample after
writing; a difference above 1e-4 is an error. `--quantize int8` adds `G_A_int8.onnx` (static
quantization calibrated on real images of the source domain, QDQ) and `G_A_int8.tflite`, `--fp16`
adds `G_A_fp16.tflite`; each must reach the quality guard of `keras_instagan.quantize` (PSNR ≥ 35 dB,
mask IoU ≥ 0.98 against float32 Keras on held-out images), else the export fails with the figures.
Both exports trace the generator in `kernels.export_forms()`, the same functions in operations
LiteRT's XNNPACK delegate runs.

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
from keras_instagan import kernels, quantize
from keras_instagan.networks import SetGenerator
from keras_instagan.run import RunDirectory

FORMATS = ("onnx", "litert")
OPSET = 17
TOLERANCE = 1e-4  # max |float32 artifact − Keras|


class ExportMismatchError(RuntimeError):
    """An exported artifact differs from Keras by more than the tolerance."""


def signature(ins_per):
    return [
        tf.TensorSpec((None, None, None, 3), tf.float32, name="image"),
        tf.TensorSpec((None, None, None, ins_per), tf.float32, name="masks"),
    ]


def export_onnx(generator, path, ins_per):
    """`generator` → `path` (.onnx, opset 17) with inputs `image`, `masks` and outputs `fake_image`,
    `fake_masks`, traced in `kernels.export_forms()`. Convolutions with at most 4 output channels (the
    decoders' last layers: 3 and 1) are rewritten by `onnx_rewrite.split_thin_convolutions`, same
    math, faster on ONNX Runtime's CPU."""
    import onnx
    import tf2onnx

    from keras_instagan.onnx_rewrite import split_thin_convolutions

    @tf.function(input_signature=signature(ins_per))
    def step(image, masks):
        fake_image, fake_masks = generator([image, masks], training=False)
        return {"fake_image": fake_image, "fake_masks": fake_masks}

    with kernels.export_forms():
        model, _ = tf2onnx.convert.from_function(step, input_signature=signature(ins_per), opset=OPSET)
    split_thin_convolutions(model)
    onnx.save(model, path)
    return path


def export_litert(generator, path, ins_per, precision="fp32"):
    """`generator` → `path` (.tflite) through Keras' LiteRT exporter (SavedModel → converter), in the
    export forms of `kernels.export_forms()` (what XNNPACK runs). `precision`: "fp32"; "fp16" (float16
    weights, half the size); "int8" (int8 weights, activations quantized per call by XNNPACK: LiteRT's
    dynamic-range quantization; its full-integer form, calibrated, was less accurate and no faster,
    docs/benchmarks.md)."""
    options = {}
    if precision != "fp32":
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        options["target_spec"] = {"supported_types": [tf.float16]}
    with kernels.export_forms():
        generator.export(
            path, format="litert", input_signature=[signature(ins_per)], verbose=False, **options
        )
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


def artifact_step(path, kind, threads=None):
    """One exported step as a function `(image, masks) → (fake_image, fake_masks)` (NumPy float32):
    ONNX Runtime's CPU provider for "onnx", the LiteRT interpreter for "litert"; `threads` per call
    (None: the runtime's default)."""
    if kind == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]

        def onnx_step(image, masks):
            outputs = dict(zip(names, session.run(None, {"image": image, "masks": masks})))
            return outputs["fake_image"], outputs["fake_masks"]

        return onnx_step
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(path, num_threads=threads).get_signature_runner()

    def litert_step(image, masks):
        outputs = runner(image=image, masks=masks)
        by_channels = sorted(outputs.values(), key=lambda x: x.shape[-1] != 3)  # image (3 ch) first
        return by_channels[0], by_channels[1]

    return litert_step


def keras_step(generator):
    """The float32 Keras generator as `artifact_step`'s function."""

    def step(image, masks):
        return tuple(keras.ops.convert_to_numpy(x) for x in generator([image, masks], training=False))

    return step


def max_difference(generator, path, kind, image, masks):
    """Max |artifact − Keras| over the image and the masks."""
    expected = keras_step(generator)(image, masks)
    got = artifact_step(path, kind)(image, masks)
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


class GuardData:
    """Images of the generator's source domain for a reduced-precision export: `calibration` (the
    int8 ranges come from them) and `held_out` (the quality guard runs on them), each `(images (N, H,
    W, 3), masks (N, H, W, ins_per))` float32 in [-1, 1], masks −1 background, +1 instance."""

    def __init__(self, calibration, held_out):
        self.calibration, self.held_out = calibration, held_out

    @classmethod
    def load(cls, config, direction, ins_per, size, calibration=None, phase=None, count=32, held_out=16):
        """`count` and `held_out` disjoint images from `quantize.guard_images` (the run's data, or the
        folder `calibration`), the masks their largest `ins_per` instances."""
        return cls(
            *(
                (images.astype(np.float32), np.ascontiguousarray(masks[..., :ins_per], np.float32))
                for images, masks in quantize.guard_images(
                    config, direction, size, (count, held_out), calibration, phase
                )
            )
        )

    def samples(self):
        """The held-out images one at a time: `[(image (1, H, W, 3), masks (1, H, W, ins_per))]`."""
        images, masks = self.held_out
        return [(images[i : i + 1], masks[i : i + 1]) for i in range(len(images))]

    def expected(self, generator):
        """The float32 Keras generator's outputs on `samples()`, what every artifact is held to."""
        step = keras_step(generator)
        return [step(*sample) for sample in self.samples()]

    def figures(self, path, kind, expected):
        """`quantize.quality_figures` of the artifact at `path` against `expected` (from `expected`)."""
        step = artifact_step(path, kind)
        return quantize.quality_figures(expected, [step(*sample) for sample in self.samples()])


def guard_size(config):
    """The size of the calibration and held-out images: the run's training crop, at least 64×64
    (below it one pixel is over 2 % of a small mask's IoU), 256×256 without a config."""
    if "fineSizeH" not in config:
        return (256, 256)
    return tuple(max(64, int(config[key])) // 4 * 4 for key in ("fineSizeH", "fineSizeW"))


def export_generator(
    source,
    direction="AtoB",
    formats=FORMATS,
    out_dir=".",
    ins_per=None,
    fp16=False,
    quantize_int8=False,
    check_size=(64, 64),
    calibration=None,
    calibration_phase=None,
    calibration_count=32,
    held_out_count=16,
    enforce_guard=True,
    guard=None,
):
    """Export one generator of a run (or a `.keras` generator) and check every artifact.

    Each format is written in float32 and checked against Keras (max abs difference within
    `TOLERANCE`, else `ExportMismatchError`). `fp16` adds a float16 LiteRT file, `quantize_int8` an
    int8 file of each format (ONNX: static, calibrated on `calibration_count` images of the source
    domain; LiteRT: dynamic range); each reduced-precision file must pass `quantize.GUARD` on
    `held_out_count` other images (else `quantize.QualityGuardError`). The images come from the run's
    data (`quantize.guard_images`) or from `calibration`, a folder in the official layout
    (`calibration_phase`, default the run's phase), or from `guard`, a `GuardData`.
    `enforce_guard=False` records the guard's figures in the sidecars without raising (to compare
    precisions).

    Returns `{path: sidecar dict}` of the artifacts written.
    """
    generator, config = load_generator(source, direction)
    if not isinstance(generator, SetGenerator):
        raise ValueError(f"{source}: holds a {type(generator).__name__}, not a SetGenerator")
    ins_per = int(ins_per or config.get("ins_per", 2))
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown formats {sorted(unknown)}; known: {FORMATS}")
    wanted = {
        kind: ["fp32"] + (["fp16"] if fp16 and kind == "litert" else []) + (["int8"] if quantize_int8 else [])
        for kind in formats
    }
    if guard is None and any(len(p) > 1 for p in wanted.values()):
        guard = GuardData.load(
            config,
            direction,
            ins_per,
            guard_size(config),
            calibration,
            calibration_phase,
            calibration_count,
            held_out_count,
        )
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(
        out_dir, f"G_{direction}" if source.endswith(".keras") else {"AtoB": "G_A", "BtoA": "G_B"}[direction]
    )
    image, masks = sample_inputs(ins_per, *check_size)
    expected = guard.expected(generator) if guard is not None else None
    report = {}
    for kind in formats:
        suffix = ".onnx" if kind == "onnx" else ".tflite"
        for precision in wanted[kind]:
            path = stem + ("" if precision == "fp32" else f"_{precision}") + suffix
            if kind == "onnx" and precision == "int8":
                quantize.quantize_onnx(stem + suffix, path, *guard.calibration)
            elif kind == "onnx":
                export_onnx(generator, path, ins_per)
            else:
                export_litert(generator, path, ins_per, precision)
            metadata = sidecar(generator, source, kind, precision, direction, ins_per)
            difference = max_difference(generator, path, kind, image, masks)
            metadata["check"] = {"size": list(check_size), "max_abs_diff_to_keras": difference}
            if precision != "fp32":
                figures = guard.figures(path, kind, expected)
                metadata["quality_guard"] = {
                    **figures,
                    "bounds": quantize.GUARD,
                    "held_out_images": len(guard.held_out[0]),
                    "size": list(guard.held_out[0].shape[1:3]),
                    "calibration_images": len(guard.calibration[0]) if kind == "onnx" else 0,
                }
            with open(path + ".json", "w") as f:
                json.dump(metadata, f, indent=2)
            report[path] = metadata
            if precision == "fp32" and difference > TOLERANCE:
                raise ExportMismatchError(
                    f"{path}: max |{kind} − Keras| = {difference:.2e} > {TOLERANCE:.0e} (fp32)"
                )
            if precision != "fp32" and enforce_guard:
                quantize.check_guard(path, figures)
    return report


def sidecar(generator, source, kind, precision, direction, ins_per):
    """The JSON sidecar (`<file>.json`) of an artifact: what it is, its inputs and outputs, versions."""
    return {
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
        "versions": _versions(kind),
    }


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
    p.add_argument("--fp16", action="store_true", help="also LiteRT with float16 weights (G_A_fp16.tflite)")
    p.add_argument(
        "--quantize",
        choices=("int8",),
        help="also int8 files of each format (G_A_int8.onnx: static, calibrated; G_A_int8.tflite: "
        "dynamic range), each behind the quality guard",
    )
    p.add_argument(
        "--calibration",
        help="folder in the official layout (<phase>A/, <phase>A_seg/, ...) with images of the source "
        "domain for --quantize/--fp16 (default: the run's own data)",
    )
    p.add_argument("--calibration_phase", help="folder prefix under --calibration (default: the run's phase)")
    p.add_argument("--calibration_count", type=int, default=32, help="images the int8 ranges come from")
    p.add_argument("--held_out_count", type=int, default=16, help="other images the quality guard runs on")
    args = p.parse_args(argv)
    for name in ("calibration_count", "held_out_count"):
        if getattr(args, name) < 1:
            p.error(f"--{name} {getattr(args, name)}: expected at least 1")
    run_dir = os.path.dirname(os.path.abspath(args.run)) if args.run.endswith(".keras") else args.run
    out = args.out or RunDirectory(run_dir).exported
    try:
        report = export_generator(
            args.run,
            args.direction,
            args.format,
            out,
            args.ins_per,
            fp16=args.fp16,
            quantize_int8=args.quantize == "int8",
            calibration=args.calibration,
            calibration_phase=args.calibration_phase,
            calibration_count=args.calibration_count,
            held_out_count=args.held_out_count,
        )
    except (ValueError, FileNotFoundError, ExportMismatchError, quantize.QualityGuardError) as error:
        sys.exit(f"export: {error}")
    for path, metadata in report.items():
        line = f"export: {path}  max |artifact − Keras| = {metadata['check']['max_abs_diff_to_keras']:.2e}"
        if "quality_guard" in metadata:
            guard = metadata["quality_guard"]
            line += f", PSNR {guard['psnr_db']:.1f} dB, worst mask IoU {guard['mask_iou']:.3f}"
        print(line)


if __name__ == "__main__":
    main()
