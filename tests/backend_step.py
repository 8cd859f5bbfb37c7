"""One InstaGAN training iteration on the current Keras backend, for `test_backends.py`.

    KERAS_BACKEND={jax,torch} python tests/backend_step.py DIR {eager,jit}

reads `DIR/initial.weights.h5` and the batch `DIR/batch.npz`, runs one iteration with SGD
(`train_on_batch`, eagerly or compiled; PyTorch runs eagerly either way) and writes
`DIR/<mode>.weights.h5`, then prints the generator optimizer's step count.
"""

import os
import sys

import keras
import numpy as np

from keras_instagan import InstaGAN

SIZE, SLOTS = 32, 4
OPTIONS = {"ngf": 4, "ndf": 4, "n_blocks": 1, "ins_max": SLOTS, "ins_per": 2, "pool_size": 4, "seed": 0}


def tiny(run_eagerly):
    """The tiny model of the comparison, SGD(0.01) for every network."""
    model = InstaGAN(**OPTIONS)
    model.build((((None, SIZE, SIZE, 3), (None, SIZE, SIZE, SLOTS)),) * 2)
    model.compile(
        g_optimizer=keras.optimizers.SGD(0.01),
        d_optimizer=keras.optimizers.SGD(0.01),
        run_eagerly=run_eagerly,
    )
    return model


def main(directory, mode):
    model = tiny(run_eagerly=mode == "eager")
    model.load_weights(os.path.join(directory, "initial.weights.h5"))
    batch = np.load(os.path.join(directory, "batch.npz"))
    x = ((batch["image_a"], batch["masks_a"]), (batch["image_b"], batch["masks_b"]))
    model.train_on_batch(x=x)
    model.save_weights(os.path.join(directory, f"{mode}.weights.h5"))
    print(int(keras.ops.convert_to_numpy(model.g_optimizer.iterations)))


if __name__ == "__main__":
    main(*sys.argv[1:])
