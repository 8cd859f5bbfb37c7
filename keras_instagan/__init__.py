"""keras-instagan: InstaGAN (instance-aware image-to-image translation) for Keras 3.

The names below load on first use, so that `keras_instagan.cli` (`instagan-train --help`) and
`keras_instagan.run` start without importing Keras and its backend.
"""

import importlib

__version__ = "0.1.0"

_HOMES = {
    "InstaGAN": "keras_instagan.model",
    "NLayerDiscriminator": "keras_instagan.networks",
    "ResnetGenerator": "keras_instagan.networks",
    "SetAndImageDiscriminator": "keras_instagan.networks",
    "SetDiscriminator": "keras_instagan.networks",
    "SetGenerator": "keras_instagan.networks",
}

__all__ = [*_HOMES, "losses", "__version__"]


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    if name == "losses":
        return importlib.import_module("keras_instagan.losses")
    raise AttributeError(f"module 'keras_instagan' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
