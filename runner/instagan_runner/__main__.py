"""Translate images with an exported generator.

    python -m instagan_runner --model G_A.onnx --image in.png --masks m0.png m1.png --out out.png
    python -m instagan_runner --model G_A.onnx --dataroot data --phase test --domain A --out results/

Writes the translated image and its masks (`<out stem>_<k>.png`); over a folder in the official
layout (`<phase><domain>/`, `<phase><domain>_seg/<stem>_<k>.png`) writes `<out>/<stem>.png` and
`<out>/<stem>_<k>.png`. Reading and writing PNG/JPEG files needs Pillow; the runner itself does not.
"""

import argparse
import os
import re
import sys

import numpy as np

from instagan_runner.runner import Runner, RunnerInputError


def _read(path, mode):
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode))
    except (OSError, ValueError) as error:
        raise RunnerInputError(f"{path}: not a readable image ({error})") from None


def _write(runner, image_path, mask_paths, out_path, size):
    from PIL import Image

    image = _read(image_path, "RGB")
    masks = [_read(p, "L") > 0 for p in mask_paths]
    fake, fake_masks = runner.translate(image, masks, size=size)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    Image.fromarray(fake).save(out_path)
    stem = os.path.splitext(out_path)[0]
    for k, mask in enumerate(fake_masks):
        Image.fromarray(mask.astype(np.uint8) * 255).save(f"{stem}_{k}.png")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the exported generator (.onnx)")
    p.add_argument("--image", help="one input image")
    p.add_argument("--masks", nargs="*", default=[], help="its instance masks (non-zero = instance)")
    p.add_argument("--dataroot", help="translate a folder in the official layout instead")
    p.add_argument("--phase", default="test")
    p.add_argument("--domain", default="A", help="A or B: which folder of --dataroot to translate")
    p.add_argument("--out", required=True, help="output file (--image) or folder (--dataroot)")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="resize to H×W (multiples of 4)")
    p.add_argument("--cpu", action="store_true", help="CPU provider even when CUDA is available")
    args = p.parse_args(argv)
    if bool(args.image) == bool(args.dataroot):
        p.error("give --image (with --masks) or --dataroot")
    try:
        runner = Runner(args.model, providers=["CPUExecutionProvider"] if args.cpu else None)
        print(
            f"instagan_runner: {args.model} ({runner.precision}) on {runner.provider}, "
            f"ins_per {runner.ins_per}"
        )
        if args.image:
            _write(runner, args.image, args.masks, args.out, args.size)
            print(f"instagan_runner: wrote {args.out}")
            return
        image_dir = os.path.join(args.dataroot, f"{args.phase}{args.domain}")
        seg_dir = os.path.join(args.dataroot, f"{args.phase}{args.domain}_seg")
        for folder in (image_dir, seg_dir):
            if not os.path.isdir(folder):
                raise RunnerInputError(f"{folder}: folder not found")
        segs = sorted(os.listdir(seg_dir))
        names = sorted(n for n in os.listdir(image_dir) if n.lower().endswith((".png", ".jpg", ".jpeg")))
        for name in names:
            stem = os.path.splitext(name)[0]
            pattern = re.compile(rf"^{re.escape(stem)}_(\d+)\.(png|jpe?g)$", re.IGNORECASE)
            found = sorted((int(m[1]), n) for n in segs if (m := pattern.match(n)))
            _write(
                runner,
                os.path.join(image_dir, name),
                [os.path.join(seg_dir, n) for _, n in found],
                os.path.join(args.out, f"{stem}.png"),
                args.size,
            )
        print(f"instagan_runner: {len(names)} images written to {args.out}")
    except (RunnerInputError, FileNotFoundError, ImportError) as error:
        sys.exit(f"instagan_runner: {error}")


if __name__ == "__main__":
    main()
