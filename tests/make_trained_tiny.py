"""Writes `tests/data/trained_tiny/`: the A→B generator of a short run on the synthetic data
(`COMMAND`: 32×32, ngf 8, 2 blocks, 200 images, 4 epochs, InstaGAN's own discriminator, about 4
minutes on 2 cores; the default run until 2026-12-04, spelled out) and the part of its
`config.json` a run folder's readers use, for the tests that need a trained generator (the quality
guard of the reduced-precision exports: an untrained network's outputs are far more sensitive to
rounding than a trained one's).

    python tests/make_trained_tiny.py            # rewrites the folder
"""

import json
import os
import shutil
import tempfile

from keras_instagan import training

FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "trained_tiny")
COMMAND = (
    "python train.py --loadSizeH 36 --loadSizeW 36 --fineSizeH 32 --fineSizeW 32 --synthetic_count 200 "
    "--netD set --lambda_paint 0 --no_jit_compile --niter 2 --niter_decay 2 --eval_every 0"
)
KEPT = ("ngf", "ndf", "n_blocks", "ins_max", "ins_per", "fineSizeH", "fineSizeW", "synthetic", "seed", "netG")


def main():
    with tempfile.TemporaryDirectory() as checkpoints:
        argv = [*COMMAND.split()[2:], "--checkpoints_dir", checkpoints, "--name", "tiny"]
        _, run = training.train(training.parse_args(argv))
        config = {key: value for key, value in run.read_config().items() if key in KEPT}
        config["trained_with"] = COMMAND
        os.makedirs(FOLDER, exist_ok=True)
        shutil.copy(run.network("G_A"), os.path.join(FOLDER, "G_A.keras"))
    with open(os.path.join(FOLDER, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


if __name__ == "__main__":
    main()
