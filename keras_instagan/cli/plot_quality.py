"""Quality curves of training runs: each score of `log.csv` against training minutes.

    python plot_quality.py --run checkpoints/shapes_instagan                     # one run
    python plot_quality.py --run RUN_A RUN_B --label InstaGAN CycleGAN+Seg --out docs/figures/quality

Reads the scores that `train.py --eval_every K` writes into each run's `log.csv`
(`callbacks.QualityLog`: `shape_instances_AtoB`, `classification_BtoA`, ...) and the `seconds` of
each epoch; training minutes are the running sum of `seconds` (the evaluation itself not counted).
Writes one PNG per score, A→B and B→A side by side, one line per run: `OUT_<score>.png`. Needs
matplotlib (the `dev` and `notebooks` extras).
"""

import argparse
import math
import os
import sys

from keras_instagan.run import RunDirectory

SCORES = (
    ("shape_instances", "shape score (instances) ↑"),
    ("shape_components", "shape score (components of the masks' union) ↑"),
    ("shape_painted", "shape score (painted objects) ↑"),
    ("classification", "classification score ↑"),
    ("classification_masked", "classification score, masked ↑"),
    ("background_error", "background error (0–255) ↓"),
    ("fid", "FID (domain-classifier features) ↓"),
)
DIRECTIONS = (("AtoB", "A→B"), ("BtoA", "B→A"))


def read_curves(run_dir):
    """`{column: [(minutes, value), ...]}` for every scored epoch of `<run_dir>/log.csv`."""
    curves, minutes = {}, 0.0
    for row in RunDirectory(run_dir).read_log():
        minutes += float(row.get("seconds") or 0) / 60
        for column, text in row.items():
            try:
                value = float(text)
            except (TypeError, ValueError):
                continue
            if not math.isnan(value):
                curves.setdefault(column, []).append((minutes, value))
    return curves


def plot(runs, labels, out):
    """One PNG per score in `SCORES` that any run logged; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [read_curves(run) for run in runs]
    written = []
    for score, title in SCORES:
        if not any(f"{score}_{d}" in c for c in curves for d, _ in DIRECTIONS):
            continue
        figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
        for axis, (direction, name) in zip(axes, DIRECTIONS):
            for label, run_curves in zip(labels, curves):
                points = run_curves.get(f"{score}_{direction}", [])
                if points:
                    axis.plot(*zip(*points), marker=".", label=label)
            axis.set_title(f"{name}: {title}")
            axis.set_xlabel("training minutes")
            axis.grid(alpha=0.3)
        axes[0].legend(fontsize="small")
        figure.tight_layout()
        path = f"{out}_{score}.png"
        figure.savefig(path, dpi=90)
        plt.close(figure)
        written.append(path)
    return written


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", nargs="+", required=True, help="run directories written by train.py")
    p.add_argument("--label", nargs="+", help="a name per run (default: folder names)")
    p.add_argument("--out", default="quality", help="path prefix of the PNG files")
    args = p.parse_args(argv)
    if args.label and len(args.label) != len(args.run):
        p.error(f"--label needs one name per --run: {len(args.run)} runs, {len(args.label)} labels")
    labels = args.label or [os.path.basename(os.path.normpath(r)) for r in args.run]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    try:
        written = plot(args.run, labels, args.out)
    except FileNotFoundError as error:
        sys.exit(f"plot_quality.py: {error}")
    if not written:
        sys.exit("plot_quality.py: no score in the runs' log.csv (train them with --eval_every K)")
    print("plot_quality.py: wrote " + ", ".join(written))
    return written


def command():
    """The `instagan-plot-quality` console command: `main` on the process's arguments (its return value is
    for Python callers, not an exit status)."""
    main()


if __name__ == "__main__":
    main()
