"""Train InstaGAN.

    python train.py                      # the built-in synthetic shapes data, a small configuration
    python train.py --name shapes_big --ngf 32 --niter 20 --niter_decay 20
    python train.py --dataroot datasets/shp2gir_coco --name shp2gir   # the official folder layout
    python train.py --name shapes_cyclegan_seg --netG resnet_seg --netD basic --lambda_ctx 0  # a baseline
    python train.py --coco_annotations coco/annotations/instances_train2017.json \
        --coco_images coco/train2017 --classA sheep --classB giraffe --name shp2gir

Options keep the official names (github.com/sangwoomo/instagan). With real data (`--dataroot` or
`--coco_annotations`), unset options take the official COCO values (ngf 64, 9 blocks, load 220,
crop 200, 100 + 100 epochs). With neither, the run uses the built-in synthetic data set (ellipses ↔
squares) and, for every option left unset, a small configuration that shows learning on 2 CPU cores
within minutes (docs/benchmarks.md). The run directory `<checkpoints_dir>/<name>/` receives
`config.json`, `log.csv`, `samples/epoch_NNN.png`, resumable `state/` (continue a stopped run with
`--continue_train`), TensorBoard logs in `tensorboard/` when `tensorboard` is installed, and the final
`G_A.keras`, `G_B.keras`, `D_A.keras`, `D_B.keras`. The same run from Python: `keras_instagan.training`.

Several machines: start the same command on every worker with `--strategy multiworker --workers
host0:port,host1:port --worker_index i` (or a `TF_CONFIG` set by a cluster manager; on JAX, the
`KERAS_DISTRIBUTION_*` variables); worker 0 writes the run directory; restarting every worker after a
failure resumes from the last finished epoch (`keras_instagan.distributed`).
"""

import os
import sys
import time

START = time.perf_counter()


def main(argv=None):
    """Parse `argv`, train (`training.train`) and return the trained `InstaGAN`; a run that cannot
    start or go on ends the program with one line naming the cause."""
    from keras_instagan import training

    args = training.parse_args(argv, description=__doc__)
    try:
        return training.train(args, started=START).model
    except training.DataFileError as error:
        # os._exit, not sys.exit: the input pipeline's threads can keep the interpreter from ending.
        print(f"train.py: {error}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(1)
    except training.TrainingError as error:
        sys.exit(f"train.py: {error}")


def command():
    """The `instagan-train` console command: `main` on the process's arguments (its return value is
    for Python callers, not an exit status)."""
    main()


if __name__ == "__main__":
    main()
