"""A training run from its options: what `train.py` does, as a library function.

    from keras_instagan import training

    options = training.options(name="shapes_demo", niter=2, niter_decay=2)  # train.py's defaults
    model, run = training.train(options)       # the trained InstaGAN and its RunDirectory

`options` takes `train.py`'s options by name (`python train.py --help`); `train` loads the data
(the built-in synthetic shapes, the official folder layout or COCO), writes the run directory (see
`keras_instagan.run`), resumes it (`continue_train=True`), wires the callbacks and the
`tf.distribute` strategy, and fits. A run that cannot start or go on raises `TrainingError` naming
the option, file or folder.

With real data (`dataroot` or `coco_annotations`), unset options take the official COCO values
(`OFFICIAL`: ngf 64, 9 blocks, load 220, crop 200, 100 + 100 epochs); with neither, the run uses the
built-in synthetic data set (ellipses ↔ squares) and the small configuration `SYNTHETIC`, which
shows learning on 2 CPU cores within minutes (its time: docs/benchmarks.md).
"""

import argparse
import contextlib
import importlib
import os
import re
import sys
import time
from collections import namedtuple

from keras_instagan.run import RunDirectory

OFFICIAL = {
    "ngf": 64,
    "ndf": 64,
    "n_blocks": 9,
    "loadSizeH": 220,
    "loadSizeW": 220,
    "fineSizeH": 200,
    "fineSizeW": 200,
    "niter": 100,
    "niter_decay": 100,
    "name": "experiment",
    "eval_every": 0,
    "save_epoch_freq": 5,
    "lr": 2e-4,
    "netD": "set",
    "lambda_paint": 0.0,
    "jit_compile": False,
}
SYNTHETIC = {
    "ngf": 8,
    "ndf": 8,
    "n_blocks": 2,
    "loadSizeH": 72,
    "loadSizeW": 72,
    "fineSizeH": 64,
    "fineSizeW": 64,
    "niter": 2,
    "niter_decay": 1,
    "name": "shapes_instagan",
    "eval_every": 1,
    "save_epoch_freq": 0,
    "lr": 1e-3,
    "netD": "set_image",
    "lambda_paint": 3.0,
    "jit_compile": True,
    "synthetic_count": 640,
}
# Held-out samples per domain behind the epoch grids and their `bg_err_A/B` (the first of --eval_samples).
GRID_SAMPLES = 16
# Options that fix the networks or the data layout: a continued run must keep them.
ARCHITECTURE = (
    "ngf",
    "ndf",
    "n_blocks",
    "ins_max",
    "ins_per",
    "fineSizeH",
    "fineSizeW",
    "pool_size",
    "netG",
    "netD",
    "synthetic",
)


# Lower bounds of options (each must be at least its bound); checked before anything is written.
AT_LEAST = {
    "ngf": 1,
    "ndf": 1,
    "n_blocks": 1,
    "ins_max": 1,
    "ins_per": 1,
    "batch_size": 1,
    "pool_size": 0,
    "niter": 0,
    "niter_decay": 0,
    "synthetic_count": 1,
    "eval_samples": 1,
    "eval_every": 0,
    "save_epoch_freq": 0,
    "judge_count": 2,
    "grid_rows": 1,
    "coco_image_size": 1,
    "min_area": 0.0,
    "lambda_A": 0.0,
    "lambda_B": 0.0,
    "lambda_idt": 0.0,
    "lambda_ctx": 0.0,
    "lambda_paint": 0.0,
    "lambda_mismatch": 0.0,
    "beta1": 0.0,
}


class TrainingError(Exception):
    """A run that cannot start or go on; the message names the option, file or folder."""


class DataFileError(TrainingError):
    """A data file that failed to load mid-epoch; the run's `state/` holds the last finished epoch.
    The input pipeline's threads may be left running: a program should end after it."""


Trained = namedtuple("Trained", ["model", "run"])


