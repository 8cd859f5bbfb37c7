"""COCO instance annotations (polygons, RLE, crowd RLE) as an InstaGAN domain.

    domain_a = CocoDomain("coco/annotations/instances_train2017.json", "coco/train2017", "sheep",
                          load_size=(220, 220), ins_max=4, image_size=256)

Reads the annotation JSON directly (no COCO API object) and decodes each annotation with
`pycocotools.mask` (`pip install "keras-instagan[coco]"`). `python -m keras_instagan.data.prepare_coco`
writes the same domains in the official folder layout instead.
"""

import json
import os

import numpy as np

from keras_instagan.data.domain import InstanceDomain, open_image


def _mask_api():
    try:
        from pycocotools import mask
    except ImportError:
        raise ImportError(
            "COCO annotations need pycocotools: pip install pycocotools  (or keras-instagan[coco])"
        ) from None
    return mask


def annotation_mask(segmentation, height, width):
    """A COCO `segmentation` (polygon list, uncompressed RLE or compressed RLE) → (H, W) bool."""
    api = _mask_api()
    if isinstance(segmentation, list):
        rle = api.merge(api.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = api.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return api.decode(rle).astype(bool)


def square(image, masks, size):
    """The official COCO preparation: shorter side resized to `size` (bilinear), centre crop
    `size`×`size`. Masks are resized the same way and re-binarised at one half."""
    from PIL import Image

    width, height = image.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    box = (left, top, left + size, top + size)
    image = image.resize(new, Image.BILINEAR).crop(box)
    masks = [
        np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize(new, Image.BILINEAR).crop(box)) >= 128
        for m in masks
    ]
    return image, masks


def load_annotations(annotation_file):
    """The parsed JSON; a clear error for a missing or malformed file."""
    try:
        with open(annotation_file) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{annotation_file}: COCO annotation file not found") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{annotation_file}: not valid JSON ({error})") from None
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise ValueError(f"{annotation_file}: no '{key}' list: not a COCO instances file")
    return data


def category_images(data, category, include_crowd=True, min_area=0.0, source="annotations"):
    """`[(image record, [annotations])]` for every image with ≥ 1 kept instance of `category`, in
    image-id order, annotations in file order.

    Args:
        data: a parsed COCO instances JSON.
        category: category name, e.g. "sheep".
        include_crowd: keep `iscrowd` annotations (one RLE mask over a group of objects; the
            official preparation script keeps them).
        min_area: drop annotations whose `area` (pixels, original resolution) is smaller.
    """
    ids = {c["name"]: c["id"] for c in data["categories"]}
    if category not in ids:
        raise ValueError(f"{source}: unknown COCO category {category!r}; known: {', '.join(sorted(ids))}")
    per_image = {}
    for annotation in data["annotations"]:
        if annotation["category_id"] != ids[category]:
            continue
        if annotation.get("iscrowd", 0) and not include_crowd:
            continue
        if annotation.get("area", float("inf")) < min_area:
            continue
        per_image.setdefault(annotation["image_id"], []).append(annotation)
    images = {record["id"]: record for record in data["images"]}
    return [(images[i], per_image[i]) for i in sorted(per_image)]


def read_sample(image_dir, record, annotations, image_size=None):
    """One COCO image and its instance masks: `(PIL RGB image, [(H, W) bool], path)`."""
    path = os.path.join(image_dir, record["file_name"])
    image = open_image(path, "RGB")
    if image.size != (record["width"], record["height"]):
        raise ValueError(
            f"{path}: image is {image.size[1]}×{image.size[0]}, its annotation says "
            f"{record['height']}×{record['width']}"
        )
    masks = [annotation_mask(a["segmentation"], record["height"], record["width"]) for a in annotations]
    if image_size is not None:
        image, masks = square(image, masks, image_size)
    return image, [m for m in masks if m.any()], path


class CocoDomain(InstanceDomain):
    """The images of one COCO category, with one mask per annotation of that category.

    Args:
        annotation_file: `instances_<split>.json`.
        image_dir: the folder of the split's images (`train2017/`).
        category: category name ("sheep"); an unknown name lists the known ones.
        load_size, ins_max: see `InstanceDomain`.
        include_crowd, min_area: see `category_images` (crowd annotations are kept by default, as
            in the official preparation).
        annotations: the parsed JSON, when it is already in memory (both domains of one file).
        image_size: first resize the shorter side to this and centre-crop a square (the official
            preparation, 256), or None to use the images as stored.
    """

    def __init__(
        self,
        annotation_file,
        image_dir,
        category,
        load_size=None,
        ins_max=4,
        include_crowd=True,
        min_area=0.0,
        image_size=None,
        annotations=None,
    ):
        super().__init__(load_size, ins_max)
        _mask_api()
        data = annotations if annotations is not None else load_annotations(annotation_file)
        self.image_dir, self.image_size = image_dir, image_size
        self.items = category_images(data, category, include_crowd, min_area, source=annotation_file)
        if not self.items:
            raise ValueError(f"{annotation_file}: no image has a kept {category!r} instance: empty domain")
        if not os.path.isdir(image_dir):
            raise ValueError(f"{image_dir}: image folder not found")

    def __len__(self):
        return len(self.items)

    def read(self, index):
        record, annotations = self.items[index]
        return read_sample(self.image_dir, record, annotations, self.image_size)
