"""How `InstaGAN`'s training step runs on JAX: the whole iteration as one jitted, stateless program.

Keras' JAX `fit` hands the step the model's variables as values (trainable, non-trainable, the
unused `model.optimizer`'s and the metrics'); InstaGAN's own optimizers (`g_optimizer`,
`d_optimizer_A`, `d_optimizer_B`) keep theirs in their variables, read before and written after
each iteration. Inside, the step's GAN math (`keras_instagan.model`) runs unchanged in a
`keras.StatelessScope` that maps every variable to its value: each network call, optimizer update,
spectral-norm power iteration, image-pool write and metric update becomes a new value in the scope,
and the iteration returns them all. With `run_eagerly=False` (the default) that function is one
`jax.jit` program per iteration: every sequential step, both generator updates and the
discriminator updates, compiled together by XLA. The sequential steps are one `jax.lax.fori_loop`
(`run_steps`), so XLA compiles one step's updates once, not once per step, and the generators'
residual blocks one loop (`networks.looped_blocks`), so it compiles one block. On a CPU it is traced
inside `kernels.xla_kernels()`: the forms of the strided, transposed and 3×3 convolutions whose
gradients XLA's CPU backend computes fastest, as on TensorFlow with `jit_compile=True` (unless
`compile(xla_forms=False)`); on a GPU XLA's own convolutions stay.

- `value_and_gradients` differentiates with `jax.value_and_grad` through a nested scope in which the
  differentiated variables take the traced values; the updates the loss function makes to other
  variables (spectral-norm vectors) pass back into the outer scope.
- `run_if` is one `jax.lax.cond`: a skipped step or update is not computed and leaves every
  variable exactly as it was.
- `sum_over_replicas` is the identity (`common.UntracedCalls`): the program sees the global batch,
  on one device or under `keras.distribution.DataParallel` (`--strategy mirrored`).
- Imported before JAX's runtime starts on a machine without an accelerator, it makes JAX run CPU
  programs on the calling thread and glibc keep freed memory (`host_memory.keep_freed_memory`), so
  that XLA's CPU runtime reuses the pages of the iteration's temporary buffer instead of mapping it
  afresh at every iteration (`FREED_MEMORY_KEPT` says whether it did).
"""

import contextlib
import os

import jax
import keras

from keras_instagan.kernels import xla_kernels
from keras_instagan.networks import looped_blocks
from keras_instagan.trainers.common import UntracedCalls
from keras_instagan.trainers.host_memory import keep_freed_memory

FREED_MEMORY_KEPT = keep_freed_memory()


def use_compilation_cache(directory):
    """Keep the programs JAX compiles (those that took over a second) in `directory`, JAX's
    persistent compilation cache, unless a cache folder is already set (`JAX_COMPILATION_CACHE_DIR`
    or `jax.config`). A later process that traces the same program (a resumed run, a repeat) then
    loads it instead of compiling it; JAX reads the setting at its first compilation. Returns the
    cache folder in use."""
    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", os.path.abspath(directory))
    return jax.config.jax_compilation_cache_dir


