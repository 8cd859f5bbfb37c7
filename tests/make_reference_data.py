"""Writes `tests/data/official_tiny/`: official-format checkpoints of a tiny set generator and
discriminator (`torch_reference`, ngf = ndf = 4, 2 residual blocks), and what the PyTorch networks
output on fixed inputs, so that the conversion tests run without PyTorch.

    python tests/make_reference_data.py          # needs torch; rewrites the folder

`reference_outputs.npz` (NHWC float32; images in [-1, 1], masks −1 background / +1 instance):
- `generator_input_image` (1, 32, 48, 3), `generator_input_masks` (1, 32, 48, 3), slot 1 empty, and
  `generator_output` (1, 32, 48, 6): translated image then masks;
- `discriminator_input_image`, `discriminator_input_masks` (1, 32, 48, 2), slot 1 empty, and
  `discriminator_output` (1, 2, 4, 1) after one power iteration per spectral-norm layer, and
  `discriminator_first_u` (4,): the first layer's u after that iteration.
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from utils import random_image, random_masks  # noqa: E402

from keras_instagan import torch_reference  # noqa: E402

FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "official_tiny")
NGF, NDF, N_BLOCKS = 4, 4, 2


def nchw(image, masks):
    return torch.from_numpy(np.concatenate([image, masks], -1).transpose(0, 3, 1, 2).copy())


def make(folder):
    """Writes the two checkpoints and `reference_outputs.npz` into `folder`."""
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(0)
    generator = torch_reference.ResnetSetGenerator(NGF, N_BLOCKS)
    discriminator = torch_reference.NLayerSetDiscriminator(NDF)
    torch.save(generator.state_dict(), os.path.join(folder, "200_net_G_A.pth"))
    torch.save(discriminator.state_dict(), os.path.join(folder, "200_net_D_A.pth"))

    rng = np.random.default_rng(0)
    g_image, g_masks = random_image(rng, 1, 32, 48), random_masks(rng, 1, 32, 48, 3, empty={(0, 1)})
    d_image, d_masks = random_image(rng, 1, 32, 48), random_masks(rng, 1, 32, 48, 2, empty={(0, 1)})
    with torch.no_grad():
        g_out = generator(nchw(g_image, g_masks)).numpy().transpose(0, 2, 3, 1)
        d_out = discriminator(nchw(d_image, d_masks)).numpy().transpose(0, 2, 3, 1)
    np.savez_compressed(
        os.path.join(folder, "reference_outputs.npz"),
        generator_input_image=g_image,
        generator_input_masks=g_masks,
        generator_output=g_out,
        discriminator_input_image=d_image,
        discriminator_input_masks=d_masks,
        discriminator_output=d_out,
        discriminator_first_u=discriminator.feature_seg[0].module.weight_u.numpy().copy(),
    )


if __name__ == "__main__":
    make(FOLDER)
    print(f"wrote {FOLDER}")
