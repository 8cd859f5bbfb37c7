"""Serve an exported InstaGAN generator with ONNX Runtime: NumPy + onnxruntime only.

    from instagan_runner import Runner

    runner = Runner("G_A.onnx")                     # CUDA when available, else CPU
    image, masks = runner.translate(rgb_uint8, [mask_0, mask_1, ...])
    print(runner.provider)                           # the provider that actually runs

    python -m instagan_runner --model G_A.onnx --image in.png --masks m0.png m1.png --out out.png
    python -m instagan_runner --model G_A.onnx --dataroot data --phase test --domain A --out results/

The `.onnx` file is one generator step (`keras_instagan.export`): image `(B, H, W, 3)` in [-1, 1]
and a chunk of `ins_per` masks `(B, H, W, ins_per)` (−1 background, +1 instance) → the translated
image and masks. Its JSON sidecar (`<model file>.json`, e.g. `G_A_int8.onnx.json`) gives `ins_per`
and the precision ("fp32", or "int8" for a quantized export, served the same way). The runner does what
`InstaGAN.translate` does: instances sorted by area, chunks of `ins_per` translated one after another
on the image the previous chunk produced, empty chunks skipped, masks returned in the input order.
Importing this module imports neither TensorFlow nor Keras (tested).
"""

import json
import os

import numpy as np

from instagan_runner.sequential import sequential_translate

# The smallest H and W a generator takes (its residual blocks reflect-pad the H/4 × W/4 features).
MIN_SIZE = 8
# How far outside [-1, 1] translate_float's inputs may stray (resampling overshoot).
RANGE_SLACK = 0.01


class RunnerInputError(ValueError):
    """Input the runner cannot use: wrong dtype, shape, size or a mask/image mismatch."""


def _onnxruntime():
    """The `onnxruntime` module, or an ImportError that says how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(
            "ONNX Runtime is not installed: pip install 'instagan-runner[cpu]' (onnxruntime) or "
            "'instagan-runner[gpu]' (onnxruntime-gpu), one of the two"
        ) from None
    return onnxruntime


def _providers(preferred):
    available = _onnxruntime().get_available_providers()
    if preferred is not None:
        missing = [p for p in preferred if p not in available]
        if missing:
            raise RunnerInputError(f"providers {missing} are not available; available: {available}")
        return list(preferred)
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def _read_sidecar(path):
    """The exporter's JSON sidecar as a dict (with its `path`), `{}` when there is none; a
    `RunnerInputError` naming the file when it is not a JSON object with a positive integer `ins_per`."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            metadata = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunnerInputError(f"{path}: the model's sidecar is not valid JSON ({error})") from None
    if not isinstance(metadata, dict):
        raise RunnerInputError(
            f"{path}: the model's sidecar must be a JSON object, got {type(metadata).__name__}"
        )
    value = metadata.get("ins_per")
    if value is not None and not (isinstance(value, int) and value > 0):
        raise RunnerInputError(f"{path}: ins_per must be a positive integer, got {value!r}")
    return {**metadata, "path": path}


