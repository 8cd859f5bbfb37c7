"""How `InstaGAN`'s training step runs on PyTorch: eagerly, with torch autograd.

Keras' PyTorch backend runs every op as it comes, so the step's GAN math (`keras_instagan.model`)
needs little machinery here:

- `value_and_gradients` calls the loss function with autograd recording and takes the gradients
  with `torch.autograd.grad` for the given variables only (the discriminators called inside a
  generator update get none), then drops the graph.
- `apply_gradients` runs the optimizer under `torch.no_grad()`, as Keras' own PyTorch `train_step`.
- `run_if` is a Python `if` (`common.UntracedCalls`): a skipped step or update touches no variable,
  as on TensorFlow.
- The loss terms of the logs are detached, so that no graph outlives its update.
- One device only so far; the calls without machinery are `common.UntracedCalls`.
"""

import keras
import torch
from keras import ops

from keras_instagan.trainers.common import UntracedCalls


class TorchTrainer(UntracedCalls):
    """Mixed into `InstaGAN` before `keras.Model` on the PyTorch backend."""

    def make_train_function(self, force=False):
        """Keras' PyTorch train function, with the batch as tensors: `train_on_batch` passes NumPy
        arrays through as they are."""
        if self.train_function is not None and not force:
            return self.train_function

        def one_step_on_data(data):
            data = keras.tree.map_structure(lambda a: a if a is None else ops.convert_to_tensor(a), data[0])
            return self.train_step(data)

        self.train_function = one_step_on_data
        return self.train_function

    def value_and_gradients(self, loss_function, variables):
        """`loss_function()` → `(loss, aux)`; returns the detached `loss`, `aux` with its loss terms
        (a dict) detached, and the gradients of `loss` for `variables` (zeros for a variable the loss
        does not reach)."""
        with torch.enable_grad():
            loss, aux = loss_function()
            values = [v.value for v in variables]
            grads = torch.autograd.grad(loss, values, allow_unused=True)
        grads = [torch.zeros_like(value) if g is None else g for g, value in zip(grads, values)]
        aux = tuple(
            {name: term.detach() for name, term in part.items()} if isinstance(part, dict) else part
            for part in aux
        )
        return loss.detach(), aux, grads

    def apply_gradients(self, optimizer, grads, variables):
        """`optimizer.apply(grads, variables)` outside autograd."""
        with torch.no_grad():
            optimizer.apply(grads, variables)
