"""One domain of real images with instance masks, read file by file (`FolderDomain`, `CocoDomain`).

A domain is a sequence of samples; `domain.load(i)` returns sample i as NumPy arrays at the domain's
load size, ready for `unpaired_dataset`:

    image: (H, W, 3) float32 in [-1, 1]
    masks: (H, W, ins_max) float32 in [-1, 1]; −1 background, +1 instance; the largest `ins_max`
           instances by area, largest first, then empty (all −1) slots.

Masks are read as binary (any non-zero pixel, in any channel, is instance) and then resized with
the image, bicubic as in the official loader, without re-binarising: the resized mask keeps soft
edges (sub-pixel boundary information; the generator's tanh masks are soft too, so the
discriminator sees soft real and soft fake masks). Bicubic resizing of 8-bit masks cannot leave
[0, 255], so masks stay in [-1, 1].
"""

import contextlib
import copy
import functools

import numpy as np

_MASK_THRESHOLD = 0


@contextlib.contextmanager
def _opened(path, problem):
    """`PIL.Image.open(path)`, turning a missing or unreadable file into a `ValueError` naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            yield image
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path}: not a readable image ({problem}): {error}") from None


def open_image(path, mode=None):
    """A decoded PIL image; a clear `ValueError` naming the file if it is missing or unreadable."""
    with _opened(path, "corrupt or truncated?") as image:
        image.load()
        return image.convert(mode) if mode else image.copy()


def image_size(path):
    """(width, height) from the file header only; a clear `ValueError` naming an unreadable file."""
    with _opened(path, "corrupt or not PNG/JPEG?") as image:
        return image.size


def binary_mask(image):
    """PIL mask in any mode (1, L, P, RGB, RGBA, I;16) → (H, W) bool, True where any channel ≠ 0."""
    if image.mode in ("P", "RGBA", "LA", "PA"):
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 3:
        array = array.max(axis=-1)
    return array > _MASK_THRESHOLD


class InstanceDomain:
    """Base of the real-data domains: subclasses give `__len__` and `read(i)`; this class resizes,
    keeps the largest `ins_max` instances and scales to [-1, 1].

    Args:
        load_size: `(H, W)` every sample is resized to (official `loadSize`, aspect ratio not kept),
            or None to keep the stored size (then every image of the domain must have the same size).
        ins_max: mask slots per sample.
    """

    def __init__(self, load_size, ins_max):
        if ins_max < 1:
            raise ValueError(f"ins_max must be ≥ 1, got {ins_max}")
        self.load_size = None if load_size is None else tuple(int(s) for s in load_size)
        self.ins_max = int(ins_max)

    def __len__(self):
        raise NotImplementedError

    def read(self, index):
        """Sample `index` as `(PIL RGB image, list of (H, W) bool masks, name for error messages)`."""
        raise NotImplementedError

    def load(self, index):
        """Sample `index` → `(image (H, W, 3), masks (H, W, ins_max))` float32 in [-1, 1]."""
        from PIL import Image

        image, masks, name = self.read(int(index))
        width, height = image.size
        target = self.output_size()
        if self.load_size is None and (height, width) != target:
            raise ValueError(
                f"{name}: image is {height}×{width}, the first image of the domain is "
                f"{target[0]}×{target[1]}; give a load size to resize them all to one size"
            )
        size = (target[1], target[0])
        resized = [
            np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize(size, Image.BICUBIC)) for m in masks
        ]
        areas = [int(m.sum()) for m in resized]
        keep = sorted(range(len(resized)), key=lambda k: -areas[k])[: self.ins_max]
        out = np.full((target[0], target[1], self.ins_max), -1.0, np.float32)
        for slot, k in enumerate(keep):
            out[..., slot] = resized[k] / 127.5 - 1.0
        pixels = np.asarray(image.resize(size, Image.BICUBIC), np.float32) / 127.5 - 1.0
        return pixels, out

    @functools.cached_property
    def _first_size(self):
        image, _, _ = self.read(0)
        return image.size[1], image.size[0]

    def output_size(self):
        """(H, W) of every loaded sample: the load size, or the stored size of the first image."""
        return self.load_size or self._first_size

    def resized(self, load_size):
        """The same samples (no rescan of the files) loaded at another `(H, W)`."""
        clone = copy.copy(self)
        clone.load_size = tuple(int(s) for s in load_size)
        return clone

    def load_all(self, count=None):
        """The first `count` samples (all by default) stacked: `(images, masks)` NumPy arrays."""
        count = len(self) if count is None else min(count, len(self))
        samples = [self.load(i) for i in range(count)]
        return np.stack([s[0] for s in samples]), np.stack([s[1] for s in samples])
