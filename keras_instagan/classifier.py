"""Keras models that judge translations for `keras_instagan.metrics`: a domain classifier and feature
extraction for FID/KID.

No weights are downloaded. The domain classifier of the paper's classification score is either a
`.keras` file the user has, or trained here from scratch on real images of both domains
(`train_domain_classifier`). FID/KID features come from any Keras model loaded from a local file
(e.g. an InceptionV3 the user saved) or, lacking one, from the penultimate layer of the domain
classifier (`features`).

Images are `(B, H, W, 3)` in [-1, 1].
"""

import keras
import numpy as np
from keras import layers, ops

from keras_instagan.metrics import masked_images


def domain_classifier(width=8, name="domain_classifier"):
    """A small CNN: image `(B, H, W, 3)` in [-1, 1], any H, W ≥ 4 → P(domain B) `(B, 1)`.

    Three stages of two 3×3 convolutions (`width`, 2·, 4·width, ReLU, stride 1) with 2×2 max pooling
    between them, global max pooling (the `features` layer, 4·width values), one sigmoid unit. Stride
    1 and max pooling on purpose: on the synthetic shapes a strided, average-pooled CNN memorised the
    backgrounds (training accuracy 1.0, held-out 0.5) where this one reaches 0.96 held-out.
    """
    inputs = keras.Input((None, None, 3))
    x = inputs
    for stage, mult in enumerate((1, 2, 4)):
        if stage:
            x = layers.MaxPooling2D()(x)
        for _ in range(2):
            x = layers.Conv2D(mult * width, 3, padding="same", activation="relu")(x)
    features = layers.GlobalMaxPooling2D(name="features")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="p_B")(features)
    return keras.Model(inputs, outputs, name=name)


def train_domain_classifier(
    images_a, images_b, masks_a=None, masks_b=None, epochs=8, width=8, batch_size=32, seed=0, verbose=0
):
    """Train `domain_classifier` to tell real A (label 0) from real B (label 1) images.

    With `masks_a`, `masks_b` it learns on `metrics.masked_images` (the input of the masked
    classification score), so that it judges the instances and not the background.

    Args:
        images_a, images_b: `(n, H, W, 3)` in [-1, 1].
        masks_a, masks_b: optional `(n, H, W, N)`, −1 background / +1 instance.
    Returns:
        the trained model; `model.history` holds its training accuracy.
    """
    if (masks_a is None) != (masks_b is None):
        raise ValueError("train_domain_classifier: give masks for both domains or for neither.")
    if masks_a is not None:
        images_a, images_b = masked_images(images_a, masks_a), masked_images(images_b, masks_b)
    x = np.concatenate([images_a, images_b]).astype("float32")
    y = np.concatenate([np.zeros(len(images_a)), np.ones(len(images_b))]).astype("float32")
    keras.utils.set_random_seed(seed)
    model = domain_classifier(
        width, name="masked_domain_classifier" if masks_a is not None else "domain_classifier"
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose)
    return model


def _fit_size(model, images):
    """`images` resized (bilinear) to `model`'s fixed input size, when it has one."""
    shape = model.inputs[0].shape if getattr(model, "inputs", None) else (None, None, None, None)
    height, width = shape[1], shape[2]
    if height is None or width is None or tuple(images.shape[1:3]) == (height, width):
        return images
    return ops.image.resize(images, (height, width), interpolation="bilinear")


def predict(model, images, batch_size=64):
    """`model` on `images` in batches, inputs resized to its fixed size if it has one → NumPy."""
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = _fit_size(model, np.asarray(images[start : start + batch_size], "float32"))
        outputs.append(ops.convert_to_numpy(model(batch, training=False)))
    return np.concatenate(outputs)


def features(model, images, batch_size=64):
    """Feature vectors `(n, d)` for FID/KID.

    `model` is either a domain classifier from this module (its `features` layer is used) or any
    Keras model taking images in [-1, 1] (e.g. InceptionV3 without its top: it expects exactly
    that range); a 4-D output is averaged over H and W.
    """
    try:
        model = keras.Model(model.inputs[0], model.get_layer("features").output)
    except ValueError:
        pass
    out = predict(model, images, batch_size)
    if out.ndim == 4:
        out = out.mean(axis=(1, 2))
    return out.reshape(len(out), -1)
