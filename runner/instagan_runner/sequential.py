"""Sequential mini-batch translation (the paper's inference), written once for every runtime.

NumPy only: `InstaGAN.translate` runs it around the Keras generator, `Runner` around the exported
ONNX step.
"""

import numpy as np


def sequential_translate(step, image, masks, ins_per):
    """Translate the instances of `masks` in chunks of `ins_per`, largest first.

    Masks are sorted by decreasing (soft) area, as the official `select_masks` ranks them, and padded
    with empty slots to a multiple of `ins_per`; each chunk holding an instance is translated on the
    image the previous chunk produced; empty chunks are skipped, and a sample without an instance in
    a chunk keeps its image.

    Args:
        step: `step(image, chunk)` → `(image, chunk)` NumPy arrays: one generator call on
            `(B, H, W, 3)` and `(B, H, W, ins_per)` float32 in [-1, 1].
        image: `(B, H, W, 3)` float32 in [-1, 1].
        masks: `(B, H, W, N)`, N ≥ 1, −1 background / +1 instance, empty slots all −1.
        ins_per: masks per generator call.

    Returns:
        `(image, masks)` float32: the translated image and masks in the input order (empty slots −1).
    """
    count = masks.shape[-1]
    order = np.argsort(-(masks + 1.0).sum(axis=(1, 2)), axis=-1, kind="stable")  # (B, N)
    ordered = np.take_along_axis(masks, order[:, None, None, :], axis=-1)
    padding = -np.ones((*masks.shape[:3], (-count) % ins_per), np.float32)
    ordered = np.concatenate([ordered, padding], -1)
    outputs = []
    for start in range(0, ordered.shape[-1], ins_per):
        chunk = np.ascontiguousarray(ordered[..., start : start + ins_per])
        active = (chunk > -1).any(axis=(1, 2, 3))
        if not active.any():
            outputs.append(chunk)
            continue
        fake_image, fake_masks = step(image, chunk)
        image = np.where(active[:, None, None, None], fake_image, image)
        outputs.append(fake_masks)
    translated = np.empty_like(masks)
    np.put_along_axis(translated, order[:, None, None, :], np.concatenate(outputs, -1)[..., :count], axis=-1)
    return image, translated
