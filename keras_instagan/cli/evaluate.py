"""Evaluate trained runs on held-out data and write a JSON file and a Markdown table.

    python evaluate.py --run checkpoints/shapes_instagan                # the built-in synthetic data
    python evaluate.py --run runs/instagan runs/cyclegan_seg runs/cyclegan --out docs/evaluation
    python evaluate.py --run runs/instagan runs/cyclegan_seg --grid 6      # + sample grids (PNG)
    python evaluate.py --run checkpoints/shp2gir --dataroot datasets/shp2gir_coco --phase test \
        --classifier sheep_giraffe.keras --features inception_v3_notop.keras

Runs trained on the synthetic data (no `--dataroot` in their config.json) are evaluated on fresh
synthetic samples of their pair (`--synthetic` in config.json) with up to `--ins_max` objects (the
first run's ins_max; `--seed`, never used in training); others need `--dataroot`. Metrics
(`keras_instagan.evaluation`): background error, instances kept, shape score (synthetic data),
classification score plain and masked, FID and KID. With no `--classifier` the domain classifiers are
trained here from scratch on real images of both domains (`--classifier_phase`, or other synthetic
samples); with no `--features` FID/KID use the plain classifier's features (not Inception: the numbers
compare runs with each other, not with published FIDs).
"""

import argparse
import json
import os
import shlex
import sys

import numpy as np

from keras_instagan.run import RunDirectory

JUDGE_NAMES = {
    "plain": "domain classifier",
    "masked": "masked domain classifier",
    "features": "feature extractor",
}
JUDGE_OPTIONS = {"plain": "classifier", "masked": "masked_classifier", "features": "features"}


def judge_threshold(judges, key):
    return f"{'separation' if key == 'features' else 'balanced accuracy'} ≥ " + str(
        judges.MIN_SEPARATION if key == "features" else judges.MIN_ACCURACY
    )


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", nargs="+", required=True, help="run directories (train.py or convert)")
    p.add_argument(
        "--label",
        nargs="+",
        help="a name per run for the table (default: folder names; '<run>, epoch N' for <run>/epochs/NNN)",
    )
    p.add_argument("--dataroot", help="real data in the official folder layout")
    p.add_argument("--phase", default="test", help="folder prefix of the evaluation data (--dataroot)")
    p.add_argument(
        "--classifier_phase",
        default="train",
        help="folder prefix of the images the domain classifiers learn from (--dataroot)",
    )
    p.add_argument("--count", type=int, default=200, help="evaluation samples per domain")
    p.add_argument(
        "--classifier_count",
        type=int,
        default=600,
        help="synthetic samples per domain to train the classifiers on",
    )
    p.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="evaluation size, multiples of 4 (default: the first run's fineSizeH/W)",
    )
    p.add_argument(
        "--ins_max",
        type=int,
        help="instances kept per evaluation image (default: the first run's ins_max; "
        "synthetic data: also the most objects drawn per image, as in training)",
    )
    p.add_argument("--ins_per", type=int, help="masks per sequential step (default: each run's own)")
    p.add_argument("--classifier", help="domain classifier .keras (P(B) from an image)")
    p.add_argument("--masked_classifier", help="domain classifier .keras for masked images")
    p.add_argument("--features", help="feature extractor .keras for FID/KID (images in [-1, 1])")
    p.add_argument("--save_classifiers", help="folder to save the classifiers trained here")
    p.add_argument("--out", default="evaluation", help="writes OUT.json and OUT.md")
    p.add_argument("--seed", type=int, default=20_000, help="seed of the synthetic evaluation samples")
    p.add_argument(
        "--judge_seeds",
        type=int,
        nargs="+",
        metavar="S",
        help="synthetic data: also score the classification with domain classifiers trained on samples "
        "drawn from each seed S (the main ones learn from --seed + 1): how much it owes to its judges",
    )
    p.add_argument(
        "--grid",
        type=int,
        default=0,
        metavar="N",
        help="also write OUT_AtoB.png and OUT_BtoA.png: the first N evaluation samples translated by "
        "every run (the input, each run's translation alone and with its masks, and on the synthetic "
        "data the objects the shape score found painted)",
    )
    p.add_argument(
        "--discriminators",
        action="store_true",
        help="also ask each run's discriminators what they call real "
        "(evaluation.discriminator_verdicts): whether they check that a picture agrees with its masks",
    )
    p.add_argument(
        "--cycle_pull",
        action="store_true",
        help="also measure whether the cycle term rewards each run for keeping the parts of the source "
        "objects its translation gives up (evaluation.cycle_pull)",
    )
    p.add_argument(
        "--intervals",
        action="store_true",
        help="also give each share score (shape, classification) a 95 %% interval: a percentile "
        "bootstrap over the evaluation images (metrics.bootstrap_interval)",
    )
    p.add_argument(
        "--texture_by_input",
        action="store_true",
        help="also measure each generator's object texture on real source images, on the other "
        "generator's translations (the cycle) and on real target images (evaluation.texture_by_input)",
    )
    args = p.parse_args(argv)
    if args.label and len(args.label) != len(args.run):
        p.error(f"--label needs one name per --run: {len(args.run)} runs, {len(args.label)} labels")
    if args.grid < 0:
        p.error(f"--grid {args.grid}: give the number of samples to show (0: no grid)")
    if args.judge_seeds and args.dataroot:
        p.error(
            "--judge_seeds: synthetic data only (with --dataroot the judges learn from --classifier_phase)"
        )
    if args.size and any(s % 4 or s < 24 for s in args.size):
        p.error(f"--size {args.size[0]} {args.size[1]}: both must be multiples of 4 and at least 24")
    return args


