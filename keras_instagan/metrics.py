"""Numbers that tell how well a translation went, on NumPy arrays.

Images `(B, H, W, 3)` in [-1, 1]; masks `(B, H, W, N)` with −1 = background, +1 = instance.
"""

import numpy as np


def background_error(image, translated, masks, translated_masks):
    """Mean |image − translated| outside the union of the input and translated masks, 0–255 units.

    A mask pixel counts as instance where its value is > 0. Returns `(B,)`; a sample whose union
    covers the whole image gets NaN.
    """
    union = (np.asarray(masks) > 0).any(-1) | (np.asarray(translated_masks) > 0).any(-1)
    background = ~union
    error = np.abs(np.asarray(image) - np.asarray(translated)).mean(-1) * 127.5
    pixels = background.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pixels > 0, (error * background).sum(axis=(1, 2)) / pixels, np.nan)
