"""One InstaGAN training iteration on the current Keras backend, for `test_backends.py`.

    KERAS_BACKEND={jax,torch} python tests/backend_step.py DIR {eager,jit,float64,float64_jit}

reads `DIR/initial.weights.h5` and the batch `DIR/batch.npz`, runs one iteration with SGD
(`train_on_batch`, eagerly or compiled; PyTorch runs eagerly either way) and writes
`DIR/<mode>.weights.h5`, then prints the generator optimizer's step count. `float64`: eagerly, in
float64 (floatx and dtype policy; JAX's x64 mode), without an image pool, 3 residual blocks;
`float64_jit`: the same compiled (on JAX one jitted program, its sequential steps one loop and each
encoder's blocks one loop).
"""

import os
import sys

import keras
import numpy as np

from keras_instagan import InstaGAN

SIZE, SLOTS = 32, 4
OPTIONS = {"ngf": 4, "ndf": 4, "n_blocks": 1, "ins_max": SLOTS, "ins_per": 2, "pool_size": 4, "seed": 0}


def use_float64():
    """float64 from here on: floatx and dtype policy, and on JAX its x64 mode.

    Keras 3.15 computes some operations in float32 on JAX and PyTorch, float64 input included (its
    `result_type` maps 64-bit types to 32-bit): `ops.mean` (instance norms, losses) on both,
    `ops.tanh` (the generators' outputs) on JAX and `ops.matmul` (spectral norm, thin convolutions)
    on PyTorch. Here they are replaced by the backend's own float64-keeping functions. PyTorch's CPU
    float64 convolution gradient also refuses the permuted kernel Keras passes ("slow_conv2d:
    grad_weight must be contiguous"), so the kernel is made contiguous. With Keras' own operations
    JAX's updates differ from TensorFlow's by up to 5e-6; with these by 4e-9."""
    os.environ["JAX_ENABLE_X64"] = "1"
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    if keras.backend.backend() == "jax":
        import jax.numpy as jnp
        from keras.src.backend.jax import numpy as backend_numpy

        backend_numpy.mean = lambda x, axis=None, keepdims=False: jnp.mean(x, axis, keepdims=keepdims)
        backend_numpy.tanh = jnp.tanh
    elif keras.backend.backend() == "torch":
        import torch
        from keras.src.backend.torch import nn as backend_nn
        from keras.src.backend.torch import numpy as backend_numpy

        def mean(x, axis=None, keepdims=False):
            x = backend_numpy.convert_to_tensor(x)
            return torch.mean(x, dim=axis if axis is not None else tuple(range(x.ndim)), keepdim=keepdims)

        def matmul(x1, x2):
            return torch.matmul(backend_numpy.convert_to_tensor(x1), backend_numpy.convert_to_tensor(x2))

        backend_numpy.mean, backend_numpy.matmul = mean, matmul
        permuted = backend_nn._transpose_conv_kernel
        backend_nn._transpose_conv_kernel = lambda kernel: permuted(kernel).contiguous()


def tiny(run_eagerly, float64=False):
    """The tiny model of the comparison, SGD(0.01) for every network. The float64 one has no image
    pool and 3 residual blocks per encoder, which the jitted iteration runs as one loop
    (`networks.looped_blocks`); the float32 one keeps 1 block, since at float32 rounding every
    block adds to the spread of the update (see `test_iteration_equals_tensorflow_iteration`)."""
    options = {**OPTIONS, "pool_size": 0, "n_blocks": 3} if float64 else OPTIONS
    model = InstaGAN(**options)
    model.build((((None, SIZE, SIZE, 3), (None, SIZE, SIZE, SLOTS)),) * 2)
    model.compile(
        g_optimizer=keras.optimizers.SGD(0.01),
        d_optimizer=keras.optimizers.SGD(0.01),
        run_eagerly=run_eagerly,
    )
    return model


def main(directory, mode):
    in_float64 = mode.startswith("float64")
    if in_float64:
        use_float64()
    model = tiny(run_eagerly=not mode.endswith("jit"), float64=in_float64)
    model.load_weights(os.path.join(directory, "initial.weights.h5"))
    batch = np.load(os.path.join(directory, "batch.npz"))
    x = tuple((batch[f"image_{d}"], batch[f"masks_{d}"]) for d in "ab")
    if in_float64:
        x = keras.tree.map_structure(lambda a: a.astype("float64"), x)
    model.train_on_batch(x=x)
    model.save_weights(os.path.join(directory, f"{mode}.weights.h5"))
    print(int(keras.ops.convert_to_numpy(model.g_optimizer.iterations)))


if __name__ == "__main__":
    main(*sys.argv[1:])