def parser(description=__doc__):
    """`train.py`'s argument parser (options unset on the command line are None where a profile,
    `OFFICIAL` or `SYNTHETIC`, fills them in `complete`)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--dataroot",
        help="data in the official folder layout (<phase>A/, <phase>A_seg/, "
        "<phase>B/, <phase>B_seg/); omit for the built-in synthetic data",
    )
    p.add_argument("--phase", default="train", help="folder prefix under --dataroot (train, test, sample)")
    p.add_argument(
        "--eval_phase",
        help="--dataroot: folder prefix of held-out images (e.g. test) for the epoch grids and the "
        "--eval_every scores, which then also log the discriminators' memorisation; default: the "
        "first training images",
    )
    p.add_argument("--coco_annotations", help="read a COCO instances JSON directly instead of --dataroot")
    p.add_argument("--coco_images", help="the image folder of --coco_annotations (e.g. coco/train2017)")
    p.add_argument("--classA", help="COCO category of domain A (with --coco_annotations), e.g. sheep")
    p.add_argument("--classB", help="COCO category of domain B (with --coco_annotations), e.g. giraffe")
    p.add_argument(
        "--coco_image_size",
        type=int,
        default=256,
        help="COCO: shorter side resized to this and centre-cropped first (official 256)",
    )
    p.add_argument("--no_crowd", action="store_true", help="COCO: drop crowd annotations")
    p.add_argument("--min_area", type=float, default=0.0, help="COCO: drop smaller instances (pixels)")
    p.add_argument(
        "--cache",
        action="store_true",
        help="keep decoded images in memory after the first epoch (real data only)",
    )
    p.add_argument("--name", help="run name (default: shapes_instagan / experiment)")
    p.add_argument("--checkpoints_dir", default="./checkpoints")
    p.add_argument("--ins_max", type=int, default=4, help="mask slots per image, largest first")
    p.add_argument("--ins_per", type=int, default=2, help="masks translated per sequential step")
    p.add_argument("--ngf", type=int, help="generator width (official 64)")
    p.add_argument("--ndf", type=int, help="discriminator width (official 64)")
    p.add_argument("--n_blocks", type=int, help="residual blocks per generator encoder (official 9)")
    p.add_argument(
        "--netG",
        choices=("set", "resnet", "resnet_seg"),
        default="set",
        help="generator: set (InstaGAN), resnet (CycleGAN baseline), resnet_seg (CycleGAN+Seg: "
        "the masks merged into one extra channel); the baselines translate in one step",
    )
    p.add_argument(
        "--netD",
        choices=("set", "set_union", "set_image", "basic"),
        help="discriminator: set (InstaGAN), set_union (InstaGAN's, its image stream also seeing the "
        "union of the masks), set_image (InstaGAN's beside an image-only PatchGAN; both this "
        "library's variants) or basic (CycleGAN's PatchGAN); default: set on real data, set_image "
        "on the synthetic data",
    )
    p.add_argument("--lambda_A", type=float, default=10.0, help="cycle weight A→B→A")
    p.add_argument("--lambda_B", type=float, default=10.0, help="cycle weight B→A→B")
    p.add_argument("--lambda_idt", type=float, default=1.0, help="identity weight, times lambda_A/B")
    p.add_argument("--lambda_ctx", type=float, default=1.0, help="context weight, times lambda_A/B")
    p.add_argument(
        "--lambda_paint",
        type=float,
        help="weight of the picture-follows-masks term (losses.paint_loss), times lambda_A/B; "
        "this library's addition; default: 0 (off, as in the paper) on real data, 3 on the "
        "synthetic data; InstaGAN's set generator only",
    )
    p.add_argument(
        "--ctx_reference",
        choices=("step", "original"),
        default="step",
        help="what a sequential step's context loss keeps the background of: step (the official "
        "code: the step's input, the previous step's output) or original (this library's option: the "
        "original image, outside every mask translated so far)",
    )
    p.add_argument(
        "--lambda_mismatch",
        type=float,
        default=0.0,
        help="weight of the discriminators' third term: the real source image under its translated "
        "masks counts as fake; this library's addition, 0 (off) as in the paper",
    )
    p.add_argument(
        "--lr",
        type=float,
        help="Adam learning rate (official 2e-4; the synthetic default 1e-3 keeps the "
        "background better in the same epochs, docs/quality.md)",
    )
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--niter", type=int, help="epochs at the initial learning rate (official 100)")
    p.add_argument("--niter_decay", type=int, help="epochs of linear decay to zero (official 100)")
    p.add_argument("--batch_size", type=int, default=1, help="global batch (split across replicas)")
    p.add_argument("--pool_size", type=int, default=50, help="image pool size, 0 for none")
    p.add_argument("--loadSizeH", type=int)
    p.add_argument("--loadSizeW", type=int)
    p.add_argument("--fineSizeH", type=int, help="training crop height, a multiple of 4")
    p.add_argument("--fineSizeW", type=int, help="training crop width, a multiple of 4")
    p.add_argument("--no_flip", action="store_true", help="no random horizontal flips")
    p.add_argument("--continue_train", action="store_true", help="resume the run from its state/")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in a run directory that already holds a run (its log, state, "
        "samples, judges and networks are deleted first)",
    )
    p.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multiworker"),
        default="default",
        help="mirrored: every local device (TensorFlow: tf.distribute.MirroredStrategy over the GPUs; "
        "JAX: keras.distribution.DataParallel); multiworker: several machines (TensorFlow: "
        "MultiWorkerMirroredStrategy over the cluster in TF_CONFIG or --workers; JAX: one process "
        "per machine joined by jax.distributed, from --workers or KERAS_DISTRIBUTION_*)",
    )
    p.add_argument(
        "--workers",
        help="multiworker: host:port of every worker, comma-separated, the same "
        "list on each; writes TF_CONFIG with --worker_index (JAX: the first is the coordinator)",
    )
    p.add_argument(
        "--worker_index", type=int, help="multiworker: this worker's place in --workers (0 = chief)"
    )
    p.add_argument(
        "--jit_compile",
        action="store_const",
        const=True,
        help="TensorFlow: compile the network calls with XLA: faster steps, a longer first step "
        "(--strategy default only; default: on for the synthetic data, off on real data)",
    )
    p.add_argument(
        "--no_jit_compile",
        dest="jit_compile",
        action="store_const",
        const=False,
        help="TensorFlow: run the network calls without XLA",
    )
    p.add_argument(
        "--xla_forms",
        choices=("auto", "on", "off"),
        default="auto",
        help="the convolution forms of the XLA programs (InstaGAN.compile(xla_forms=...)): on, off "
        "(XLA's own convolutions: shorter compilation, slower steps at large widths) or auto "
        "(default: off on TensorFlow below ngf and ndf 16, else on)",
    )
    p.add_argument(
        "--compilation_cache",
        help="JAX: keep the compiled training program in this folder (JAX's persistent compilation "
        "cache), so that a resumed or repeated run skips most of its first step's compilation "
        "(default: .jax_cache in --checkpoints_dir; 'none' to keep nothing)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--synthetic_count",
        type=int,
        help=f"synthetic images per domain (without --dataroot; default {SYNTHETIC['synthetic_count']})",
    )
    p.add_argument(
        "--synthetic",
        choices=("ellipses_squares", "triangles_crosses"),
        default="ellipses_squares",
        help="the synthetic pair (without --dataroot): A ↔ B shapes",
    )
    p.add_argument(
        "--eval_samples",
        type=int,
        default=64,
        help="fixed held-out samples per domain for the --eval_every scores (the first 16 "
        "also for the epoch grids and bg_err_A/B)",
    )
    p.add_argument(
        "--eval_every",
        type=int,
        help="score the run every K epochs and after the last (shape, classification, "
        "FID, background error; columns of log.csv); 0 for never (default: 1 on the "
        "synthetic data, 0 on real data)",
    )
    p.add_argument(
        "--save_epoch_freq",
        type=int,
        help="keep the networks of every K-th epoch in <run>/epochs/NNN/, each a run directory "
        "that evaluate.py and the exporter take; 0 for never (default: 5 on real data, "
        "as the official code, 0 on the synthetic data)",
    )
    p.add_argument(
        "--judge_count",
        type=int,
        default=400,
        help="--eval_every: real images per domain the domain classifiers learn from",
    )
    p.add_argument("--grid_rows", type=int, default=3, help="samples per domain in the epoch grids")
    return p


def parse_args(argv=None, description=__doc__):
    """Options from the command line (`argv`), completed and checked; a bad option ends the program
    with argparse's usage message."""
    p = parser(description)
    args = p.parse_args(argv)
    try:
        complete(args)
    except ValueError as error:
        p.error(str(error))
    return args


