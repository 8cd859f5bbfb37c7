"""How well can the official generator reproduce the synthetic images at all? (docs/quality.md)

    python bench/identity_floor.py --background fixed        # the data set as it is
    python bench/identity_floor.py --background random       # its first version's backgrounds
    python bench/identity_floor.py --background random --ngf 16

Trains one `SetGenerator` on the identity alone (L1 between its output and its input, image and
masks; Adam 1e-3, batch 8) on 400 synthetic images of domain A, and prints the background error
(`metrics.background_error`, 0–255) on 64 held-out images every quarter of the run, then one JSON
line. No GAN, no cycle: what it cannot reach, InstaGAN cannot reach either.

`random` draws each background as the data set's first version did: a random base colour in
[0.4, 0.6] per channel and gratings of random amplitude. The instance normalisation right after the
generator's first convolution removes each feature map's mean and scale, so such a per-image
offset and contrast cannot come out again; `fixed` (the current `shapes._background`) keeps the
base and the gratings' strength the same in every image.
"""

import argparse
import json
import time

import keras
import numpy as np
import tensorflow as tf

from keras_instagan.data import shapes
from keras_instagan.metrics import background_error
from keras_instagan.networks import SetGenerator


def random_background(rng, size):
    """The first version's background: random base colour and random grating amplitudes."""
    y, x = np.mgrid[0:size, 0:size].astype("float32") / size
    image = np.broadcast_to(rng.uniform(0.4, 0.6, 3), (size, size, 3)).copy()
    for _ in range(2):
        angle, freq, phase = rng.uniform(0, np.pi), rng.uniform(1.0, 3.0), rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * freq * (x * np.cos(angle) + y * np.sin(angle)) + phase)
        image += 0.2 * wave[..., None] * rng.uniform(-1, 1, 3)
    image += rng.normal(0, 0.01, image.shape)
    return np.clip(image, 0.0, 1.0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--background", choices=("fixed", "random"), default="fixed")
    p.add_argument("--ngf", type=int, default=8)
    p.add_argument("--n_blocks", type=int, default=2)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--steps", type=int, default=800)
    args = p.parse_args()
    if args.background == "random":
        shapes._background = random_background
    (images, masks), _ = shapes.load(400, args.size, 2, seed=0)
    (held_images, held_masks), _ = shapes.load(64, args.size, 2, seed=99)
    keras.utils.set_random_seed(0)
    generator = SetGenerator(ngf=args.ngf, n_blocks=args.n_blocks)
    optimizer = keras.optimizers.Adam(1e-3, beta_1=0.5)
    generator([images[:1], masks[:1]])

    @tf.function
    def step(x, m):
        with tf.GradientTape() as tape:
            image, mask = generator([x, m], training=True)
            loss = tf.reduce_mean(tf.abs(image - x)) + tf.reduce_mean(tf.abs(mask - m))
        optimizer.apply(tape.gradient(loss, generator.trainable_variables), generator.trainable_variables)
        return loss

    rng, start, curve = np.random.default_rng(0), time.perf_counter(), []
    for i in range(args.steps + 1):
        pick = rng.integers(0, len(images), 8)
        step(images[pick], masks[pick])
        if i % max(1, args.steps // 4) == 0:
            image, mask = generator([held_images, held_masks])
            error = float(
                np.nanmean(background_error(held_images, np.asarray(image), held_masks, np.asarray(mask)))
            )
            curve.append((i, round(error, 2)))
            print(f"step {i}: background error {error:.2f} ({time.perf_counter() - start:.0f} s)", flush=True)
    print(json.dumps({**vars(args), "background_error": curve}))


if __name__ == "__main__":
    main()
