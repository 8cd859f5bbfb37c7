"""Data sources, all producing unpaired elements `((image_A, masks_A), (image_B, masks_B))`.

`unpaired_dataset` (a `tf.data.Dataset`, imported on first use so that the package loads without
TensorFlow) and `UnpairedSequence` (NumPy batches, any backend) sample two domains the same way.
"""

from keras_instagan.data.coco import CocoDomain
from keras_instagan.data.domain import InstanceDomain
from keras_instagan.data.folder import FolderDomain
from keras_instagan.data.sampling import UnpairedSequence

__all__ = ["CocoDomain", "FolderDomain", "InstanceDomain", "UnpairedSequence", "unpaired_dataset"]


def __getattr__(name):
    if name == "unpaired_dataset":
        from keras_instagan.data.unpaired import unpaired_dataset

        return unpaired_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
