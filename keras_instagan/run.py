"""The run directory, and `RunDirectory`, the one module that knows its files.

    <run>/config.json              the options that shape the networks and the data
    <run>/log.csv                  one row per epoch: losses, seconds, scores
    <run>/samples/epoch_NNN.png    sample grids
    <run>/state/model.weights.h5   resumable training state, with state/epoch.json (the finished
                                   epochs), written after every epoch
    <run>/judges/                  the domain classifiers of the scores in log.csv
    <run>/tensorboard/             TensorBoard logs, when tensorboard is installed
    <run>/backup/                  multi-worker backups (`keras.callbacks.BackupAndRestore`)
    <run>/G_A.keras ... D_B.keras  the networks (written at the end of training, or by the converter)
    <run>/epochs/NNN/              the networks after epoch NNN (`train.py --save_epoch_freq`), with
                                   config.json and log.csv: a run directory of its own
    <run>/exported/                the exporter's ONNX and LiteRT files (its default output)

`train.py`, the callbacks, `keras_instagan.convert`, the exporter, `evaluate.py` and
`InstaGAN.from_run` all go through `RunDirectory`:

    run = RunDirectory("checkpoints/shapes_instagan")
    run.read_config()["ins_per"], run.trained_directions(), run.log
"""

import csv
import json
import os
import shutil
import zipfile

NETWORKS = ("G_A", "G_B", "D_A", "D_B")
# config.json keys that InstaGAN takes, with the official values for runs that do not record them
# (a converted checkpoint knows its widths but not the training options).
MODEL_OPTIONS = {
    "ngf": 64,
    "ndf": 64,
    "n_blocks": 9,
    "n_layers": 3,
    "ins_max": 4,
    "ins_per": 2,
    "pool_size": 50,
    "seed": None,
    "netG": "set",
    "netD": "set",
}


def _shape_keys(name):
    return ("ngf", "n_blocks") if name.startswith("G") else ("ndf", "n_layers")


def _variant(network):
    """How a network differs from its class's plain form, in words ("" for none)."""
    if getattr(network, "merge_masks", False):
        return " with merged masks"
    return " seeing the masks' union" if getattr(network, "see_union", False) else ""


def _temporary(path, suffix=""):
    """Where `_replace_atomically` writes `path` before moving it there. `suffix` ends the name
    (Keras checks `.keras` and `.weights.h5`)."""
    return path + ".tmp" + suffix


