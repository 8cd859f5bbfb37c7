"""The machinery that runs `InstaGAN`'s training step, one class per Keras backend.

The step's GAN math (`keras_instagan.model`) calls `network_call`, `compiled_update`,
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


def build_from_data(model, x):
    """Build an unbuilt `model` (its image pools) before `fit`: from the element shape of a `tf.data`
    dataset or from the first batch of a `keras.utils.PyDataset` (`UnpairedSequence`). Other data
    (arrays) is left to Keras."""
    if model.built:
        return
    spec = getattr(x, "element_spec", None)
    if spec is not None:
        model.build(keras.tree.map_structure(lambda s: tuple(s.shape), spec))
    elif isinstance(x, keras.utils.PyDataset):
        model.build(keras.tree.map_structure(lambda a: tuple(a.shape), x[0][0]))