def run_info(run_dir, config):
    """The training options that tell runs apart, and the training time from log.csv."""
    info = {
        key: config.get(key, default)
        for key, default in (("netG", "set"), ("netD", "set"), ("lambda_ctx", 1.0), ("ins_per", 2))
    }
    if info["netG"] != "set":
        info["ins_per"] = "all"
    epochs, seconds = 0, 0.0
    run = RunDirectory(run_dir)
    for row in run.read_log() if os.path.exists(run.log) else []:
        epochs += 1
        seconds += float(row.get("seconds") or 0)
    info["epochs"], info["train_min"] = epochs, round(seconds / 60, 1)
    return info


def load_data(args, configs, size):
    """`{"A": (images, masks), "B": ...}` to evaluate on, the classifiers' training data, and the
    target shapes (None for real data)."""
    if args.dataroot:
        from keras_instagan.data import FolderDomain

        def domains(phase, count):
            return {
                side: FolderDomain(args.dataroot, phase, side, size, args.ins_max).load_all(count)
                for side in "AB"
            }

        return domains(args.phase, args.count), lambda: domains(args.classifier_phase, None), None
    trained_on = [c.get("dataroot") or c.get("coco_annotations") for c in configs]
    if any(trained_on):
        raise ValueError(
            f"a run was trained on real data ({next(t for t in trained_on if t)}); give --dataroot"
        )
    if size[0] != size[1]:
        raise ValueError(f"the synthetic data are square; got --size {size[0]} {size[1]}")
    pairs = {c.get("synthetic", "ellipses_squares") for c in configs}
    if len(pairs) > 1:
        raise ValueError(f"the runs were trained on different synthetic pairs: {sorted(pairs)}")
    from keras_instagan.data import shapes

    pair = pairs.pop()

    def load(count, seed):
        return dict(zip("AB", shapes.load(count, size[0], args.ins_max, seed=seed, pair=pair)))

    return (
        load(args.count, args.seed),
        lambda seed=args.seed + 1: load(args.classifier_count, seed),
        shapes.domain_shapes(pair),
    )