def _remove(path):
    """Delete the file or folder `path`, if there is one."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def _replace_atomically(path, write, suffix=""):
    """`write(temporary_path)`, then move it onto `path`: a kill leaves the old file or the new one
    (a folder is removed just before the new one moves in; a kill between the two leaves the new one
    whole at its temporary path). What a killed save left at the temporary path is removed first."""
    temporary = _temporary(path, suffix)
    _remove(temporary)
    write(temporary)
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.replace(temporary, path)


class RunDirectory:
    """The files of one run directory (see the module docstring), by name.

    Args:
        path: the run directory; nothing is created until something is written.
    """

    # What train.py writes: a directory holding any of these holds a run. The last ones are what a
    # save killed halfway leaves (`_replace_atomically`; those of state/ lie inside it).
    ENTRIES = (
        "config.json",
        "log.csv",
        "state",
        "samples",
        "judges",
        "tensorboard",
        "backup",
        "exported",
        "epochs",
        *(f"{name}.keras" for name in NETWORKS),
        _temporary("config.json"),
        _temporary("judges"),
        *(_temporary(f"{name}.keras", ".keras") for name in NETWORKS),
    )

    def __init__(self, path):
        self.path = os.fspath(path)
        self.config = os.path.join(self.path, "config.json")
        self.log = os.path.join(self.path, "log.csv")
        self.samples = os.path.join(self.path, "samples")
        self.state = os.path.join(self.path, "state")
        self.judges = os.path.join(self.path, "judges")
        self.tensorboard = os.path.join(self.path, "tensorboard")
        self.backup = os.path.join(self.path, "backup")
        self.exported = os.path.join(self.path, "exported")
        self.epochs = os.path.join(self.path, "epochs")
        self._state_weights = os.path.join(self.state, "model.weights.h5")
        self._state_epochs = os.path.join(self.state, "epoch.json")

    def __repr__(self):
        return f"RunDirectory({self.path!r})"

    def network(self, name):
        """The `.keras` file of network `name` (G_A, G_B, D_A or D_B)."""
        if name not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}, got {name!r}")
        return os.path.join(self.path, f"{name}.keras")

    def existing_entries(self):
        """The `ENTRIES` present: empty for a folder that holds no run."""
        return [name for name in self.ENTRIES if os.path.exists(os.path.join(self.path, name))]

    def delete(self, entries):
        """Delete `entries` (names from `existing_entries`); anything else in the folder stays."""
        for name in entries:
            if name not in self.ENTRIES:
                raise ValueError(f"{name!r} is not an entry of a run directory")
            _remove(os.path.join(self.path, name))

    def read_config(self):
        """`config.json` as a dict; a clear error when the folder is not a run directory."""
        if not os.path.isdir(self.path):
            raise FileNotFoundError(f"{self.path}: run directory not found")
        if not os.path.exists(self.config):
            raise FileNotFoundError(
                f"{self.config} not found: not a run directory (train.py and keras_instagan.convert "
                "write one)"
            )
        with open(self.config, "rb") as f:
            try:
                config = json.loads(f.read())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise ValueError(f"{self.config}: not valid JSON ({error})") from None
        if not isinstance(config, dict):
            raise ValueError(
                f"{self.config}: expected a JSON object of options, got a {type(config).__name__}"
            )
        return config

    def write_config(self, config):
        os.makedirs(self.path, exist_ok=True)

        def write(path):
            with open(path, "w") as f:
                json.dump(config, f, indent=2)

        _replace_atomically(self.config, write)

    def read_log(self):
        """The rows of `log.csv` as dicts of strings (column: text), one per epoch."""
        if not os.path.exists(self.log):
            raise FileNotFoundError(f"{self.log} not found: not a train.py run directory")
        with open(self.log, newline="") as f:
            return list(csv.DictReader(f))

    def model_options(self, config=None, saved=None):
        """The `InstaGAN` arguments the run was made with: `config.json`'s, official values for those
        it does not record, widths and depths of a converted run from its `saved` networks."""
        config = self.read_config() if config is None else config
        options = {key: config.get(key, default) for key, default in MODEL_OPTIONS.items()}
        for name, network in (saved or {}).items():
            options.update({k: getattr(network, k) for k in _shape_keys(name) if k not in config})
        return options

    def saved_networks(self):
        """`{name: network}` for each of G_A, G_B, D_A, D_B that the run holds as `.keras`."""
        import keras

        import keras_instagan.networks  # noqa: F401  (registers the network classes with Keras)

        networks = {}
        for name in NETWORKS:
            path = self.network(name)
            if not os.path.exists(path):
                continue
            try:
                networks[name] = keras.saving.load_model(path, compile=False)
            except (ValueError, OSError, KeyError, zipfile.BadZipFile):  # Keras says "File not found"
                raise ValueError(f"{path}: not a readable .keras network (corrupt or truncated?)") from None
        return networks

    def load_generator(self, direction):
        """The generator of `direction` ("AtoB": G_A, "BtoA": G_B) from its `.keras` file."""
        import keras

        import keras_instagan.networks  # noqa: F401  (registers the network classes with Keras)

        name = {"AtoB": "G_A", "BtoA": "G_B"}.get(direction)
        if name is None:
            raise ValueError(f"direction must be AtoB or BtoA, got {direction!r}")
        path = self.network(name)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: the run holds no {direction} generator")
        return keras.saving.load_model(path, compile=False)

    def save_networks(self, networks):
        """Write each network as `<its name>.keras` (names from `NETWORKS`); returns the paths."""
        os.makedirs(self.path, exist_ok=True)
        paths = []
        for network in networks:
            path = self.network(network.name)
            _replace_atomically(path, network.save, ".keras")
            paths.append(path)
        return paths

    def save_judges(self, judges):
        """Write the scores' domain classifiers (`evaluation.Judges.save`) to `judges/`, whole or not
        at all: into `judges.tmp/`, then moved onto it."""
        _replace_atomically(self.judges, judges.save)

    def epoch_directory(self, epoch):
        """The run directory of the networks kept after `epoch` (1-based; `save_epoch`)."""
        return RunDirectory(os.path.join(self.epochs, f"{epoch:03d}"))

    def label(self):
        """The run's name in a table: its folder's name, or "<run>, epoch N" for a kept epoch."""
        folder, name = os.path.split(os.path.normpath(self.path))
        parent, epochs = os.path.split(folder)
        if epochs == "epochs" and name.isdigit():
            return f"{os.path.basename(parent)}, epoch {int(name)}"
        return name

    def save_epoch(self, networks, epoch):
        """Keep `networks` (as `save_networks`) after `epoch` in `epoch_directory(epoch)`, with this
        run's `config.json` and `log.csv` as they are now; returns that `RunDirectory`."""
        kept = self.epoch_directory(epoch)
        os.makedirs(kept.path, exist_ok=True)
        for source, target in ((self.config, kept.config), (self.log, kept.log)):
            if os.path.exists(source):
                shutil.copyfile(source, target)
        kept.save_networks(networks)
        return kept

    def trained_directions(self):
        """The directions ("AtoB", "BtoA") whose generator the run holds: G_A / G_B as `.keras`, or
        both in `state/` (a run without either translates with untrained networks, which nothing
        should score)."""
        if os.path.exists(self._state_weights):
            return ["AtoB", "BtoA"]
        return [
            direction
            for direction, name in (("AtoB", "G_A"), ("BtoA", "G_B"))
            if os.path.exists(self.network(name))
        ]

    def holds_discriminators(self):
        """Whether `InstaGAN.from_run` loads trained discriminators: D_A.keras and D_B.keras, or, for
        a run with no `.keras` network at all, `state/`."""
        saved = {name for name in NETWORKS if os.path.exists(self.network(name))}
        if saved:
            return {"D_A", "D_B"} <= saved
        return os.path.exists(self._state_weights)

    def load_networks(self, model, saved=None):
        """Copy the run's `.keras` networks into `model` (an `InstaGAN`); returns their names.

        A network whose class (`netG`/`netD`), width or depth differs from `model`'s is an error
        naming both.
        """
        saved = self.saved_networks() if saved is None else saved
        for name, network in saved.items():
            target = getattr(model, name)
            mismatch = [
                f"{k} {getattr(network, k)} (model: {getattr(target, k)})"
                for k in _shape_keys(name)
                if getattr(network, k) != getattr(target, k)
            ]
            if type(network) is not type(target) or _variant(network) != _variant(target):
                mismatch.insert(
                    0,
                    f"a {network.__class__.__name__}{_variant(network)} (model: "
                    f"{target.__class__.__name__}{_variant(target)}; see netG/netD)",
                )
            if mismatch:
                raise ValueError(f"{self.network(name)}: {', '.join(mismatch)}")
            target.set_weights(network.get_weights())
        return sorted(saved)

    def has_state(self):
        """Whether `state/` holds a finished epoch to resume from."""
        return os.path.exists(self._state_epochs) and os.path.exists(self._state_weights)

    def save_state(self, model, epochs_done):
        """Write `model`'s full state (networks, spectral-norm vectors, image pools, optimizers) and
        the number of finished epochs, each replaced atomically (weights first)."""
        os.makedirs(self.state, exist_ok=True)
        _replace_atomically(self._state_weights, model.save_weights, ".weights.h5")

        def write(path):
            with open(path, "w") as f:
                json.dump({"epochs_done": int(epochs_done)}, f)

        _replace_atomically(self._state_epochs, write)

    def load_state_weights(self, model):
        """Load `state/`'s weights into a built and compiled `model`."""
        if not os.path.exists(self._state_weights):
            raise FileNotFoundError(f"{self._state_weights} not found: the run holds no saved state")
        model.load_weights(self._state_weights)

    def restore_state(self, model):
        """Load `state/` into a built and compiled `model`; returns the finished epochs."""
        if not self.has_state():
            raise FileNotFoundError(
                f"no saved state in {self.state} (expected epoch.json and model.weights.h5, written "
                "after each finished epoch)"
            )
        self.load_state_weights(model)
        with open(self._state_epochs) as f:
            return int(json.load(f)["epochs_done"])
