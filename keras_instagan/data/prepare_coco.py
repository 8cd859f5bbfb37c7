"""Write two COCO categories in the official InstaGAN folder layout.

    python -m keras_instagan.data.prepare_coco --coco_dir coco --classA sheep --classB giraffe \\
        --out datasets/shp2gir_coco

reads `coco/annotations/instances_{train2017,val2017}.json` and `coco/{train2017,val2017}/` and writes
`trainA/ trainA_seg/ trainB/ trainB_seg/ valA/ ...` under `--out`, as the official
`generate_coco_dataset.py` does for the paper's data sets: every image with the category, shorter
side resized to `--image_size` and centre-cropped, one `<stem>_<k>.png` mask (0/255) per annotation
that is non-empty after the crop, crowd annotations included by default (as official). Unlike the
official script, masks are re-binarised after resizing and the stem is the COCO image id.
"""

import argparse
import os
import sys
import time

from keras_instagan.data.coco import category_images, load_annotations, read_sample


def _progress(done, total, label, start):
    width = 30
    filled = width * done // max(total, 1)
    rate = done / max(time.time() - start, 1e-9)
    sys.stderr.write(f"\r{label} [{'=' * filled}{'.' * (width - filled)}] {done}/{total} {rate:.1f} img/s")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def write_domain(
    data,
    image_dir,
    category,
    out_dir,
    phase,
    domain,
    image_size=256,
    include_crowd=True,
    min_area=0.0,
    source="annotations",
    progress=True,
):
    """One category of one split → `<out_dir>/<phase><domain>/` and `..._seg/`; returns the count of
    images and of masks written."""
    from PIL import Image

    items = category_images(data, category, include_crowd, min_area, source=source)
    image_out = os.path.join(out_dir, f"{phase}{domain}")
    seg_out = os.path.join(out_dir, f"{phase}{domain}_seg")
    os.makedirs(image_out, exist_ok=True)
    os.makedirs(seg_out, exist_ok=True)
    images = masks_written = 0
    start = time.time()
    for done, (record, annotations) in enumerate(items, 1):
        image, masks, _ = read_sample(image_dir, record, annotations, image_size)
        if masks:
            stem = str(record["id"])
            image.save(os.path.join(image_out, f"{stem}.png"))
            for k, mask in enumerate(masks):
                Image.fromarray(mask.astype("uint8") * 255).save(os.path.join(seg_out, f"{stem}_{k}.png"))
            images, masks_written = images + 1, masks_written + len(masks)
        if progress:
            _progress(done, len(items), f"{phase}{domain} ({category})", start)
    return images, masks_written


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--coco_dir", required=True, help="holds annotations/ and the split image folders")
    p.add_argument("--classA", required=True, help="COCO category of domain A, e.g. sheep")
    p.add_argument("--classB", required=True, help="COCO category of domain B, e.g. giraffe")
    p.add_argument("--out", required=True, help="output data root (official layout)")
    p.add_argument(
        "--splits",
        nargs="+",
        default=["train2017:train", "val2017:val"],
        help="COCO split:phase pairs (default train2017:train val2017:val)",
    )
    p.add_argument("--image_size", type=int, default=256, help="square output size (official 256)")
    p.add_argument("--no_crowd", action="store_true", help="drop crowd annotations (official keeps them)")
    p.add_argument("--min_area", type=float, default=0.0, help="drop instances smaller (original pixels)")
    args = p.parse_args(argv)
    for pair in args.splits:
        split, _, phase = pair.partition(":")
        if not phase:
            p.error(f"--splits: {pair!r} is not split:phase (e.g. train2017:train)")
        annotation_file = os.path.join(args.coco_dir, "annotations", f"instances_{split}.json")
        try:
            data = load_annotations(annotation_file)
            for domain, category in (("A", args.classA), ("B", args.classB)):
                images, masks = write_domain(
                    data,
                    os.path.join(args.coco_dir, split),
                    category,
                    args.out,
                    phase,
                    domain,
                    image_size=args.image_size,
                    include_crowd=not args.no_crowd,
                    min_area=args.min_area,
                    source=annotation_file,
                )
                print(f"prepare_coco: {phase}{domain}: {images} images, {masks} masks ({category})")
        except ValueError as error:
            sys.exit(f"prepare_coco: {error}")


if __name__ == "__main__":
    main()