def options(**overrides):
    """Options as `train.py` takes them, from keyword arguments (`name="x"`, `niter=2`, ...):
    the command line's defaults, then the profile's (`OFFICIAL` or `SYNTHETIC`), checked. An unknown
    name is a `TypeError`, a value out of range a `ValueError`."""
    args = parser().parse_args([])
    unknown = sorted(set(overrides) - set(vars(args)))
    if unknown:
        raise TypeError(f"unknown training options {unknown} (see python train.py --help)")
    for key, value in overrides.items():
        setattr(args, key, value)
    return complete(args)


def complete(args):
    """Fill the options the profile sets and check them all; a `ValueError` names the first bad one."""
    if args.dataroot and args.coco_annotations:
        raise ValueError("give either --dataroot or --coco_annotations, not both")
    if args.coco_annotations and not (args.coco_images and args.classA and args.classB):
        raise ValueError("--coco_annotations needs --coco_images, --classA and --classB")
    profile = OFFICIAL if args.dataroot or args.coco_annotations else SYNTHETIC
    if args.jit_compile is None and args.strategy != "default":
        args.jit_compile = False
    for key, value in profile.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    check_ranges(args)
    for key in ("fineSizeH", "fineSizeW"):
        if getattr(args, key) % 4:
            raise ValueError(
                f"--{key} {getattr(args, key)} must be a multiple of 4 (the generator halves it twice)"
            )
        if getattr(args, key) < 24:
            raise ValueError(
                f"--{key} {getattr(args, key)} must be at least 24 (the discriminator's three "
                "stride-2 layers and final 4×4 convolutions)"
            )
    if args.loadSizeH < args.fineSizeH or args.loadSizeW < args.fineSizeW:
        raise ValueError(
            "--loadSizeH/W must be at least --fineSizeH/W (the crop is taken from the loaded image)"
        )
    if args.eval_phase is not None and not args.dataroot:
        raise ValueError(
            "--eval_phase needs --dataroot (the synthetic data's held-out samples are always fresh; "
            "COCO runs score their first training images)"
        )
    if args.eval_phase is not None and args.eval_phase == args.phase:
        raise ValueError(f"--eval_phase {args.eval_phase} is the training --phase: give held-out images")
    if args.continue_train and args.overwrite:
        raise ValueError("give either --continue_train or --overwrite, not both")
    if args.workers and args.strategy != "multiworker":
        raise ValueError("--workers needs --strategy multiworker")
    if args.workers and args.worker_index is None:
        raise ValueError("--workers needs --worker_index (this worker's place in the list, 0 = chief)")
    if args.ins_max % args.ins_per:
        raise ValueError(f"--ins_max {args.ins_max} must be a multiple of --ins_per {args.ins_per}")
    return args


