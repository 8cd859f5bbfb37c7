"""Load the official InstaGAN PyTorch checkpoints into keras-instagan networks.

    python -m keras_instagan.convert --checkpoints_dir checkpoints/shp2gir_coco_instagan \\
        --epoch 200 --out runs/shp2gir_coco

reads `<epoch>_net_{G_A,G_B,D_A,D_B}.pth` (any subset: the generators alone are enough to translate)
and writes a run directory: `config.json` and `G_A.keras` … `D_B.keras`.

Files are read by `keras_instagan.pth`, without PyTorch: a checkpoint holding anything but tensors is
refused, never executed. Every tensor must be used and every shape must match, otherwise the error
lists what is missing, unexpected or misshapen. Widths and depths are inferred from the shapes.

Mapping (docs/official.md §4): the layers of our `Sequential` sub-networks sit at the same
indices as the official `nn.Sequential` ones, so `encoder_img.7.weight` is `encoder_img.layers[7]`;
`…N.conv_block.{1,5}` are a `ResnetBlock`'s `conv1`/`conv2`. Conv weights OIHW and transposed-conv
weights IOHW both become Keras kernels by `transpose(2, 3, 1, 0)`; a spectral-norm `weight_v` in the
official `(C_in, k, k)` order becomes our `(k, k, C_in)` order.

The official generator decides emptiness over the whole batch (it only runs at batch 1); at batch 1
that is what these networks do, so converted generators give the official outputs.

The official discriminator runs its shared mask branch once per non-empty mask, so the spectral-norm
vectors of that branch take one power iteration per mask; ours take one per call. With one instance
(or converged u, v, as in a trained checkpoint) the outputs are the same.
"""

import argparse
import os
import re
import sys

import numpy as np

from keras_instagan.networks import SetDiscriminator, SetGenerator
from keras_instagan.pth import read_state_dict
from keras_instagan.run import NETWORKS, RunDirectory


def load_state_dict(path):
    """The `{key: numpy array}` of an official `.pth` file (zip or legacy format), read without PyTorch
    and without executing any code (`keras_instagan.pth`)."""
    return read_state_dict(path)


def _conv(weight):
    return weight.transpose(2, 3, 1, 0)


def _generator_targets(model):
    """`{official key: (keras variable, transform)}` for a SetGenerator."""
    targets = {}
    for part in ("encoder_img", "encoder_seg", "decoder_img", "decoder_seg"):
        for index, layer in enumerate(getattr(model, part).layers):
            convs = {"": layer} if hasattr(layer, "kernel") else {}
            if hasattr(layer, "conv1"):
                convs = {".conv_block.1": layer.conv1, ".conv_block.5": layer.conv2}
            for suffix, conv in convs.items():
                targets[f"{part}.{index}{suffix}.weight"] = (conv.kernel, _conv)
                targets[f"{part}.{index}{suffix}.bias"] = (conv.bias, None)
    return targets


def _discriminator_targets(model):
    """`{official key: (keras variable, transform)}` for a SetDiscriminator."""

    def official_v(layer):
        k, channels = layer.kernel_size, layer.kernel.shape[2]
        return lambda v: v.reshape(channels, k, k).transpose(1, 2, 0).reshape(-1)

    targets = {}
    for part in ("feature_img", "feature_seg", "classifier"):
        for index, layer in enumerate(getattr(model, part).layers):
            if hasattr(layer, "u"):
                prefix = f"{part}.{index}.module"
                targets[f"{prefix}.weight_bar"] = (layer.kernel, _conv)
                targets[f"{prefix}.bias"] = (layer.bias, None)
                targets[f"{prefix}.weight_u"] = (layer.u, None)
                targets[f"{prefix}.weight_v"] = (layer.v, official_v(layer))
    return targets


