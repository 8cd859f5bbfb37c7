"""Callbacks for `InstaGAN.fit`: the official learning-rate schedule, sample grids, resumable state.

The image pool is not here: it acts inside the traced training step and its contents are saved with
the model, so it is part of `InstaGAN` (`pool_size`).
"""

import csv
import os
import time

import keras
import numpy as np

from keras_instagan import evaluation
from keras_instagan.metrics import background_error

PALETTE = np.array(
    [
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
    ],
    "float32",
)


def linear_decay_factor(epoch, niter, niter_decay):
    """The official `lambda` policy for 1-based `epoch`: 1 up to `niter`, then linear decay that reaches
    1/(niter_decay + 1) in the last epoch."""
    return 1.0 - max(0, epoch - niter) / float(niter_decay + 1)


class LinearDecay(keras.callbacks.Callback):
    """Sets the learning rate of every InstaGAN optimizer at the start of each epoch and logs it as `lr`.

    Args:
        lr: the base learning rate (official 2e-4).
        niter: epochs at the base rate (official 100).
        niter_decay: epochs of linear decay after that (official 100).
    """

    def __init__(self, lr, niter, niter_decay):
        super().__init__()
        self.lr, self.niter, self.niter_decay = float(lr), int(niter), int(niter_decay)

    def _optimizers(self):
        return [self.model.g_optimizer, self.model.d_optimizer_A, self.model.d_optimizer_B]

    def on_epoch_begin(self, epoch, logs=None):
        rate = self.lr * linear_decay_factor(epoch + 1, self.niter, self.niter_decay)
        for optimizer in self._optimizers():
            optimizer.learning_rate = rate

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = float(keras.ops.convert_to_numpy(self.model.g_optimizer.learning_rate))


def overlay(image, masks=None):
    """`(H, W, 3)` in [-1, 1] and optional `(H, W, N)` masks → uint8 picture, each instance tinted."""
    picture = (np.asarray(image) + 1.0) * 127.5
    for k in range(0 if masks is None else masks.shape[-1]):
        alpha = 0.5 * np.clip((masks[..., k : k + 1] + 1.0) / 2.0, 0.0, 1.0)
        picture = picture * (1 - alpha) + PALETTE[k % len(PALETTE)] * alpha
    return np.clip(picture, 0, 255).astype("uint8")