def check_ranges(args):
    """A `ValueError` naming the first option outside its range (`AT_LEAST`, `--lr` > 0, `--beta1` < 1,
    at least one epoch)."""
    for key, bound in AT_LEAST.items():
        value = getattr(args, key)
        if value is None:  # an option of the other profile (--synthetic_count on real data)
            continue
        if not value >= bound:  # NaN fails too
            raise ValueError(f"--{key} {value}: expected at least {bound}")
    if not 0 < args.lr < float("inf"):
        raise ValueError(f"--lr {args.lr}: expected a positive learning rate (official 2e-4)")
    if not args.beta1 < 1:
        raise ValueError(f"--beta1 {args.beta1}: expected below 1 (official 0.5)")
    if args.niter + args.niter_decay < 1:
        raise ValueError("--niter + --niter_decay is 0: nothing to train")
    if args.grid_rows > args.eval_samples:
        raise ValueError(f"--grid_rows {args.grid_rows}: expected at most --eval_samples {args.eval_samples}")


def load_data(args):
    """Both domains (NumPy arrays or file-backed `InstanceDomain`s at load size), fixed samples at
    crop size for the epoch grids and scores (for real data the first images of each domain of
    `--eval_phase`, else of the training images), and a function giving the images the domain
    classifiers of `--eval_every` learn from."""
    if args.dataroot or args.coco_annotations:
        return load_real_data(args)
    from keras_instagan.data import shapes

    if args.loadSizeH != args.loadSizeW or args.fineSizeH != args.fineSizeW:
        raise TrainingError("the synthetic data are square; give equal H and W sizes.")

    def draw(count, size, seed):
        return shapes.load(count, size, args.ins_max, seed=seed, pair=args.synthetic)

    domains = draw(args.synthetic_count, args.loadSizeH, args.seed)
    held_out = draw(args.eval_samples, args.fineSizeH, args.seed + 10_000)
    return domains, held_out, lambda: draw(args.judge_count, args.fineSizeH, args.seed + 20_000)


