"""Data sources, all producing unpaired elements `((image_A, masks_A), (image_B, masks_B))`."""

from keras_instagan.data.unpaired import unpaired_dataset

__all__ = ["unpaired_dataset"]