def resize_bilinear(array, height, width):
    """`(H, W, C)` float array → `(height, width, C)`, bilinear with half-pixel centres."""
    in_h, in_w = array.shape[:2]
    ys = np.clip((np.arange(height) + 0.5) * in_h / height - 0.5, 0, in_h - 1)
    xs = np.clip((np.arange(width) + 0.5) * in_w / width - 0.5, 0, in_w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, in_h - 1), np.minimum(x0 + 1, in_w - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = array[y0][:, x0] * (1 - wx) + array[y0][:, x1] * wx
    bottom = array[y1][:, x0] * (1 - wx) + array[y1][:, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(array.dtype)


class Runner:
    """An exported generator step and the sequential translation around it.

    Args:
        model_path: the `.onnx` file written by `keras_instagan.export`, float32 or int8 (its sidecar
            `<model_path>.json` beside it; `metadata` holds it, `precision` its precision).
        providers: ONNX Runtime providers to use, or None for CUDA when available, else CPU.
        ins_per: masks per step; default from the sidecar.
        threads: ONNX Runtime's threads per operator (default: its own choice).
    """

    def __init__(self, model_path, providers=None, ins_per=None, threads=None):
        onnxruntime = _onnxruntime()

        if not os.path.exists(model_path):
            raise FileNotFoundError(f"{model_path}: model file not found")
        self.metadata = _read_sidecar(model_path + ".json")
        self.precision = self.metadata.get("precision", "unknown")
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = onnxruntime.InferenceSession(model_path, options, providers=_providers(providers))
        except (
            onnxruntime.capi.onnxruntime_pybind11_state.Fail,
            onnxruntime.capi.onnxruntime_pybind11_state.InvalidProtobuf,
            onnxruntime.capi.onnxruntime_pybind11_state.InvalidGraph,
        ) as error:
            raise RunnerInputError(
                f"{model_path}: not a readable ONNX model ({str(error).splitlines()[0][:200]})"
            ) from None
        self.provider = self.session.get_providers()[0]
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        if set(inputs) != {"image", "masks"}:
            raise RunnerInputError(f"{model_path}: inputs {sorted(inputs)}, expected 'image' and 'masks'")
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.ins_per = self._ins_per(model_path, inputs["masks"][-1], ins_per)

    def _ins_per(self, model_path, model_slots, ins_per):
        """Masks per step: the model's own mask-input width when it is fixed, which the sidecar and
        the `ins_per` argument must then agree with; else the argument, the sidecar's, or 2."""
        fixed = model_slots if isinstance(model_slots, int) and model_slots > 0 else None
        for source, value in (
            ("ins_per", ins_per),
            (self.metadata.get("path"), self.metadata.get("ins_per")),
        ):
            if value is not None and fixed is not None and int(value) != fixed:
                raise RunnerInputError(
                    f"{source}: ins_per {value}, but {model_path} takes {fixed} masks per step"
                )
        return int(fixed or ins_per or self.metadata.get("ins_per") or 2)

    def step(self, image, masks):
        """One generator call: float32 `(B, H, W, 3)`, `(B, H, W, ins_per)` in [-1, 1] → the same."""
        outputs = dict(zip(self.output_names, self.session.run(None, {"image": image, "masks": masks})))
        return outputs["fake_image"], outputs["fake_masks"]

    def translate_float(self, image, masks):
        """Sequential translation in the network's units: image `(B, H, W, 3)` in [-1, 1], masks
        `(B, H, W, N)` (−1 background, +1 instance, empty slots all −1), N ≥ 1 →
        `(image, masks)` float32, masks in the input order. Equals `InstaGAN.translate`."""
        image = np.ascontiguousarray(image, np.float32)
        masks = np.ascontiguousarray(masks, np.float32)
        if image.ndim != 4 or image.shape[-1] != 3:
            raise RunnerInputError(f"image: expected (B, H, W, 3), got {image.shape}")
        if masks.ndim != 4 or masks.shape[:3] != image.shape[:3] or masks.shape[-1] < 1:
            raise RunnerInputError(
                f"masks: expected (B, H, W, N ≥ 1) with (B, H, W) = {image.shape[:3]}, got {masks.shape}"
            )
        if image.shape[1] % 4 or image.shape[2] % 4 or min(image.shape[1:3]) < MIN_SIZE:
            raise RunnerInputError(
                f"image: H×W {image.shape[1]}×{image.shape[2]} must be multiples of 4, "
                f"at least {MIN_SIZE} (pass size= to resize)"
            )
        for name, values, meaning in (
            ("image", image, "RGB scaled to [-1, 1]; translate() takes uint8"),
            ("masks", masks, "−1 background, +1 instance; translate() takes binary masks"),
        ):
            if not np.all(np.isfinite(values)):
                raise RunnerInputError(f"{name}: holds NaN or infinite values")
            if values.min() < -1.0 - RANGE_SLACK or values.max() > 1.0 + RANGE_SLACK:
                raise RunnerInputError(
                    f"{name}: values must lie in [-1, 1] ({meaning}), got "
                    f"[{values.min():g}, {values.max():g}]"
                )
        if masks.min() == 0 and np.isin(masks, (0.0, 1.0)).all():
            raise RunnerInputError(
                "masks: 0/1 values; translate_float takes −1 for background, +1 for "
                "instance (0/1 masks go to translate())"
            )
        return sequential_translate(self.step, image, masks, self.ins_per)

    def translate(self, image, masks, size=None):
        """What an app has → what it shows.

        Args:
            image: uint8 RGB `(H, W, 3)`, or a batch `(B, H, W, 3)`.
            masks: for one image a list of binary `(H, W)` masks (bool, or 0/1 or 0/255 integers),
                or an array `(N, H, W)`; for a batch, one such list per image (counts may differ;
                an image may have none).
            size: `(H, W)` to resize to before translating (multiples of 4); results are resized back.
                Without it H and W must be multiples of 4.

        Returns:
            `(image, masks)`: uint8 RGB like the input, and per image a bool `(N, H, W)` array of the
            translated masks in the input order (for a batch, a list of them).
        """
        batched = isinstance(image, np.ndarray) and image.ndim == 4
        images = image if batched else [image]
        mask_sets = masks if batched else [masks]
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise RunnerInputError(
                f"image: expected a uint8 NumPy array, got {getattr(image, 'dtype', type(image).__name__)}"
            )
        if image.ndim not in (3, 4) or image.shape[-1] != 3:
            raise RunnerInputError(f"image: expected (H, W, 3) or (B, H, W, 3) RGB, got {image.shape}")
        if len(mask_sets) != len(images):
            raise RunnerInputError(f"masks: {len(mask_sets)} mask lists for a batch of {len(images)} images")
        height, width = image.shape[-3:-1]
        target = tuple(int(s) for s in size) if size is not None else (height, width)
        if len(target) != 2 or target[0] % 4 or target[1] % 4 or min(target) < MIN_SIZE:
            raise RunnerInputError(
                f"size: H×W {'×'.join(map(str, target))} must be two multiples of 4, each at least {MIN_SIZE}"
                if size is not None
                else f"image: H×W {height}×{width} must be multiples of 4, each at "
                f"least {MIN_SIZE}; pass size= to resize"
            )
        count = max(1, max(len(m) for m in mask_sets))
        floats = np.empty((len(images), *target, 3), np.float32)
        stacked = -np.ones((len(images), *target, count), np.float32)
        for b, (pixels, instance_masks) in enumerate(zip(images, mask_sets)):
            floats[b] = self._resize(pixels.astype(np.float32) / 127.5 - 1.0, target)
            for k, mask in enumerate(instance_masks):
                mask = np.asarray(mask)
                if mask.shape != (height, width):
                    raise RunnerInputError(
                        f"masks[{k}]"
                        + (f" of image {b}" if batched else "")
                        + f": shape {mask.shape}, the image is {height}×{width}"
                    )
                if mask.dtype != bool and not np.isin(mask, (0, 1, 255)).all():
                    raise RunnerInputError(
                        f"masks[{k}]: not binary (values other than 0/1/255); threshold it first"
                    )
                binary = np.where(mask > 0, 1.0, -1.0).astype(np.float32)[..., None]
                stacked[b, ..., k] = self._resize(binary, target)[..., 0]
        fake, fake_masks = self.translate_float(floats, stacked)
        out_images, out_masks = [], []
        for b, instance_masks in enumerate(mask_sets):
            pixels = self._resize(fake[b], (height, width))
            out_images.append(np.clip(np.round((pixels + 1.0) * 127.5), 0, 255).astype(np.uint8))
            back = self._resize(fake_masks[b], (height, width))
            out_masks.append(np.moveaxis(back[..., : len(instance_masks)] > 0, -1, 0))
        if batched:
            return np.stack(out_images), out_masks
        return out_images[0], out_masks[0]

    @staticmethod
    def _resize(array, size):
        if array.shape[:2] == tuple(size):
            return array
        return resize_bilinear(array, *size)
