"""How `InstaGAN`'s training step runs on TensorFlow: tracing, XLA, gradients, conditional updates
and `tf.distribute`. The step's GAN math (`keras_instagan.model`) calls only the methods below, so
another backend brings a class with the same methods.

- Network calls are `tf.function`s of their own, traced once and reused by every call site of the
  unrolled step (3× faster tracing than tracing each site), or, with `compile(jit_compile=True)`,
  inlined into the update that calls them.
- With `compile(jit_compile=True)` each update (the generator update of a sequential step, each
  discriminator update, each optimizer update) is one XLA program, traced inside
  `networks.looped_blocks()` (the residual blocks one loop) and `kernels.xla_kernels()` (unless
  `compile(xla_forms=False)`).
- Under a `tf.distribute` strategy (any number of replicas) nothing is wrapped in `tf.function`: a
  nested `tf.function` may not hold a cross-replica synchronisation point, and the spectral-norm
  update of a mirrored variable is one. Conditional updates then always run (see `run_if`).
"""

import contextlib

import tensorflow as tf
from keras import ops

from keras_instagan.kernels import xla_kernels
from keras_instagan.networks import looped_blocks
from keras_instagan.trainers.common import Trainer


def _multi_worker():
    """Whether the current strategy spans several workers (Keras' own test for its multi-worker path)."""
    strategy = tf.distribute.get_strategy()
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def _inside(contexts, function):
    """`function`, traced inside each of `contexts` (functions returning context managers)."""

    def body(*args):
        with contextlib.ExitStack() as stack:
            for context in contexts:
                stack.enter_context(context())
            return function(*args)

    return body


def _while_loop_blocks(block, x, stacked):
    """`networks.scan_blocks` as a `tf.while_loop` with its trip count given: XLA compiles the
    gradient of a TensorFlow loop only with a bound on its iterations, which `ops.scan` omits."""
    count = int(stacked[0].shape[0])

    def body(i, x):
        return i + 1, block(x, [weights[i] for weights in stacked])

    return tf.while_loop(lambda i, x: i < count, body, (0, x), maximum_iterations=count)[1]


def _looped_blocks():
    return looped_blocks(_while_loop_blocks)


class TensorFlowTrainer(Trainer):
    """Mixed into `InstaGAN` before `keras.Model`. `jit_networks` and `xla_forms` (set by
    `InstaGAN.compile`) choose XLA programs for the updates and their convolution forms."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._traced_calls = {}
        self.jit_networks = False

    def forms_pay(self):
        """The forms make TensorFlow's separate XLA programs take longer to compile (a third of
        the first step at ngf 8, 64×64) and pay that back in faster steps from ngf 16 on; at ngf and
        ndf 8 the steps are no faster (docs/benchmarks.md, "The convolution forms at small widths")."""
        return max(self.ngf, self.ndf) >= 16

    def fit(self, x=None, *args, **kwargs):
        """`keras.Model.fit`; a `tf.data.Dataset` first builds the model (its image pools) from the
        element shape, so that the traced step creates no variables (which would make TensorFlow
        trace it twice)."""
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # a dataset is shuffled by its own pipeline
            if not self.built:
                self.build(tf.nest.map_structure(lambda spec: tuple(spec.shape), x.element_spec))
        return super().fit(x, *args, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras' TensorFlow trainer (3.15) draws a batch in `fit` and averages it over the replicas
        to build the model symbolically; under `MultiWorkerMirroredStrategy` that average fails
        ("Attempt to convert a value (PerReplica ...)"). A built InstaGAN (`fit` builds it from the
        element shape) needs no such build."""
        if not self.built:
            super()._maybe_symbolic_build(iterator, data_batch)

    def sum_over_replicas(self, x):
        """Sum over the replicas of the current `tf.distribute` strategy (identity on one device)."""
        return tf.distribute.get_replica_context().all_reduce("SUM", x)

    def finish_logs(self, logs):
        """The step's logs as Keras expects them: Keras 3.15 averages each log of a multi-worker step
        over axis 0, which a scalar lacks, so there they become `(1,)` tensors."""
        if _multi_worker():
            return {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def _compiled(self, key, function, **options):
        """`tf.function(function, **options)`, made once per `key` and reused by every call site of
        the unrolled step; `function` itself with `run_eagerly=True` and under a strategy."""
        if self.run_eagerly or tf.distribute.has_strategy():
            return function
        if key not in self._traced_calls:
            contexts = [_looped_blocks] if options.get("jit_compile") else []
            contexts += [xla_kernels] if options.get("jit_compile") and self.xla_forms else []
            body = _inside(contexts, function)
            self._traced_calls[key] = tf.function(body, **options)
        return self._traced_calls[key]

    def network_call(self, network, training, input_gradients=True):
        """A function `inputs → network(inputs, training=training)` for the updates to call.

        `input_gradients=False` for inputs that need no gradient (data, detached images): the
        backward pass then skips the gradient of the first layer's input, which TensorFlow would
        otherwise compute for every input of a traced function."""

        def call(inputs):
            if not input_gradients:
                inputs = [ops.stop_gradient(x) for x in inputs]
            return network(inputs, training=training)

        if self.jit_networks:
            return call
        return self._compiled((network.name, training, input_gradients), call, reduce_retracing=True)

    def compiled_update(self, key, function):
        """`function` as one XLA program with `compile(jit_compile=True)`, else itself."""
        if not self.jit_networks:
            return function
        return self._compiled(key, function, jit_compile=True)

    def value_and_gradients(self, loss_function, variables):
        """`loss_function()` → `(loss, aux)`; returns `loss, aux` and the gradients of `loss` for
        `variables`."""
        with tf.GradientTape() as tape:
            loss, aux = loss_function()
        return loss, aux, tape.gradient(loss, variables)

    def apply_gradients(self, optimizer, grads, variables):
        """`optimizer.apply(grads, variables)`, one XLA program with `compile(jit_compile=True)`
        (a few fused kernels instead of ~10 small ops per variable)."""

        def apply(grads):
            return optimizer.apply(grads, variables)

        return self.compiled_update(("apply", id(optimizer)), apply)(grads)

    def run_if(self, condition, fn, otherwise):
        """`fn()` if `condition`, else `otherwise` (a structure of tensors that `fn`'s result
        matches), as one traced conditional.

        In a skipped branch no variable (weights, optimizer moments and step counters, spectral-norm
        vectors, image pool, metrics) is touched.

        Under a `tf.distribute` strategy (any number of replicas) `fn()` always runs: TensorFlow
        forbids a conditional around a cross-replica synchronisation point (the optimizer update,
        the spectral-norm update of a mirrored variable). A step or update without any instance in
        the whole global batch then applies zero gradients, which still moves Adam's moments and
        step counter.
        """
        if tf.distribute.has_strategy():
            return fn()
        return ops.cond(condition, fn, lambda: otherwise)
