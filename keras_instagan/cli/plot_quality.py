"""Quality curves of training runs: each score of `log.csv` against training minutes.

    python plot_quality.py --run checkpoints/shapes_instagan                     # one run
    python plot_quality.py --run RUN_A RUN_B --label InstaGAN CycleGAN+Seg --out docs/figures/quality
    python plot_quality.py --run RUN_A RUN_B --table 10 50 100                   # a Markdown table

Reads the scores that `train.py --eval_every K` writes into each run's `log.csv`
(`callbacks.QualityLog`: `shape_instances_AtoB`, `classification_BtoA`, ...) and the `seconds` of
each epoch; training minutes are the running sum of `seconds` (the evaluation itself not counted).
Writes one PNG per score, A→B and B→A side by side, one line per run: `OUT_<score>.png`. Needs
matplotlib (the `dev` and `notebooks` extras). With `--table EPOCH ...` it prints instead a Markdown
table of the main scores at those epochs and at each run's last scored epoch, one row per epoch and
run, each cell A→B / B→A.
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
    ("object_texture", "texture inside the objects (0–255) ↓"),
    ("classification", "classification score ↑"),
    ("classification_masked", "classification score, masked ↑"),
    ("background_error", "background error (0–255) ↓"),
    ("fid", "FID (domain-classifier features) ↓"),
)
DIRECTIONS = (("AtoB", "A→B"), ("BtoA", "B→A"))
TABLE_SCORES = (  # (score, column title, decimals)
    ("background_error", "bg err ↓", 2),
    ("shape_instances", "shape inst ↑", 3),
    ("shape_painted", "shape painted ↑", 3),
    ("classification", "cls ↑", 3),
)


def timed_rows(run_dir):
    """`(minutes, row)` for each row of `<run_dir>/log.csv`, minutes the running sum of `seconds`."""
    minutes = 0.0
    for row in RunDirectory(run_dir).read_log():
        minutes += float(row.get("seconds") or 0) / 60
        yield minutes, row


def read_curves(run_dir):
    """`{column: [(minutes, value), ...]}` for every scored epoch of `<run_dir>/log.csv`."""
    curves = {}
    for minutes, row in timed_rows(run_dir):
        for column, text in row.items():
            try:
                value = float(text)
            except (TypeError, ValueError):
                continue
            if not math.isnan(value):
                curves.setdefault(column, []).append((minutes, value))
    return curves


def scored_epochs(run_dir):
    """`[(epoch, minutes, row), ...]` for the epochs of `<run_dir>/log.csv` that carry scores
    (`background_error_AtoB`, which every scored epoch has, not empty or NaN)."""
    return [
        (int(row["epoch"]), minutes, row)
        for minutes, row in timed_rows(run_dir)
        if _number(row, "background_error_AtoB") is not None
    ]


def _number(row, key):
    """`row[key]` as a float, or None where the log has no such score (empty, NaN, no column)."""
    value = row.get(key)
    if value in (None, ""):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def table(runs, labels, epochs):
    """A Markdown table of `TABLE_SCORES` at `epochs` and at each run's last scored epoch, as a list
    of lines (the header's two, then one per epoch and run)."""
    scored = [scored_epochs(run) for run in runs]
    wanted = set(epochs) | {rows[-1][0] for rows in scored if rows}
    lines = [
        "| epoch | run | training min | " + " | ".join(title for _, title, _ in TABLE_SCORES) + " |",
        "|---" * (3 + len(TABLE_SCORES)) + "|",
    ]
    for epoch in sorted(wanted):
        for label, rows in zip(labels, scored):
            for e, minutes, row in rows:
                if e == epoch:
                    cells = [
                        " / ".join(_cell(_number(row, f"{score}_{d}"), decimals) for d, _ in DIRECTIONS)
                        for score, _, decimals in TABLE_SCORES
                    ]
                    lines.append(f"| {epoch} | {label} | {minutes:.1f} | " + " | ".join(cells) + " |")
    return lines


def _cell(value, decimals):
    return "—" if value is None else f"{value:.{decimals}f}"


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
    p.add_argument(
        "--label",
        nargs="+",
        help="a name per run (default: folder names; '<run>, epoch N' for <run>/epochs/NNN)",
    )
    p.add_argument("--out", default="quality", help="path prefix of the PNG files")
    p.add_argument(
        "--table",
        nargs="+",
        type=int,
        metavar="EPOCH",
        help="print a Markdown table of the scores at these epochs (and each run's last) instead",
    )
    args = p.parse_args(argv)
    if args.label and len(args.label) != len(args.run):
        p.error(f"--label needs one name per --run: {len(args.run)} runs, {len(args.label)} labels")
    labels = args.label or [RunDirectory(r).label() for r in args.run]
    if args.table:
        try:
            lines = table(args.run, labels, args.table)
        except FileNotFoundError as error:
            sys.exit(f"plot_quality.py: {error}")
        if len(lines) == 2:
            sys.exit("plot_quality.py: no score in the runs' log.csv (train them with --eval_every K)")
        text = "\n".join(lines)
        print(text)
        return text
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