def training_images(config, size, count, dataroot=None, phase=None):
    """The first `count` images per domain a run trained on, as `{"A": (images, masks), "B": ...}` at
    `size`, prepared as the evaluation images are: for the synthetic data the centre crops of what
    the run drew; for the folder layout its training `phase` under `dataroot` (the evaluation's
    data root, evaluated on `phase`), resized. None for a COCO run, a synthetic run at another size,
    a folder run evaluated on its own training phase (no held-out images) or without a `train.py`
    config (a converted run)."""
    if config.get("dataroot"):
        if dataroot is None or config.get("phase", "train") == phase:
            return None
        from keras_instagan.data import FolderDomain

        return {
            side: FolderDomain(
                dataroot, config.get("phase", "train"), side, size, config["ins_max"]
            ).load_all(count)
            for side in "AB"
        }
    if config.get("coco_annotations") or "synthetic_count" not in config:
        return None
    if (config.get("fineSizeH"), config.get("fineSizeW")) != tuple(size):
        return None
    from keras_instagan.data import shapes
    from keras_instagan.data.sampling import centre_crop

    domains = shapes.load(
        min(count, config["synthetic_count"]),
        config["loadSizeH"],
        config["ins_max"],
        seed=config["seed"],
        pair=config.get("synthetic", "ellipses_squares"),
    )
    return {side: centre_crop(*domain, size) for side, domain in zip("AB", domains)}


def make_judges(args, training_data, target_shapes):
    import keras

    from keras_instagan.evaluation import Judges, train_judges

    def load(path):
        return None if path is None else keras.saving.load_model(path, compile=False)

    plain, masked, extractor = load(args.classifier), load(args.masked_classifier), load(args.features)
    if plain is not None and masked is not None:
        return Judges(plain, masked, extractor, target_shapes)
    data = training_data()
    print(
        f"evaluate.py: training domain classifiers on {len(data['A'][0])}/{len(data['B'][0])} real "
        "images A/B",
        flush=True,
    )
    judges = train_judges(data, target_shapes, plain, masked, extractor)
    if args.save_classifiers:
        judges.save(args.save_classifiers)
    return judges


def wrap_to_width(text, font, width):
    """`text` broken at spaces into lines at most `width` pixels wide in `font` (a word wider than
    that keeps a line of its own)."""
    lines = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines or [""]


def write_grids(out, data, models, labels, count, painted):
    """`<out>_AtoB.png`, `<out>_BtoA.png`: one row per sample (the first `count` of `data`), a label
    row on top; `models` holds `(model, directions it was trained for)` per run. Columns: the input
    with its masks, then per run its translation alone and with its
    translated masks (not for CycleGAN, which has none), and with `painted` the objects
    `metrics.painted_masks` found (each instance in its colour on grey). Cells are at least 96 pixels
    (`callbacks.upscale`)."""

    from PIL import Image, ImageDraw, ImageFont

    from keras_instagan import evaluation, metrics
    from keras_instagan.callbacks import overlay, upscale

    written = []
    for direction, (source_side, _) in evaluation.SIDES.items():
        images, masks = (array[:count] for array in data[source_side])
        columns, titles = [[overlay(image, mask) for image, mask in zip(images, masks)]], ["input"]
        for (model, directions), label in zip(models, labels):
            if direction not in directions:
                continue
            fake, fake_masks = evaluation.translate_all(model, images, masks, direction)
            columns.append([overlay(f) for f in fake])
            titles.append(label)
            if evaluation.kind_of(model) != "image":  # CycleGAN passes the masks through
                columns.append([overlay(f, m) for f, m in zip(fake, fake_masks)])
                titles.append(f"{label} + masks")
            if painted:
                found = metrics.painted_masks(images, masks, fake)
                columns.append([overlay(np.zeros_like(f), m) for f, m in zip(fake, found)])
                titles.append(f"{label}: painted")
        cells = [[upscale(cell, 96) for cell in column] for column in columns]
        side = cells[0][0].shape[1]
        font = ImageFont.load_default()
        lines = [wrap_to_width(title, font, side - 6) for title in titles]
        line_height = 12
        header = Image.new("RGB", (side * len(cells), line_height * max(map(len, lines)) + 4), "white")
        draw = ImageDraw.Draw(header)
        for k, title_lines in enumerate(lines):
            for row, line in enumerate(title_lines):
                draw.text((k * side + 3, 2 + row * line_height), line, fill="black", font=font)
        body = np.concatenate([np.concatenate(column, axis=0) for column in cells], axis=1)
        picture = np.concatenate([np.asarray(header), body], axis=0)
        path = f"{out}_{direction}.png"
        Image.fromarray(picture).save(path)
        written.append(path)
    return written


