"""keras-instagan: InstaGAN (instance-aware image-to-image translation) for Keras 3."""

from keras_instagan import losses
from keras_instagan.model import InstaGAN
from keras_instagan.networks import NLayerDiscriminator, ResnetGenerator, SetDiscriminator, SetGenerator

__version__ = "0.1.0"

__all__ = [
    "InstaGAN",
    "NLayerDiscriminator",
    "ResnetGenerator",
    "SetDiscriminator",
    "SetGenerator",
    "losses",
    "__version__",
]
