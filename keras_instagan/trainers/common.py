"""What the trainers share: the sequential steps as a Python loop (every backend's `Trainer`),
building an unbuilt model from its training data, and the step's calls that need no tracing
machinery on JAX and PyTorch (`UntracedCalls`)."""

import keras
from keras import ops


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


class Trainer:
    """The base of every backend's trainer class."""

    def forms_pay(self):
        """Whether `compile(xla_forms="auto")` traces the XLA programs with the convolution forms of
        `kernels.xla_kernels()`: yes, unless a backend's trainer says otherwise."""
        return True

    def run_steps(self, step, steps, state):
        """`state = step(i, state)` for `i` in `range(steps)`, `i` a Python int."""
        for i in range(steps):
            state = step(i, state)
        return state


class UntracedCalls(Trainer):
    """The trainer methods JAX and PyTorch share; mixed in before `keras.Model`. The step sees the
    global batch (one device, or JAX's `DataParallel`, where XLA adds the cross-device sums) and
    traces nothing itself (JAX compiles the whole iteration as one program, PyTorch runs eagerly), so
    the `jit_networks` switch that `InstaGAN.compile` sets is TensorFlow's alone."""

    def fit(self, x=None, *args, **kwargs):
        """`keras.Model.fit`, after building an unbuilt model from the data (`build_from_data`)."""
        build_from_data(self, x)
        return super().fit(x, *args, **kwargs)

    def sum_over_replicas(self, x):
        """The global batch is in view: the identity."""
        return x

    def finish_logs(self, logs):
        return logs

    def network_call(self, network, training, input_gradients=True):
        """A function `inputs → network(inputs, training=training)` for the updates to call."""

        def call(inputs):
            if not input_gradients:
                inputs = [ops.stop_gradient(x) for x in inputs]
            return network(inputs, training=training)

        return call

    def compiled_update(self, key, function):
        """`function` itself."""
        return function

    def run_if(self, condition, fn, otherwise):
        """`fn()` if `condition` (a concrete value here), else `otherwise`: a Python `if`."""
        return fn() if bool(condition) else otherwise
