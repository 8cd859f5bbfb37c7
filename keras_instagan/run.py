"""The run directory: the contract between `train.py`, `keras_instagan.convert`, `translate`, the
exporter and `--continue_train`.

    <run>/config.json            the options that shape the networks and the data
    <run>/G_A.keras ... D_B.keras the networks (written at the end of training, or by the converter)
    <run>/state/                 resumable training state (written after every epoch by train.py)

    model = keras_instagan.InstaGAN.from_run("checkpoints/shapes_instagan")
    image, masks = model.translate(image, masks, "AtoB")
"""

import json
import os
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


def read_config(run_dir):
    """`<run_dir>/config.json` as a dict; a clear error when the folder is not a run directory."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"{run_dir}: run directory not found")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: not a run directory (train.py and keras_instagan.convert write one)"
        )
    with open(path, "rb") as f:
        try:
            config = json.loads(f.read())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object of options, got a {type(config).__name__}")
    return config


def saved_networks(run_dir):
    """`{name: network}` for each of G_A, G_B, D_A, D_B that the run directory holds as `.keras`."""
    import keras

    networks = {}
    for name in NETWORKS:
        path = os.path.join(run_dir, f"{name}.keras")
        if not os.path.exists(path):
            continue
        try:
            networks[name] = keras.saving.load_model(path, compile=False)
        except (ValueError, OSError, KeyError, zipfile.BadZipFile):  # Keras says "File not found"
            raise ValueError(f"{path}: not a readable .keras network (corrupt or truncated?)") from None
    return networks


def trained_directions(run_dir):
    """The directions ("AtoB", "BtoA") whose generator the run holds: G_A / G_B as `.keras`, or both
    in `state/` (a run without either translates with untrained networks, which nothing should score)."""
    if os.path.exists(os.path.join(run_dir, "state", "model.weights.h5")):
        return ["AtoB", "BtoA"]
    return [
        direction
        for direction, name in (("AtoB", "G_A"), ("BtoA", "G_B"))
        if os.path.exists(os.path.join(run_dir, f"{name}.keras"))
    ]


def _shape_keys(name):
    return ("ngf", "n_blocks") if name.startswith("G") else ("ndf", "n_layers")


def _merged(network):
    return " with merged masks" if getattr(network, "merge_masks", False) else ""


def load_networks(model, run_dir, saved=None):
    """Copy the run's `.keras` networks into `model` (an `InstaGAN`); returns their names.

    A network whose class (`netG`/`netD`), width or depth differs from `model`'s is an error naming
    both.
    """
    saved = saved_networks(run_dir) if saved is None else saved
    for name, network in saved.items():
        target = getattr(model, name)
        mismatch = [
            f"{k} {getattr(network, k)} (model: {getattr(target, k)})"
            for k in _shape_keys(name)
            if getattr(network, k) != getattr(target, k)
        ]
        if type(network) is not type(target) or getattr(network, "merge_masks", None) != getattr(
            target, "merge_masks", None
        ):
            mismatch.insert(
                0,
                f"a {network.__class__.__name__}{_merged(network)} (model: "
                f"{target.__class__.__name__}{_merged(target)}; see netG/netD)",
            )
        if mismatch:
            raise ValueError(f"{os.path.join(run_dir, name + '.keras')}: {', '.join(mismatch)}")
        target.set_weights(network.get_weights())
    return sorted(saved)


def load_run(run_dir, **overrides):
    """An `InstaGAN` with the run's networks (see `InstaGAN.from_run`)."""
    from keras_instagan.model import InstaGAN

    config = read_config(run_dir)
    options = {key: config.get(key, default) for key, default in MODEL_OPTIONS.items()}
    saved = saved_networks(run_dir)
    for name, network in saved.items():  # a converted run records widths only of what it holds
        options.update({k: getattr(network, k) for k in _shape_keys(name) if k not in config})
    options.update(overrides)
    model = InstaGAN(**options)
    if saved:
        load_networks(model, run_dir, saved)
        return model
    state = os.path.join(run_dir, "state", "model.weights.h5")
    if not os.path.exists(state):
        raise FileNotFoundError(
            f"{run_dir}: holds neither G_A.keras … D_B.keras nor state/model.weights.h5: nothing to load"
        )
    size = config.get("fineSizeH", 64), config.get("fineSizeW", 64)
    model.build((((1, *size, 3), (1, *size, options["ins_max"])),) * 2)
    model.compile()
    model.load_weights(state)
    return model
