"""The machinery that runs `InstaGAN`'s training step, one class per Keras backend.

The step's GAN math (`keras_instagan.model`) calls `run_steps`, `network_call`, `compiled_update`,
`value_and_gradients`, `apply_gradients`, `run_if`, `sum_over_replicas` and `finish_logs`; each
backend implements them in a class mixed into `InstaGAN`: TensorFlow, JAX and PyTorch.
"""

import keras

BACKENDS = ("tensorflow", "jax", "torch")


def backend_trainer():
    """The trainer class of the current Keras backend (`keras.backend.backend()`)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from keras_instagan.trainers.tensorflow import TensorFlowTrainer

        return TensorFlowTrainer
    if backend == "jax":
        from keras_instagan.trainers.jax import JaxTrainer

        return JaxTrainer
    if backend == "torch":
        from keras_instagan.trainers.torch import TorchTrainer

        return TorchTrainer
    raise ImportError(
        f"keras_instagan trains with the backends {', '.join(BACKENDS)}; KERAS_BACKEND is {backend!r}"
    )