def load_real_data(args):
    from keras_instagan.data import CocoDomain
    from keras_instagan.data.coco import load_annotations

    size = (args.loadSizeH, args.loadSizeW)
    try:
        if args.dataroot:
            train = _folder_domains(args, args.phase, size)
        else:
            annotations = load_annotations(args.coco_annotations)
            train = tuple(
                CocoDomain(
                    args.coco_annotations,
                    args.coco_images,
                    category,
                    size,
                    args.ins_max,
                    include_crowd=not args.no_crowd,
                    min_area=args.min_area,
                    image_size=args.coco_image_size,
                    annotations=annotations,
                )
                for category in (args.classA, args.classB)
            )
        fine = (args.fineSizeH, args.fineSizeW)
        shown = train if args.eval_phase is None else _folder_domains(args, args.eval_phase, size)
        held_out = tuple(d.resized(fine).load_all(args.eval_samples) for d in shown)
    except (ValueError, ImportError) as error:
        raise TrainingError(str(error)) from None
    return train, held_out, lambda: tuple(d.resized(fine).load_all(args.judge_count) for d in train)


def _folder_domains(args, phase, size):
    from keras_instagan.data import FolderDomain

    return tuple(FolderDomain(args.dataroot, phase, side, size, args.ins_max) for side in "AB")


def training_samples(args, domain_a, domain_b):
    """The first `--eval_samples` training images of each domain at the fine size, prepared as the
    held-out samples are (synthetic: centre crops; folder layout: resized), for the discriminators'
    memorisation in `log.csv`; None for real data without `--eval_phase`, whose held-out samples are
    training images too."""
    size = (args.fineSizeH, args.fineSizeW)
    if args.dataroot and args.eval_phase is not None:
        return {
            side: d.resized(size).load_all(args.eval_samples) for side, d in zip("AB", (domain_a, domain_b))
        }
    if args.dataroot or args.coco_annotations:
        return None
    from keras_instagan.data.sampling import centre_crop

    return {
        side: centre_crop(*(x[: args.eval_samples] for x in d), size)
        for side, d in zip("AB", (domain_a, domain_b))
    }


def start_judges(args, run, judge_data):
    """The `evaluation.Judges` of `--eval_every`, as a function that returns them at the first
    evaluation: the run's own from its `judges/` when it has them (a continued run keeps scoring with
    the same classifiers), else trained on `judge_data()` and saved there. They learn in a child
    process started now, while this one traces and compiles its first training steps (on COCO data,
    whose annotations the child would load a second time, and where the child fails, in this
    process at the first evaluation)."""
    import multiprocessing

    from keras_instagan.data import shapes
    from keras_instagan.evaluation import Judges

    target_shapes = None if args.dataroot or args.coco_annotations else shapes.domain_shapes(args.synthetic)
    if Judges.saved_in(run.judges):
        judges = Judges.load(run.judges, target_shapes)
        return lambda: judges
    child = None
    if not args.coco_annotations:
        child = multiprocessing.get_context("spawn").Process(
            target=_train_judges_in_child, args=(args, run), name="judges", daemon=True
        )
        child.start()

    def ready():
        if child is not None:
            child.join()
        if not Judges.saved_in(run.judges):
            if child is not None:
                print(
                    f"training: the domain classifiers' process ended with exit code {child.exitcode}; "
                    "training them here",
                    flush=True,
                )
            train_judges_into(args, run, judge_data)
        return Judges.load(run.judges, target_shapes)

    return ready


def _train_judges_in_child(args, run):
    """`train_judges_into` at a lower scheduling priority (where the system has one), so that the
    run's own tracing and compilation come first on a busy CPU."""
    if hasattr(os, "nice"):
        os.nice(10)
    train_judges_into(args, run)


def train_judges_into(args, run, judge_data=None):
    """Train the domain classifiers of `--eval_every` on `judge_data()` (by default `load_data`'s,
    drawn again from `args`) and save them in the run's `judges/` (`RunDirectory.save_judges`)."""
    from keras_instagan.evaluation import train_judges

    start = time.perf_counter()
    if judge_data is None:
        judge_data = load_data(args)[2]
    run.save_judges(train_judges(dict(zip("AB", judge_data()))))
    print(
        f"training: domain classifiers for the scores trained in {time.perf_counter() - start:.0f} s "
        f"({run.judges})",
        flush=True,
    )


