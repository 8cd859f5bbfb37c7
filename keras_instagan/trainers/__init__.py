"""The machinery that runs `InstaGAN`'s training step, one class per Keras backend.

The step's GAN math (`keras_instagan.model`) calls `network_call`, `compiled_update`,
`value_and_gradients`, `apply_gradients`, `run_if`, `sum_over_replicas` and `finish_logs`; each
backend implements them in a class mixed into `InstaGAN`: TensorFlow and JAX so far.
"""

import keras


def backend_trainer():
    """The trainer class of the current Keras backend (`keras.backend.backend()`)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from keras_instagan.trainers.tensorflow import TensorFlowTrainer

        return TensorFlowTrainer
    if backend == "jax":
        from keras_instagan.trainers.jax import JaxTrainer

        return JaxTrainer
    raise ImportError(
        f"keras_instagan trains with the TensorFlow and JAX backends so far; KERAS_BACKEND is {backend!r}"
    )