class JaxTrainer(UntracedCalls):
    """Mixed into `InstaGAN` before `keras.Model` on the JAX backend."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._scope = None
        self._jitted = False

    def _own_optimizer_variables(self):
        return [
            v
            for optimizer in (self.g_optimizer, self.d_optimizer_A, self.d_optimizer_B)
            for v in optimizer.variables
        ]

    def _keras_state_variables(self):
        """The variables behind the state Keras' JAX `fit` passes, in its order."""
        return (
            self.trainable_variables,
            self.non_trainable_variables,
            self.optimizer.variables,
            self.metrics_variables,
        )

    def _stateless_iteration(self, state, own_values, data):
        """`train_step(data)` as a function of the variables' values; returns the logs, the new
        Keras state and the new values of InstaGAN's own optimizer variables."""
        groups = self._keras_state_variables()
        own = self._own_optimizer_variables()
        mapping = [(v, value) for group, values in zip(groups, state) for v, value in zip(group, values)]
        mapping += list(zip(own, own_values))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self._scope = scope
            try:
                logs = self.train_step(data)
            finally:
                self._scope = None
            new_state = tuple([scope.get_current_value(v) for v in group] for group in groups)
            new_own = [scope.get_current_value(v) for v in own]
        return logs, new_state, new_own

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return
        iteration = self._stateless_iteration
        if not self.run_eagerly:
            cpu_forms = self.xla_forms and jax.default_backend() == "cpu"
            forms = xla_kernels if cpu_forms else contextlib.nullcontext

            def traced(state, own_values, data):
                self._jitted = True
                try:
                    with forms(), looped_blocks():
                        return self._stateless_iteration(state, own_values, data)
                finally:
                    self._jitted = False

            iteration = jax.jit(traced, donate_argnums=(0, 1))

        def train_function(state, iterator):
            data = next(iterator)
            own = self._own_optimizer_variables()
            logs, state, own_values = iteration(state, [v.value for v in own], data)
            for v, value in zip(own, own_values):
                v.assign(value)
            return logs, state

        self.train_function = train_function

    def _current_values(self, variables):
        return [self._scope.get_current_value(v) for v in variables]

    def _all_variables(self):
        return [v for group in self._keras_state_variables() for v in group] + self._own_optimizer_variables()

    def _in_scope(self, mapping, fn, read):
        """`fn()` in a nested scope where each variable of `mapping` (pairs) takes its value; returns
        `fn`'s result and the values the variables `read` have at its end."""
        outer = self._scope
        with keras.StatelessScope(state_mapping=mapping) as inner:
            self._scope = inner
            try:
                result = fn()
            finally:
                self._scope = outer
            return result, [inner.get_current_value(v) for v in read]

    def run_steps(self, step, steps, state):
        """`state = step(i, state)` for `i` in `range(steps)`. In the jitted iteration one
        `jax.lax.fori_loop` (`i` traced) whose carry is every variable's value and the step's state,
        so XLA compiles the step once however many steps there are; eagerly a Python loop."""
        if not self._jitted or steps == 1:
            return super().run_steps(step, steps, state)
        variables = self._all_variables()

        def body(i, carry):
            values, state = carry
            state, values = self._in_scope(list(zip(variables, values)), lambda: step(i, state), variables)
            return values, state

        values, state = jax.lax.fori_loop(0, steps, body, (self._current_values(variables), state))
        for v, value in zip(variables, values):
            self._scope.add_update((v, value))
        return state

    def value_and_gradients(self, loss_function, variables):
        """`loss_function()` → `(loss, aux)`; returns `loss, aux` and the gradients of `loss` for
        `variables`, with the updates the loss function makes to other variables kept."""
        outer = self._scope
        others = [v for v in self._all_variables() if not any(v is w for w in variables)]
        other_values = self._current_values(others)

        def loss_of(values):
            mapping = list(zip(variables, values)) + list(zip(others, other_values))
            (loss, aux), updates = self._in_scope(mapping, loss_function, others)
            return loss, (aux, updates)

        (loss, (aux, updates)), grads = jax.value_and_grad(loss_of, has_aux=True)(
            self._current_values(variables)
        )
        for v, before, after in zip(others, other_values, updates):
            if after is not before:
                outer.add_update((v, after))
        return loss, aux, grads

    def apply_gradients(self, optimizer, grads, variables):
        """`optimizer.apply(grads, variables)`; the new values go into the step's scope."""
        optimizer.apply(grads, variables)

    def run_if(self, condition, fn, otherwise):
        """`fn()` if `condition`, else `otherwise` (a structure of arrays that `fn`'s result
        matches). A skipped branch is not computed and leaves every variable exactly as it was.
        Jitted, one `jax.lax.cond` whose results are `fn`'s and the variables it changes; eagerly a
        Python `if`."""
        if not self._jitted:
            return super().run_if(condition, fn, otherwise)
        variables = self._all_variables()
        changed = []

        def branch(values):
            result, new = self._in_scope(list(zip(variables, values)), fn, variables)
            changed[:] = [after is not before for after, before in zip(new, values)]
            return result, new

        def skip(values):
            return otherwise, list(values)

        result, new = jax.lax.cond(condition, branch, skip, self._current_values(variables))
        for v, after, was_changed in zip(variables, new, changed):
            if was_changed:
                self._scope.add_update((v, after))
        return result
