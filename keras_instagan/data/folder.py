"""The official InstaGAN folder layout.

    <dataroot>/<phase>A/<stem>.png            images of domain A (PNG or JPEG)
    <dataroot>/<phase>A_seg/<stem>_<k>.png    its instance masks, k = 0, 1, ... (PNG or JPEG,
                                              grayscale or RGB, non-zero = instance)
    <dataroot>/<phase>B/ ...                  the same for domain B

Differences from the official loader (its bugs, `docs/official.md` §6, §8): mask paths come from
the stem, not from replacing every "A" in the path; images may be JPEG; masks may be RGB or
palette images; an image without mask files is a valid sample (no instance: it translates nothing
and still trains the discriminator's real side); there is no cap of 20 mask files.

    domain_a = FolderDomain("datasets/shp2gir_coco", "train", "A", load_size=(220, 220), ins_max=4)
"""

import os
import re
import warnings
from collections import defaultdict

from keras_instagan.data.domain import InstanceDomain, binary_mask, image_size, open_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_MASK_NAME = re.compile(r"^(?P<stem>.+)_(?P<k>\d+)\.(png|jpe?g)$", re.IGNORECASE)


def _files(folder):
    return sorted(
        name
        for name in os.listdir(folder)
        if name.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(folder, name))
    )


class FolderDomain(InstanceDomain):
    """Domain `domain` ("A" or "B") of `<dataroot>/<phase>…` in the official layout.

    Scanning reads every file's header and checks that each mask has its image's size, so a
    missing folder, an empty domain, an unreadable file or a misfit mask is a `ValueError` naming the
    file before training starts.

    Args:
        dataroot: the folder holding `<phase>A/`, `<phase>A_seg/`, ...
        phase: "train", "test", "val", "sample", ...
        domain: "A" or "B".
        load_size, ins_max: see `InstanceDomain`.
    """

    def __init__(self, dataroot, phase, domain, load_size=None, ins_max=4):
        super().__init__(load_size, ins_max)
        self.image_dir = os.path.join(dataroot, f"{phase}{domain}")
        self.seg_dir = os.path.join(dataroot, f"{phase}{domain}_seg")
        for folder in (self.image_dir, self.seg_dir):
            if not os.path.isdir(folder):
                raise ValueError(
                    f"{folder}: folder not found (the official layout has {phase}A/, {phase}A_seg/, "
                    f"{phase}B/, {phase}B_seg/ under the data root; masks are <stem>_<k>.png)"
                )
        images = _files(self.image_dir)
        if not images:
            raise ValueError(f"{self.image_dir}: no PNG or JPEG images: domain {domain} is empty")
        masks = defaultdict(list)
        for name in _files(self.seg_dir):
            match = _MASK_NAME.match(name)
            if match:
                masks[match["stem"]].append((int(match["k"]), os.path.join(self.seg_dir, name)))
        self.items = []
        for name in images:
            path = os.path.join(self.image_dir, name)
            mask_paths = [p for _, p in sorted(masks.get(os.path.splitext(name)[0], []))]
            size = image_size(path)
            for mask_path in mask_paths:
                mask_size = image_size(mask_path)
                if mask_size != size:
                    raise ValueError(
                        f"{mask_path}: mask is {mask_size[1]}×{mask_size[0]} (H×W), its "
                        f"image {path} is {size[1]}×{size[0]}"
                    )
            self.items.append((path, mask_paths))
        self._check_instances(domain, set(masks) - {os.path.splitext(n)[0] for n in images})

    def _check_instances(self, domain, orphan_stems):
        """No instance in the whole domain is an error (mask files misnamed, most likely); fewer than
        half the images with one is a warning."""
        empty = [path for path, mask_paths in self.items if not mask_paths]
        pattern = f"{self.seg_dir}/<stem>_<k>.png for an image <stem>.png"
        unmatched = (
            f"; {len(orphan_stems)} mask stem(s) there match no image, e.g. {sorted(orphan_stems)[0]!r}"
            if orphan_stems
            else ""
        )
        if len(empty) == len(self.items):
            raise ValueError(
                f"domain {domain}: no image has an instance mask (expected {pattern}, e.g. none "
                f"found for {empty[0]}){unmatched}"
            )
        if 2 * len(empty) > len(self.items):
            warnings.warn(
                f"domain {domain}: {len(empty)} of {len(self.items)} images have no instance "
                f"mask (expected {pattern}){unmatched}",
                stacklevel=3,
            )

    def __len__(self):
        return len(self.items)

    def read(self, index):
        path, mask_paths = self.items[index]
        image = open_image(path, "RGB")
        return image, [binary_mask(open_image(p)) for p in mask_paths], path  # sizes checked at scan

    def instance_counts(self):
        """Mask files per image, in the domain's order."""
        return [len(mask_paths) for _, mask_paths in self.items]
