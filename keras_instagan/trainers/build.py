"""What the JAX and PyTorch trainers share: building an unbuilt model from its training data."""

import keras


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