def data_size(domain):
    return len(domain) if hasattr(domain, "load") else len(domain[0])


def check_continued_config(run, config):
    """The saved `config.json` of the run `continue_train` resumes; an error naming each option
    (`ARCHITECTURE`) that would change its networks or data."""
    if not os.path.exists(run.config):
        raise TrainingError(f"--continue_train but {run.config} does not exist; start the run without it.")
    try:
        saved = run.read_config()
    except ValueError as error:
        raise TrainingError(f"--continue_train: {error}") from None
    changed = [
        f"--{k}: saved {saved[k]}, now {config[k]}"
        for k in ARCHITECTURE
        if k in saved and saved[k] != config[k]
    ]
    if changed:
        raise TrainingError(
            "--continue_train with options that change the networks or data:\n  " + "\n  ".join(changed)
        )
    return saved


def resume(model, run):
    """The epoch to continue from: the run's last `state/`, or, for a run without one (a converted
    official checkpoint), its `.keras` networks with fresh optimizers and image pools from epoch 1."""
    if run.has_state():
        return run.restore_state(model)
    try:
        names = run.load_networks(model)
    except ValueError as error:
        raise TrainingError(f"--continue_train: {error}") from None
    if not names:
        raise TrainingError(f"--continue_train but {run.path} holds neither state/ nor G_A.keras … D_B.keras")
    print(
        f"training: no state/ in {run.path}: starting from its networks {', '.join(names)} with fresh "
        "optimizers and image pools, at epoch 1",
        flush=True,
    )
    return 0


class OneDevice:
    """The strategy of a backend without `tf.distribute` (JAX, PyTorch): one device, no scope."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()


class JaxDataParallel:
    """`--strategy mirrored` or `multiworker` on JAX: `keras.distribution.DataParallel` over every
    device of every process (`multiworker`: the processes joined first, `distributed.join_jax_processes`).

    Inside `scope()` the model's variables are created replicated and `fit` splits each global batch
    across the devices along the batch axis; the iteration stays one jitted program, in which XLA adds
    the cross-device sums, so the update is the one device's at the same global batch. Each process
    feeds its own slice of the global batch (`shard`, for `UnpairedSequence`); process 0 is the chief.
    """

    def __init__(self, batch_size, processes=None):
        import jax
        import keras

        self.shard = processes or (0, 1)
        devices = jax.devices()
        if batch_size % len(devices):
            where = f"{self.shard[1]} processes' " if self.shard[1] > 1 else "local "
            raise TrainingError(
                f"--strategy: --batch_size {batch_size} must be a multiple of the {len(devices)} "
                f"{where}JAX devices"
            )
        self.distribution = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
        self.num_replicas_in_sync = len(devices)

    def scope(self):
        return self.distribution.scope()


def fit_scope(strategy):
    """What `fit` runs inside: JAX's data parallelism shards each batch inside its scope; a
    `tf.distribute` strategy's scope must stay out, since a variable created there by a callback
    (saving weights creates some) is initialised by a collective broadcast that the workers without
    that callback (all but the chief) never join, and the chief waits for them."""
    return strategy.scope() if isinstance(strategy, JaxDataParallel) else contextlib.nullcontext()


def make_strategy(args):
    """The strategy of `--strategy` (`tf.distribute` on TensorFlow, `JaxDataParallel` for `mirrored` and
    `multiworker` on JAX, `OneDevice` otherwise) and whether this process writes the run directory."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax" and args.strategy != "default":
        processes = None
        if args.strategy == "multiworker":
            from keras_instagan import distributed

            try:
                workers = args.workers.split(",") if args.workers else None
                processes = distributed.join_jax_processes(workers, args.worker_index)
            except (ValueError, RuntimeError) as error:
                raise TrainingError(
                    f"--strategy multiworker on JAX: {error} (give --workers host:port,... and "
                    "--worker_index i, or the KERAS_DISTRIBUTION_* variables)"
                ) from None
        strategy = JaxDataParallel(args.batch_size, processes)
        return strategy, strategy.shard[0] == 0
    if backend != "tensorflow":
        if args.strategy != "default":
            raise TrainingError(
                f"--strategy {args.strategy} needs the TensorFlow or JAX backend; "
                f"KERAS_BACKEND is {backend!r}"
            )
        return OneDevice(), True
    import tensorflow as tf

    if args.strategy != "multiworker":
        return (
            tf.distribute.MirroredStrategy() if args.strategy == "mirrored" else tf.distribute.get_strategy()
        ), True
    from keras_instagan import distributed

    try:
        if args.workers:
            os.environ["TF_CONFIG"] = distributed.tf_config(args.workers.split(","), args.worker_index)
        strategy = distributed.multiworker_strategy()
        return strategy, distributed.is_chief()
    except ValueError as error:
        raise TrainingError(str(error)) from None