def _assign(model, targets, state, source):
    missing = sorted(set(targets) - set(state))
    unexpected = sorted(set(state) - set(targets))
    misshapen = []
    for key in sorted(set(targets) & set(state)):
        variable, transform = targets[key]
        value = transform(state[key]) if transform else state[key]
        if tuple(value.shape) != tuple(variable.shape):
            misshapen.append(f"{key}: checkpoint {state[key].shape}, expected {tuple(variable.shape)}")
    if missing or unexpected or misshapen:
        lines = [f"missing: {k}" for k in missing] + [f"unexpected: {k}" for k in unexpected]
        raise ValueError(
            f"{source}: does not fit {type(model).__name__}:\n  "
            + "\n  ".join(lines + [f"misshapen: {m}" for m in misshapen])
        )
    for key, (variable, transform) in targets.items():
        variable.assign(np.asarray(transform(state[key]) if transform else state[key], "float32"))
    return model


def generator_from_state_dict(state, source="state_dict", name=None):
    """A `SetGenerator` holding an official `ResnetSetGenerator` state_dict; ngf and depth inferred."""
    if "encoder_img.1.weight" not in state:
        raise ValueError(f"{source}: no `encoder_img.1.weight`; not an official set generator.")
    ngf = state["encoder_img.1.weight"].shape[0]
    n_blocks = len({m.group(1) for k in state if (m := re.match(r"encoder_img\.(\d+)\.conv_block", k))})
    model = SetGenerator(ngf=ngf, n_blocks=n_blocks, name=name)
    return _assign(model, _generator_targets(model), state, source)


def discriminator_from_state_dict(state, source="state_dict", name=None):
    """A `SetDiscriminator` holding an official `NLayerSetDiscriminator` state_dict (u, v included)."""
    if "feature_img.0.module.weight_bar" not in state:
        raise ValueError(
            f"{source}: no `feature_img.0.module.weight_bar`; not an official set discriminator."
        )
    ndf = state["feature_img.0.module.weight_bar"].shape[0]
    n_layers = len([k for k in state if re.match(r"feature_img\.\d+\.module\.weight_bar$", k)])
    model = SetDiscriminator(ndf=ndf, n_layers=n_layers, name=name)
    return _assign(model, _discriminator_targets(model), state, source)


def convert(checkpoints_dir, epoch, out):
    """Convert `<epoch>_net_<X>.pth` files of `checkpoints_dir` into the run directory `out`."""
    found = {n: os.path.join(checkpoints_dir, f"{epoch}_net_{n}.pth") for n in NETWORKS}
    found = {n: p for n, p in found.items() if os.path.exists(p)}
    if not found:
        raise FileNotFoundError(f"{checkpoints_dir}: no {epoch}_net_{{G_A,G_B,D_A,D_B}}.pth files found.")
    if os.path.isdir(out) and os.listdir(out):
        raise ValueError(
            f"{out}: not empty; convert into a new folder (a run's networks, config and state "
            "must come from one source)"
        )
    config = {"converted_from": os.path.abspath(checkpoints_dir), "epoch": str(epoch)}
    models = {}  # all read and checked before anything is written: no half-written run
    for name, path in found.items():
        state = load_state_dict(path)
        if name.startswith("G"):
            models[name] = generator_from_state_dict(state, path, name=name)
            config.update(ngf=models[name].ngf, n_blocks=models[name].n_blocks)
        else:
            models[name] = discriminator_from_state_dict(state, path, name=name)
            config.update(ndf=models[name].ndf, n_layers=models[name].n_layers)
    run = RunDirectory(out)
    for name, written in zip(models, run.save_networks(models.values())):
        print(f"convert: {found[name]} -> {written}", flush=True)
    run.write_config(config)
    return sorted(found)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints_dir", required=True, help="folder with <epoch>_net_G_A.pth ...")
    p.add_argument("--epoch", default="latest", help="checkpoint epoch prefix (official: 200)")
    p.add_argument("--out", required=True, help="run directory to write")
    args = p.parse_args(argv)
    try:
        convert(args.checkpoints_dir, args.epoch, args.out)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"convert: {error}")


if __name__ == "__main__":
    main()