def main(argv=None):
    args = parse_args(argv)
    from keras_instagan import InstaGAN, evaluation

    labels = args.label or [RunDirectory(r).label() for r in args.run]
    try:
        configs = [RunDirectory(run).read_config() for run in args.run]
        if args.ins_max is None:
            args.ins_max = configs[0].get("ins_max", 4)
        size = tuple(args.size or (configs[0].get("fineSizeH", 64), configs[0].get("fineSizeW", 64)))
        data, training_data, target_shapes = load_data(args, configs, size)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"evaluate.py: {error}")
    judges = make_judges(args, training_data, target_shapes)
    checks = judges.check(data)
    for key, (value, passed) in checks.items():
        if not passed:
            print(
                f"evaluate.py: the {JUDGE_NAMES[key]} {'separates' if key == 'features' else 'scores'} "
                f"{value:.3f} on the real evaluation images (needs {judge_threshold(judges, key)}): its "
                f"scores are left out; pass a better one with --{JUDGE_OPTIONS[key]}",
                flush=True,
            )

    results, models, verdicts, pulls, textures = {}, [], {}, {}, {}
    for direction in evaluation.SIDES:
        for name, row in judges.reference(data, direction, intervals=args.intervals).items():
            results.setdefault(name, {"info": {}})[direction] = row
    for run, label, config in zip(args.run, labels, configs):
        print(f"evaluate.py: {label} ({run})", flush=True)
        directions = RunDirectory(run).trained_directions()
        for direction in sorted(set(evaluation.SIDES) - set(directions)):
            print(
                f"evaluate.py: {label}: no G_{direction[0]}.keras and no state/ in {run}: no {direction} row",
                flush=True,
            )
        try:
            model = InstaGAN.from_run(run, **({"ins_per": args.ins_per} if args.ins_per else {}))
        except (ValueError, FileNotFoundError) as error:
            sys.exit(f"evaluate.py: {error}")
        models.append((model, directions))
        results[label] = {
            "info": run_info(run, config),
            **evaluation.evaluate_model(model, data, judges, directions, intervals=args.intervals),
        }
        if args.ins_per:
            results[label]["info"]["ins_per"] = model.ins_per if model.netG == "set" else "all"
        if args.discriminators:
            if RunDirectory(run).holds_discriminators():
                try:
                    training = training_images(config, size, args.count, args.dataroot, args.phase)
                except ValueError as error:
                    sys.exit(f"evaluate.py: {label}: its training images: {error}")
                verdicts[label] = evaluation.discriminator_verdicts(model, data, training=training)
            else:
                print(f"evaluate.py: {label}: no trained D_A and D_B in {run}: no verdicts", flush=True)
        if args.cycle_pull:
            if set(directions) == set(evaluation.SIDES):
                pulls[label] = evaluation.cycle_pull(model, data)
            else:
                print(f"evaluate.py: {label}: the cycle needs both generators: no cycle pull", flush=True)
        if args.texture_by_input:
            if set(directions) == set(evaluation.SIDES):
                textures[label] = evaluation.texture_by_input(model, data)
            else:
                print(
                    f"evaluate.py: {label}: the cycle needs both generators: no texture by input", flush=True
                )

    draws = {}
    if args.judge_seeds:
        translated = {
            label: {d: evaluation.translate_all(model, *data[evaluation.SIDES[d][0]], d) for d in directions}
            for (model, directions), label in zip(models, labels)
        }
        for seed in args.judge_seeds:
            print(f"evaluate.py: training domain classifiers on samples of seed {seed}", flush=True)
            other = evaluation.train_judges(training_data(seed), target_shapes)
            checked = {key: {"value": v, "passed": ok} for key, (v, ok) in other.check(data).items()}
            draws[seed] = {"judges": checked, "scores": evaluation.classification_by(other, data, translated)}

    columns = (
        ("netG", "netG"),
        ("netD", "netD"),
        ("lambda_ctx", "λ ctx"),
        ("ins_per", "ins_per"),
        ("epochs", "epochs"),
        ("train_min", "train min"),
    )
    source = f"{args.dataroot} ({args.phase})" if args.dataroot else f"synthetic shapes, seed {args.seed}"
    text = [
        f"Evaluation on {data['A'][0].shape[0]}/{data['B'][0].shape[0]} images A/B, {source}, "
        f"{size[0]}×{size[1]}.",
        "",
        "Judges on the real evaluation images: "
        + "; ".join(
            f"{JUDGE_NAMES[key]} {'separation' if key == 'features' else 'balanced accuracy'} "
            f"{value:.3f}" + ("" if passed else " (too low: its scores are left out)")
            for key, (value, passed) in checks.items()
        )
        + ".",
        "",
        "Command: `python evaluate.py " + shlex.join(sys.argv[1:] if argv is None else argv) + "`",
    ]
    for direction in evaluation.SIDES:
        text += ["", f"### {direction}", "", evaluation.markdown_table(results, direction, columns)]
    if args.intervals:
        text += [
            "",
            "### 95 % intervals (percentile bootstrap over the evaluation images, 2000 draws)",
            "",
            evaluation.intervals_table(results),
        ]
    if verdicts:
        text += ["", "### Discriminator verdicts (1 = real)", "", evaluation.verdict_table(verdicts)]
    if pulls:
        text += ["", "### Cycle pull (evaluation.cycle_pull)", "", evaluation.cycle_pull_table(pulls)]
    if textures:
        text += [
            "",
            "### Texture by input (evaluation.texture_by_input)",
            "",
            evaluation.texture_by_input_table(textures),
        ]
    if draws:
        text += [
            "",
            f"### Classification by other judges (classifiers trained on samples of seed {args.seed + 1} "
            "above, of each seed S here; plain / masked; — where a judge failed its check)",
            "",
            evaluation.judge_draws_table(results, {k: v["scores"] for k, v in draws.items()}, args.seed + 1),
        ]
    markdown = "\n".join(text) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(
            {
                "data": source,
                "size": size,
                "count": args.count,
                "results": results,
                **({"discriminator_verdicts": verdicts} if args.discriminators else {}),
                **({"cycle_pull": pulls} if args.cycle_pull else {}),
                **({"texture_by_input": textures} if args.texture_by_input else {}),
                **({"judge_draws": draws} if draws else {}),
                "judges": {
                    key: {"value": value, "passed": passed} for key, (value, passed) in checks.items()
                },
            },
            f,
            indent=2,
        )
    with open(args.out + ".md", "w") as f:
        f.write(markdown)
    print(markdown)
    print(f"evaluate.py: wrote {args.out}.json and {args.out}.md", flush=True)
    if args.grid:
        paths = write_grids(args.out, data, models, labels, args.grid, target_shapes is not None)
        print(f"evaluate.py: wrote {' and '.join(paths)}", flush=True)
    return results


def command():
    """The `instagan-evaluate` console command: `main` on the process's arguments (its return value is
    for Python callers, not an exit status)."""
    main()


if __name__ == "__main__":
    main()
