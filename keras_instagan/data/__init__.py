"""Data sources, all producing unpaired elements `((image_A, masks_A), (image_B, masks_B))`."""

from keras_instagan.data.coco import CocoDomain
from keras_instagan.data.domain import InstanceDomain
from keras_instagan.data.folder import FolderDomain
from keras_instagan.data.unpaired import unpaired_dataset

__all__ = ["CocoDomain", "FolderDomain", "InstanceDomain", "unpaired_dataset"]
