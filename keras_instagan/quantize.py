"""Reduced-precision exports and the quality guard they must pass.

- ONNX int8 (`quantize_onnx`): static quantization in QDQ format of the float32 `.onnx`, the
  convolutions with int8 weights per output channel and uint8 activations, their ranges calibrated on
  real images of the generator's source domain (`guard_images`). The first convolutions (from the
  image's 3 and a mask's 1 channel) and the last (to 3 and 1 channels), under 3 % of the
  multiplications, stay float32, as do the instance norms, padding and the rest.
- LiteRT int8 and float16 are made by the exporter (`keras_instagan.export.export_litert`).

Every reduced-precision artifact is run on held-out images of the same domain, disjoint from the
calibration images, beside the float32 Keras generator (`quality_figures`): the PSNR of the
translated image (peak-to-peak 2, images in [-1, 1]) of the worst image and the IoU of each
binarised translated mask (> 0) of the worst mask must reach `GUARD` (35 dB, 0.98), else the export
fails with the measured figures (`QualityGuardError`).
"""

import numpy as np

from keras_instagan.onnx_rewrite import MAX_CHANNELS, THIN_SUFFIX

GUARD = {"psnr_db": 35.0, "mask_iou": 0.98}
# Seeds of the synthetic calibration and guard images (training uses --seed 0…, its held-out samples
# 10 000…, evaluate.py 20 000).
CALIBRATION_SEED = 30_000
GUARD_SEED = 31_000


class QualityGuardError(RuntimeError):
    """A reduced-precision artifact below the quality guard; the message gives its figures."""


def guard_images(config, direction, size, counts, dataroot=None, phase=None):
    """Images of the source domain of `direction` ("AtoB": A) for the calibration and the guard:
    `(calibration, held_out)` with `counts` = (their sizes), each `(images (N, H, W, 3), masks (N, H,
    W, ins_max))` float32 in [-1, 1], masks largest first, at `size` `(H, W)`.

    From `dataroot` (the official folder layout: `<phase>A/` and `<phase>A_seg/`; the first images
    calibrate, the next are held out) when given, else from the run's `config`: its `dataroot` and
    `phase`, or, for a run on the built-in synthetic data, fresh samples of its pair drawn with
    `CALIBRATION_SEED` and `GUARD_SEED`."""
    side = direction[0]
    ins_max = int(config.get("ins_max", 4))
    dataroot = dataroot or config.get("dataroot")
    if dataroot:
        from keras_instagan.data import FolderDomain

        domain = FolderDomain(dataroot, phase or config.get("phase", "train"), side, size, ins_max)
        if len(domain) < sum(counts):
            raise ValueError(
                f"{dataroot}: {len(domain)} images in domain {side}, need {counts[0]} to calibrate and "
                f"{counts[1]} other ones for the quality guard (--calibration_count, --held_out_count)"
            )
        samples = [domain.load(i) for i in range(sum(counts))]
        images, masks = np.stack([s[0] for s in samples]), np.stack([s[1] for s in samples])
        return (images[: counts[0]], masks[: counts[0]]), (images[counts[0] :], masks[counts[0] :])
    if config.get("coco_annotations") or not config:
        raise ValueError(
            "no calibration images: give a folder in the official layout (--calibration DATAROOT) "
            "with images of the generator's source domain"
        )
    if size[0] != size[1]:
        raise ValueError(f"the synthetic data are square; got {size[0]}×{size[1]}")
    from keras_instagan.data import shapes

    pair = config.get("synthetic", "ellipses_squares")
    return tuple(
        shapes.load(count, size[0], ins_max, seed=seed, pair=pair)["AB".index(side)]
        for count, seed in zip(counts, (CALIBRATION_SEED, GUARD_SEED))
    )


def quantize_onnx(float_path, path, images, masks):
    """The float32 `.onnx` at `float_path` → `path`, int8 in QDQ format, its activation ranges
    calibrated on `images (N, H, W, 3)` and `masks (N, H, W, ins_per)` one sample at a time; the
    convolutions from or to at most `onnx_rewrite.MAX_CHANNELS` channels stay float32."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Samples(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(
                {"image": images[i : i + 1], "masks": masks[i : i + 1]} for i in range(len(images))
            )

        def get_next(self):
            return next(self.feeds, None)

    model = onnx.load(float_path)
    shapes = {tensor.name: tensor.dims for tensor in model.graph.initializer}
    thin = [
        node.name
        for node in model.graph.node
        if node.op_type == "Conv"
        and (node.name.endswith(THIN_SUFFIX) or min(shapes[node.input[1]][:2]) <= MAX_CHANNELS)
    ]
    quantize_static(
        float_path,
        path,
        Samples(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv"],
        nodes_to_exclude=thin,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return path


def psnr(reference, image):
    """PSNR in dB of `image` against `reference`, both in [-1, 1] (peak-to-peak 2); inf when equal."""
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(image, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(4.0 / mse)


def mask_ious(reference, masks):
    """IoU of each binarised mask (> 0) of `masks (N, H, W, K)` against `reference`, for every
    (sample, slot) that is non-empty in either."""
    ious = []
    for ref, got in zip(np.moveaxis(reference > 0, -1, 1), np.moveaxis(masks > 0, -1, 1)):
        for r, g in zip(ref, got):
            union = np.logical_or(r, g).sum()
            if union:
                ious.append(np.logical_and(r, g).sum() / union)
    return ious


def quality_figures(expected, got):
    """`{"psnr_db", "mask_iou"}`: the worst image's PSNR and the worst mask's IoU of `got` against
    `expected`, each a list `[(image, masks) per sample]` of float32 arrays `(1, H, W, 3)`,
    `(1, H, W, K)`."""
    ious = [iou for (_, e), (_, g) in zip(expected, got) for iou in mask_ious(e, g)]
    return {
        "psnr_db": min(psnr(e, g) for (e, _), (g, _) in zip(expected, got)),
        "mask_iou": min(ious) if ious else 1.0,
    }


def check_guard(path, figures):
    """Raise `QualityGuardError` naming `path` and its figures when they fall below `GUARD`."""
    failed = [key for key, bound in GUARD.items() if not figures[key] >= bound]
    if failed:
        measured = ", ".join(f"{k} {figures[k]:.3f} (guard ≥ {GUARD[k]})" for k in GUARD)
        raise QualityGuardError(
            f"{path}: below the quality guard against float32 Keras on held-out images: {measured}"
        )