def make_dataset(args, domain_a, domain_b, shard=None):
    """The training batches: a `tf.data.Dataset` on TensorFlow, an `UnpairedSequence` elsewhere (with
    `shard` `(process index, process count)`, this process's slice of every global batch)."""
    import keras

    options = {
        "batch_size": args.batch_size,
        "seed": args.seed,
        "crop": (args.fineSizeH, args.fineSizeW),
        "flip": not args.no_flip,
    }
    if keras.backend.backend() != "tensorflow":
        from keras_instagan.data import UnpairedSequence

        return UnpairedSequence(domain_a, domain_b, shard=shard, **options)
    from keras_instagan.data import unpaired_dataset

    cache = "" if args.cache and (args.dataroot or args.coco_annotations) else None
    return unpaired_dataset(domain_a, domain_b, cache=cache, **options)


def pipeline_errors():
    """The errors a data file's `ValueError` reaches `fit` as: TensorFlow's `OpError` from the
    `tf.data` pipeline (empty elsewhere, where the `ValueError` itself arrives)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return ()
    import tensorflow as tf

    return (tf.errors.OpError,)


def data_file_error(error, run):
    """The `DataFileError` inside a TensorFlow error from the input pipeline (a data file's
    `ValueError` raised by the loader), or None for any other error."""
    found = re.search(r"ValueError: ([^\n]+)", str(error))
    if found is None:
        return None
    return DataFileError(
        f"{found[1]} (stopped; {run.state} holds the last finished epoch: fix or remove the file and "
        "resume with --continue_train)"
    )


def train(args, started=None):
    """Train the run `args` describes (from `options` or `parse_args`); returns `Trained(model, run)`:
    the trained `InstaGAN` and its `RunDirectory`.

    Bad options, data or run folders raise `TrainingError` before anything is written (a folder that
    already holds a run needs `continue_train` or `overwrite`). `started` is the `time.perf_counter()`
    the first step's time is counted from (default: now).
    """
    started = time.perf_counter() if started is None else started
    strategy, chief = make_strategy(args)  # first: a multi-worker strategy must precede any TF op
    import keras

    if keras.backend.backend() == "jax" and args.compilation_cache != "none":
        from keras_instagan.trainers.jax import use_compilation_cache

        cache = use_compilation_cache(
            args.compilation_cache or os.path.join(args.checkpoints_dir, ".jax_cache")
        )
        print(f"training: JAX's compiled programs are kept in {cache} (--compilation_cache)", flush=True)

    import keras_instagan
    from keras_instagan import callbacks
    from keras_instagan.model import InstaGAN

    run = RunDirectory(os.path.join(args.checkpoints_dir, args.name))
    config = dict(vars(args))
    config["versions"] = {
        "keras_instagan": keras_instagan.__version__,
        "keras": keras.__version__,
        keras.backend.backend(): importlib.import_module(keras.backend.backend()).__version__,
    }
    backup_dir, restarted = None, False
    if args.strategy == "multiworker" and keras.backend.backend() == "tensorflow":
        from keras_instagan import distributed

        backup_dir = distributed.backup_dir(run.backup)
        restarted = distributed.has_backup(backup_dir)
    if args.continue_train:
        saved = check_continued_config(run, config)
        if "converted_from" in saved:
            config["converted_from"] = saved["converted_from"]
    found = run.existing_entries() if chief and not restarted and not args.continue_train else []
    if found and not args.overwrite:
        raise TrainingError(
            f"{run.path} already holds a run ({', '.join(found)}); continue it with --continue_train, "
            "start over with --overwrite, or choose another --name."
        )

    keras.utils.set_random_seed(args.seed)
    (domain_a, domain_b), samples, judge_data = load_data(args)  # bad data: raises before anything is written
    dataset = make_dataset(args, domain_a, domain_b, getattr(strategy, "shard", None))
    if found:
        run.delete(found)
        print(f"training: --overwrite: deleted {', '.join(found)} from {run.path}", flush=True)
    if chief:
        run.write_config(config)
    backup = None
    if backup_dir is not None:
        dataset = distributed.shard_by_data(dataset)
        backup = keras.callbacks.BackupAndRestore(backup_dir)
    with strategy.scope():
        model = InstaGAN(
            ngf=args.ngf,
            ndf=args.ndf,
            n_blocks=args.n_blocks,
            ins_max=args.ins_max,
            ins_per=args.ins_per,
            pool_size=args.pool_size,
            seed=args.seed,
            netG=args.netG,
            netD=args.netD,
        )
        model.compile(
            g_optimizer=keras.optimizers.Adam(args.lr, beta_1=args.beta1, beta_2=0.999),
            d_optimizer=keras.optimizers.Adam(args.lr, beta_1=args.beta1, beta_2=0.999),
            jit_compile=args.jit_compile,
            xla_forms={"auto": "auto", "on": True, "off": False}[args.xla_forms],
            lambda_A=args.lambda_A,
            lambda_B=args.lambda_B,
            lambda_idt=args.lambda_idt,
            lambda_ctx=args.lambda_ctx,
            lambda_paint=args.lambda_paint,
            lambda_mismatch=args.lambda_mismatch,
            context_reference=args.ctx_reference,
        )
        crop = (None, args.fineSizeH, args.fineSizeW)
        model.build(((crop + (3,), crop + (args.ins_max,)),) * 2)
    if args.jit_compile and args.strategy != "default" and keras.backend.backend() == "tensorflow":
        print(
            "training: --jit_compile is ignored under --strategy mirrored/multiworker (XLA cannot hold "
            "the cross-replica updates)",
            flush=True,
        )
    if args.netG != "set":
        print(
            f"training: --netG {args.netG} translates all masks in one step (--ins_per ignored"
            + (", --lambda_paint ignored)" if args.lambda_paint else ")"),
            flush=True,
        )
    initial_epoch = resume(model, run) if args.continue_train else 0
    epochs = args.niter + args.niter_decay
    print(
        f"training: run {run.path}, {strategy.num_replicas_in_sync} replica(s), epochs "
        f"{initial_epoch + 1}..{epochs}, {data_size(domain_a)}/{data_size(domain_b)} images A/B"
        + (", resuming from the last backup" if restarted else ""),
        flush=True,
    )

    steps = [
        callbacks.LinearDecay(args.lr, args.niter, args.niter_decay),
        callbacks.EpochSeconds(),
        callbacks.FirstStepTime(started),
    ]
    if backup is not None:  # restores the last finished epoch of a restarted cluster
        steps.append(backup)
    if chief:
        grid_samples = tuple((images[:GRID_SAMPLES], masks[:GRID_SAMPLES]) for images, masks in samples)
        chief_steps = [callbacks.SampleGrid(run.samples, grid_samples, rows=args.grid_rows)]
        if args.eval_every:
            judges = start_judges(args, run, judge_data)
            held_out = dict(zip("AB", samples))
            chief_steps.append(
                callbacks.QualityLog(
                    held_out, judges, args.eval_every, training_samples(args, domain_a, domain_b)
                )
            )
        chief_steps += [  # the log row before the state (CSVLog)
            callbacks.CSVLog(run.log, append=args.continue_train or restarted),
            callbacks.RunState(run),
        ]
        if args.save_epoch_freq:
            chief_steps.append(callbacks.EpochNetworks(run, args.save_epoch_freq))
        try:
            import tensorboard  # noqa: F401

            chief_steps.append(keras.callbacks.TensorBoard(run.tensorboard))
        except ImportError:
            pass
        if isinstance(strategy, JaxDataParallel):
            chief_steps = [callbacks.OutsideDistribution(chief_steps)]
        steps += chief_steps
    try:
        with fit_scope(strategy):
            model.fit(
                dataset,
                epochs=epochs,
                initial_epoch=initial_epoch,
                callbacks=steps,
                verbose=1 if sys.stdout.isatty() else 2,
            )
    except pipeline_errors() as error:
        data_error = data_file_error(error, run)
        if data_error is None:
            raise
        raise data_error from None
    if chief:
        run.save_networks((model.G_A, model.G_B, model.D_A, model.D_B))
        print(f"training: done; generators in {run.network('G_A')} and {run.network('G_B')}", flush=True)
    return Trained(model, run)