def upscale(picture, min_size):
    """`(H, W, C)` picture enlarged by the smallest whole factor that makes H and W at least
    `min_size` (nearest neighbour: each pixel becomes a block, nothing is smoothed)."""
    factor = max(1, -(-min_size // min(picture.shape[:2])))
    return np.repeat(np.repeat(picture, factor, axis=0), factor, axis=1)


class SampleGrid(keras.callbacks.Callback):
    """Each epoch: translates fixed samples both ways and back, logs the background error and writes
    a PNG grid of the first `rows` samples.

    Logs `bg_err_A`, `bg_err_B`: mean |input − translated| outside the input and translated masks
    (0–255 units, `metrics.background_error`), averaged over all the samples. The grid has one row per
    sample and direction: real, translated, reconstructed, each as the image and with its masks
    overlaid in colour.

    Args:
        directory: where `epoch_<NNN>.png` files go.
        samples: `((images_A, masks_A), (images_B, masks_B))`, fixed samples of each domain.
        rows: samples per domain shown in the grid.
        cell_size: smallest cell side in pixels; smaller images are enlarged (`upscale`).
    """

    def __init__(self, directory, samples, rows=3, cell_size=96):
        super().__init__()
        self.directory, self.samples, self.rows, self.cell_size = directory, samples, rows, cell_size

    def on_epoch_end(self, epoch, logs=None):
        from PIL import Image

        grid = []
        for (image, masks), forward, backward, side in zip(
            self.samples, ("AtoB", "BtoA"), ("BtoA", "AtoB"), ("A", "B")
        ):
            fake, fake_masks = self.model.translate(image, masks, forward)
            if logs is not None:
                logs[f"bg_err_{side}"] = float(np.nanmean(background_error(image, fake, masks, fake_masks)))
            shown = slice(0, self.rows)
            rec, rec_masks = self.model.translate(fake[shown], fake_masks[shown], backward)
            for b in range(len(rec)):
                cells = []
                for img, msk in ((image, masks), (fake, fake_masks), (rec, rec_masks)):
                    cells += [
                        upscale(overlay(img[b]), self.cell_size),
                        upscale(overlay(img[b], msk[b]), self.cell_size),
                    ]
                grid.append(np.concatenate(cells, axis=1))
        os.makedirs(self.directory, exist_ok=True)
        Image.fromarray(np.concatenate(grid, axis=0)).save(
            os.path.join(self.directory, f"epoch_{epoch + 1:03d}.png")
        )


class QualityLog(keras.callbacks.Callback):
    """Every `every` epochs and after the last one: scores the model on fixed held-out data
    (`evaluation.evaluate_model`) and logs each number as `<metric>_<direction>`, e.g.
    `shape_instances_AtoB`, `classification_BtoA`, `fid_AtoB` (`evaluation.METRICS`). Other epochs log
    NaN in the same columns, so `log.csv` keeps one header, and with the `seconds` column the rows
    make a quality curve over training time (`plot_quality.py`). With `training` it also logs
    `D_A_memorised` and `D_B_memorised` (`evaluation.memorisation`: how much more real each
    discriminator calls its training images than the held-out ones).

    Args:
        data: `{"A": (images, masks), "B": (images, masks)}` held-out samples of each domain.
        judges: an `evaluation.Judges` (its classifiers fixed for the whole run, so that the curve
            compares like with like), or a function returning one, called at the first evaluation
            (`train.py` trains them in a child process meanwhile).
        every: evaluate after every `every`-th epoch.
        training: None, or as many training samples in the same form and size as `data`.
    """

    def __init__(self, data, judges, every=1, training=None):
        super().__init__()
        self.data, self.every, self.training = data, int(every), training
        self.judges, self._pending = (None, judges) if callable(judges) else (judges, None)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        due = (epoch + 1) % self.every == 0 or epoch + 1 == self.params.get("epochs")
        if due and self.judges is None:
            self.judges = self._pending()
        rows = evaluation.evaluate_model(self.model, self.data, self.judges) if due else {}
        for direction in evaluation.SIDES:
            row = rows.get(direction, {})
            for metric in evaluation.METRICS:
                value = row.get(metric)
                logs[f"{metric}_{direction}"] = float("nan") if value is None else float(value)
        if self.training is not None:
            gaps = evaluation.memorisation(self.model, self.training, self.data) if rows else {}
            for name in ("D_A", "D_B"):
                logs[f"{name}_memorised"] = gaps.get(name, float("nan"))


class FirstStepTime(keras.callbacks.Callback):
    """Prints how long the run took to reach its first finished training step: from `start` (a
    `time.perf_counter()` value, e.g. taken when the program started) to `fit`, and from `fit` to the
    end of the first step (tracing, compilation and the step itself)."""

    def __init__(self, start):
        super().__init__()
        self.start, self.fit_start = start, None

    def on_train_begin(self, logs=None):
        self.fit_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.fit_start is None:
            return
        now = time.perf_counter()
        print(
            f"first training step done {now - self.start:.1f} s after start: "
            f"{self.fit_start - self.start:.1f} s before fit began, "
            f"{now - self.fit_start:.1f} s of tracing, compilation and the step",
            flush=True,
        )
        self.fit_start = None


class EpochSeconds(keras.callbacks.Callback):
    """Logs the wall-clock seconds of each epoch as `seconds`."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = round(time.perf_counter() - self.start, 2)


class RunState(keras.callbacks.Callback):
    """Saves everything needed to resume into the run's `state/` after each epoch
    (`RunDirectory.save_state`: the networks, the spectral-norm vectors, the image pools, the three
    optimizers and the number of finished epochs), each file replaced atomically, so a run killed at
    any moment loses at most the epoch in progress. `RunDirectory.restore_state` loads them.

    Args:
        run: the `RunDirectory`.
    """

    def __init__(self, run):
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch, logs=None):
        self.run.save_state(self.model, epoch + 1)


class EpochNetworks(keras.callbacks.Callback):
    """Keeps the networks of every `every`-th epoch: `<run>/epochs/NNN/` holds G_A … D_B as
    `.keras`, `config.json` and `log.csv` up to that epoch (`RunDirectory.save_epoch`), so each is a
    run directory that `evaluate.py`, `InstaGAN.from_run` and the exporter take. Put it
    after `CSVLog`, so that the copied log holds the epoch's row.

    Args:
        run: the `RunDirectory`.
        every: the period in epochs (epochs 1-based: `every`, 2·`every`, …).
    """

    def __init__(self, run, every):
        super().__init__()
        self.run, self.every = run, every

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            model = self.model
            self.run.save_epoch((model.G_A, model.G_B, model.D_A, model.D_B), epoch + 1)


class CSVLog(keras.callbacks.Callback):
    """One row per epoch in `path`: the epoch number (1-based) and every value in the epoch's logs.

    With `append=True` (a continued run) rows are added under the existing header, and rows of the
    epochs being trained again are dropped first: put this callback before `RunState`, so that a run
    killed between the two has a row for an epoch its state does not hold, which the resumed run
    replaces, and never a state without its row.
    """

    def __init__(self, path, append=False):
        super().__init__()
        self.path, self.append = path, append

    def on_train_begin(self, logs=None):
        self.columns, self.checked = None, False
        if self.append and os.path.exists(self.path):
            with open(self.path, newline="") as f:
                self.columns = next(csv.reader(f), None)
        else:
            open(self.path, "w").close()

    def _drop_rows_from(self, epoch):
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        kept = rows[:1] + [row for row in rows[1:] if row and int(float(row[0])) < epoch]
        if len(kept) < len(rows):
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerows(kept)

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        if not self.checked and self.columns is not None:
            self._drop_rows_from(epoch + 1)
        self.checked = True
        new_file = self.columns is None
        if new_file:
            self.columns = list(row)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(row)


class OutsideDistribution(keras.callbacks.Callback):
    """Runs `callbacks` with no `keras.distribution` set, for those that only the chief of a
    multi-process JAX run has (grids, scores, log, state). Whatever they create (Keras' saving builds
    a reference optimizer, a variable) is then local to the chief instead of laid out over every
    process's devices, which would wait for processes that never create it. The model's replicated
    weights read locally as they are.

    Args:
        callbacks: the callbacks, called in order.
    """

    def __init__(self, callbacks):
        super().__init__()
        self.callbacks = list(callbacks)

    def set_model(self, model):
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    def _call(self, hook, *args):
        outer = keras.distribution.distribution()
        keras.distribution.set_distribution(None)
        try:
            for callback in self.callbacks:
                getattr(callback, hook)(*args)
        finally:
            keras.distribution.set_distribution(outer)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)
