"""Throughput of the file-backed input pipeline (`FolderDomain` + `unpaired_dataset`).

    python bench/input_pipeline.py                          # 64 generated 256×256 images per domain
    python bench/input_pipeline.py --dataroot data/shp2gir_coco_sample --phase sample

The official COCO recipe: images stored at 256×256, loaded at 220×220 (bicubic), random crop 200×200,
random flip, ins_max 4, batch 1. Without `--dataroot` the script first writes a data set in the
official layout (synthetic shapes, 1–4 instance masks per image, PNG) to a temporary folder, so that
files are really decoded. It reads `--epochs` epochs after one warm-up epoch, without cache, on 2
threads, and compares the element rate (one element = an A and a B sample) with the training step
rate of the reference configuration (`--train_step_seconds`, by default the 2.41 s per step, batch 1,
of `bench/train_step.py` in docs/benchmarks.md; pass the figure measured on your machine); the input
must be at least 5× faster so that it never starves training. The last line printed is JSON.
"""

import argparse
import json
import os
import tempfile
import time

TRAIN_STEP_SECONDS = 2.41  # docs/benchmarks.md: `bench/train_step.py`, reference configuration


def write_synthetic_layout(root, count, size, seed=0):
    """`count` synthetic shapes images per domain at `size`, written in the official layout."""
    import numpy as np
    from PIL import Image

    from keras_instagan.data import shapes

    for side in "AB":
        images, masks = shapes.make_domain(side, count, size=size, max_instances=4, seed=seed)
        os.makedirs(os.path.join(root, f"train{side}"), exist_ok=True)
        os.makedirs(os.path.join(root, f"train{side}_seg"), exist_ok=True)
        for n, (image, mask) in enumerate(zip(images, masks)):
            Image.fromarray(((image + 1) * 127.5).round().astype(np.uint8)).save(
                os.path.join(root, f"train{side}", f"{n:04d}.png")
            )
            for k in range(mask.shape[-1]):
                if mask[..., k].max() > 0:
                    Image.fromarray(((mask[..., k] > 0) * 255).astype(np.uint8)).save(
                        os.path.join(root, f"train{side}_seg", f"{n:04d}_{k}.png")
                    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataroot", help="an official layout to read (default: generate one)")
    p.add_argument("--phase", default="train")
    p.add_argument("--count", type=int, default=64, help="generated images per domain")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--train_step_seconds",
        type=float,
        default=TRAIN_STEP_SECONDS,
        help="seconds per reference training step to compare with (bench/train_step.py)",
    )
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from keras_instagan.data import FolderDomain, unpaired_dataset

    with tempfile.TemporaryDirectory() as tmp:
        root = args.dataroot
        if root is None:
            root = tmp
            write_synthetic_layout(root, args.count, 256)
        domains = [FolderDomain(root, args.phase, side, load_size=(220, 220), ins_max=4) for side in "AB"]
        dataset = unpaired_dataset(*domains, batch_size=1, seed=0, crop=(200, 200), flip=True)
        for _ in dataset:  # warm-up epoch
            pass
        elements, start = 0, time.perf_counter()
        for _ in range(args.epochs):
            for _ in dataset:
                elements += 1
        seconds = time.perf_counter() - start
    rate = elements / seconds
    step_rate = 1.0 / args.train_step_seconds
    result = {
        "elements_per_second": round(rate, 1),
        "images_per_second": round(2 * rate, 1),
        "training_steps_per_second": round(step_rate, 3),
        "ratio_to_training": round(rate / step_rate, 1),
        "target_ratio": 5.0,
        "met": rate / step_rate >= 5.0,
        "size": "256 -> load 220 -> crop 200, ins_max 4",
        "elements": elements,
        "threads": args.threads,
    }
    print(
        f"{elements} elements (A + B samples) in {seconds:.2f} s: {rate:.1f} elements/s, "
        f"{rate / step_rate:.0f}× the reference training step rate"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
