"""evaluate.py and keras_instagan.evaluation on small runs written here (no training)."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_instagan import InstaGAN, evaluation, metrics
from keras_instagan.cli import evaluate
from keras_instagan.data import FolderDomain, shapes
from keras_instagan.data.sampling import sort_masks_by_area


def write_run(folder, config_changes=None, **options):
    """A run directory as train.py leaves it: config.json (with `config_changes` applied) and the four
    networks."""
    keras.utils.set_random_seed(0)
    model = InstaGAN(ngf=4, ndf=4, n_blocks=1, **options)
    os.makedirs(folder)
    config = {
        "ngf": 4,
        "ndf": 4,
        "n_blocks": 1,
        "fineSizeH": 32,
        "fineSizeW": 32,
        "ins_max": 4,
        "ins_per": model.ins_per,
        "netG": model.netG,
        "netD": model.netD,
        "lambda_ctx": 0.0,
        "dataroot": None,
        **(config_changes or {}),
    }
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(folder, "log.csv"), "w") as f:
        f.write("epoch,seconds\n1,30.0\n2,30.0\n")
    for network in (model.G_A, model.G_B, model.D_A, model.D_B):
        network.save(os.path.join(folder, f"{network.name}.keras"))
    return model


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    synthetic = {"synthetic_count": 8, "loadSizeH": 36, "loadSizeW": 36, "seed": 5}
    write_run(str(root / "insta"), config_changes=synthetic)
    write_run(str(root / "seg"), netG="resnet_seg", netD="basic")
    return root


@pytest.fixture(scope="module")
def judge_files(tmp_path_factory):
    """Domain classifiers trained on 400 synthetic samples per domain for 16 epochs (with fewer
    samples or epochs they fail `Judges.check`), saved as evaluate.py's --classifier and
    --masked_classifier."""
    from keras_instagan import classifier

    folder = tmp_path_factory.mktemp("judges")
    (images_a, masks_a), (images_b, masks_b) = shapes.load(400, 32, 4, seed=7)
    evaluation.Judges(
        classifier.train_domain_classifier(images_a, images_b, epochs=16),
        classifier.train_domain_classifier(images_a, images_b, masks_a, masks_b),
    ).save(str(folder))
    return [
        "--classifier",
        str(folder / evaluation.Judges.FILES["plain"]),
        "--masked_classifier",
        str(folder / evaluation.Judges.FILES["masked"]),
    ]


def test_evaluate_py_writes_a_row_per_run_and_direction(runs, judge_files, tmp_path):
    out = str(tmp_path / "eval")
    results = evaluate.main(
        [
            "--run",
            str(runs / "insta"),
            str(runs / "seg"),
            "--label",
            "InstaGAN",
            "CycleGAN+Seg",
            "--count",
            "24",
            *judge_files,
            "--out",
            out,
            "--grid",
            "3",
            "--discriminators",
            "--cycle_pull",
            "--texture_by_input",
            "--intervals",
        ]
    )
    with open(out + ".json") as f:
        saved = json.load(f)
    for name in ("real target", "InstaGAN", "CycleGAN+Seg"):
        for direction in ("AtoB", "BtoA"):
            row = saved["results"][name][direction]
            for key, (low, high) in row["intervals"].items():
                assert low <= row[key] <= high, (name, direction, key)
    assert "shape_instances" not in saved["results"]["CycleGAN+Seg"]["AtoB"]["intervals"]  # merged masks
    assert set(saved["results"]["InstaGAN"]["AtoB"]["intervals"]) == set(evaluation.SHARES)
    assert list(saved["discriminator_verdicts"]) == ["InstaGAN", "CycleGAN+Seg"]
    for network in ("D_A", "D_B"):  # the InstaGAN run records its synthetic data, the other does not
        assert isinstance(saved["discriminator_verdicts"]["InstaGAN"][network]["training"], float)
        assert saved["discriminator_verdicts"]["CycleGAN+Seg"][network]["training"] is None
    assert list(saved["cycle_pull"]) == ["InstaGAN", "CycleGAN+Seg"]
    assert list(saved["cycle_pull"]["InstaGAN"]) == ["AtoB", "BtoA"]
    assert list(saved["texture_by_input"]["CycleGAN+Seg"]["BtoA"]) == ["source", "cycle", "identity"]
    assert list(saved["results"]) == ["input unchanged", "real target", "InstaGAN", "CycleGAN+Seg"]
    for direction in ("AtoB", "BtoA"):  # 32-pixel samples shown in 96-pixel cells, a label row on top
        with Image.open(f"{out}_{direction}.png") as grid:
            # input; per run: translation, translation + masks, painted objects
            assert grid.size[0] == 96 * (1 + 2 * 3)
            assert grid.size[1] - 3 * 96 in (16, 28)  # labels wider than a cell take two lines
    assert saved["results"]["InstaGAN"]["info"] == {
        "netG": "set",
        "netD": "set",
        "lambda_ctx": 0.0,
        "ins_per": 2,
        "epochs": 2,
        "train_min": 1.0,
    }
    for direction in ("AtoB", "BtoA"):
        unchanged = results["input unchanged"][direction]
        assert unchanged["background_error"] == 0.0
        insta, seg = results["InstaGAN"][direction], results["CycleGAN+Seg"][direction]
        assert seg["shape_instances"] is None and 0.0 <= seg["shape_components"] <= 1.0
        for row in (insta, seg):
            assert row["background_error"] > 0
            assert 0.0 <= row["classification"] <= 1.0 and row["fid"] >= 0.0
    # the source masks against the target shape: squares are not ellipses and vice versa
    assert results["input unchanged"]["AtoB"]["shape_instances"] <= 0.1
    assert results["real target"]["AtoB"]["shape_instances"] >= 0.9
    assert results["input unchanged"]["AtoB"]["shape_painted"] <= 0.1  # read from the images
    assert results["real target"]["AtoB"]["shape_painted"] >= 0.9
    for direction in ("AtoB", "BtoA"):  # the synthetic objects are flat
        assert results["real target"][direction]["object_texture"] < 0.01
        assert results["input unchanged"][direction]["object_texture"] < 0.01
    with open(out + ".md") as f:
        table = f.read()
    assert "| CycleGAN+Seg | resnet_seg | basic | 0.0 | all | 2 | 1.0 |" in table
    for key in ("plain", "masked"):  # checked on the 24 evaluation samples per domain
        assert saved["judges"][key]["passed"] and saved["judges"][key]["value"] >= 0.8
    assert saved["judges"]["features"]["passed"]
    assert "Command: `python evaluate.py --run" in table and " texture ↓ |" in table
    assert table.count("| InstaGAN | D_") == 2 and table.count("| CycleGAN+Seg | D_") == 2
    assert "| InstaGAN | BtoA | " in table and "### Cycle pull" in table and "### Texture by input" in table
    intervals = table.split("### 95 % intervals")[1].split("###")[0]
    assert "| run | direction | shape inst ↑ | shape painted ↑ | cls ↑ | cls masked ↑ |" in intervals
    insta = saved["results"]["InstaGAN"]["AtoB"]
    shape, (low, high) = insta["shape_instances"], insta["intervals"]["shape_instances"]
    assert f"| InstaGAN | AtoB | {shape:.3f} ({low:.3f}–{high:.3f}) |" in intervals
    assert "| CycleGAN+Seg | AtoB | — |" in intervals  # no per-instance masks to shape-score


class RightHalfGivenUp:
    """A stand-in translator for `cycle_pull`: the image unchanged, every mask's right half dropped."""

    def translate(self, image, masks, direction):
        kept = masks.copy()
        kept[:, :, masks.shape[2] // 2 :, :] = -1.0
        return image.copy(), kept


def test_cycle_pull_compares_the_cycle_with_and_without_what_was_given_up():
    (images_a, masks_a), (images_b, masks_b) = shapes.load(6, 32, 4, seed=3)
    data = {"A": (images_a, masks_a), "B": (images_b, masks_b)}
    pulls = evaluation.cycle_pull(RightHalfGivenUp(), data, batch_size=4)
    for direction, side in (("AtoB", "A"), ("BtoA", "B")):
        images, masks = data[side]
        union = (masks > 0).any(-1)
        given_up = union & (np.arange(32) >= 16)[None, None, :]
        pull = pulls[direction]
        assert abs(pull["given_up"] - given_up.sum() / union.sum()) < 1e-6
        assert 0.2 < pull["given_up"] < 0.8
        # the identity translator reconstructs what it kept exactly; the cleaned pixels are repainted
        # in the background's colour, so the cycle misses the object's colour there and only there
        assert pull["region_kept"] == 0.0 and pull["image_kept"] == 0.0
        assert pull["region_cleaned"] > 0.1
        region_total = pull["region_cleaned"] * given_up.sum()
        assert abs(pull["image_cleaned"] * images[..., 0].size - region_total) < 1e-3 * region_total


class SpecklesFlatObjects:
    """A stand-in translator for `texture_by_input`: objects that come in flat get a checkerboard of
    amplitude 0.3, objects that come in textured are flattened to their mean colour; masks kept."""

    def translate(self, image, masks, direction):
        inside = (masks > 0).any(-1)
        out = image.copy()
        for n, textured in enumerate(metrics.object_texture(image, masks) > 1.0):
            if textured:
                out[n][inside[n]] = image[n][inside[n]].mean(0)
            else:
                checker = 0.3 * (-1.0) ** np.add.outer(np.arange(image.shape[1]), np.arange(image.shape[2]))
                out[n][inside[n]] += checker[inside[n]][:, None]
        return out, masks.copy()


def test_texture_by_input_reads_each_generator_on_source_cycle_and_identity_inputs():
    (images_a, masks_a), (images_b, masks_b) = shapes.load(6, 32, 4, seed=3)
    data = {"A": (images_a, masks_a), "B": (images_b, masks_b)}
    textures = evaluation.texture_by_input(SpecklesFlatObjects(), data, batch_size=4)
    checkerboard = 0.3 * 8 / 9 * 127.5  # |x − its 3×3 mean| inside a ±0.3 checkerboard, 0–255 units
    assert list(textures) == ["AtoB", "BtoA"]
    for texture in textures.values():
        # real sources and real targets are flat: speckled; the cycle's inputs come speckled: flattened
        assert abs(texture["source"] - checkerboard) < 0.05 * checkerboard
        assert abs(texture["identity"] - checkerboard) < 0.05 * checkerboard
        assert texture["cycle"] < 0.01
    table = evaluation.texture_by_input_table({"stand-in": textures})
    assert f"| stand-in | BtoA | {textures['BtoA']['source']:.2f} | 0.00 |" in table


def test_discriminator_verdicts_are_the_discriminators_mean_verdicts():
    keras.utils.set_random_seed(0)
    model = InstaGAN(ngf=4, ndf=4, n_blocks=1, ins_max=4, ins_per=2)
    (images_a, masks_a), (images_b, masks_b) = shapes.load(6, 32, 4, seed=3)
    data = {"A": (images_a, masks_a), "B": (images_b[:5], masks_b[:5])}  # n = 5
    training = dict(zip("AB", shapes.load(3, 32, 4, seed=9)))
    verdicts = evaluation.discriminator_verdicts(model, data, batch_size=2, training=training)
    assert list(verdicts) == ["D_A", "D_B"]
    assert list(verdicts["D_A"]) == [kind for kind, _ in evaluation.VERDICTS]
    mean = lambda d, x, k: float(np.mean(keras.ops.convert_to_numpy(d([x, k]))))  # noqa: E731
    translated = model.translate(images_a[:5], masks_a[:5], "AtoB")
    expected = {
        "training": mean(model.D_A, *training["B"]),
        "real": mean(model.D_A, images_b[:5], masks_b[:5]),
        "other_masks": mean(model.D_A, images_b[:5], np.roll(masks_b[:5], 1, axis=0)),
        "source_masks": mean(model.D_A, images_b[:5], masks_a[:5]),
        "source_picture": mean(model.D_A, images_a[:5], translated[1]),
        "translation": mean(model.D_A, *translated),
    }
    for kind, value in expected.items():
        assert abs(verdicts["D_A"][kind] - value) < 1e-5, kind
    assert abs(verdicts["D_B"]["real"] - mean(model.D_B, images_a[:5], masks_a[:5])) < 1e-5
    assert abs(verdicts["D_B"]["training"] - mean(model.D_B, *training["A"])) < 1e-5
    assert len({round(v, 6) for v in verdicts["D_A"].values()}) == 6  # six different pairs
    assert evaluation.discriminator_verdicts(model, data, batch_size=2)["D_B"]["training"] is None


def test_memorisation_is_the_verdict_on_training_images_less_that_on_held_out_ones():
    keras.utils.set_random_seed(0)
    model = InstaGAN(ngf=4, ndf=4, n_blocks=1, ins_max=4, ins_per=2)
    training = dict(zip("AB", shapes.load(3, 32, 4, seed=9)))
    held_out = dict(zip("AB", shapes.load(5, 32, 4, seed=3)))
    verdicts = evaluation.discriminator_verdicts(model, held_out, batch_size=2, training=training)
    gaps = evaluation.memorisation(model, training, held_out, batch_size=2)
    for name in ("D_A", "D_B"):
        assert gaps[name] == pytest.approx(verdicts[name]["training"] - verdicts[name]["real"], abs=1e-6)
        assert gaps[name] != 0.0
    assert evaluation.memorisation(model, held_out, held_out) == {"D_A": 0.0, "D_B": 0.0}


def test_training_images_are_the_centre_crops_of_what_a_synthetic_run_drew():
    config = {"dataroot": None, "fineSizeH": 32, "fineSizeW": 32, "loadSizeH": 36, "ins_max": 4}
    config.update(synthetic_count=5, seed=3, synthetic="triangles_crosses")
    training = evaluate.training_images(config, (32, 32), count=8)
    drawn = shapes.load(5, 36, 4, seed=3, pair="triangles_crosses")
    for side, (images, masks) in zip("AB", drawn):
        np.testing.assert_array_equal(training[side][0], images[:, 2:34, 2:34])
        cropped = np.stack([sort_masks_by_area(m) for m in masks[:, 2:34, 2:34]])  # as after a training crop
        np.testing.assert_array_equal(training[side][1], cropped)
    assert evaluate.training_images(config, (32, 32), count=2)["A"][0].shape == (2, 32, 32, 3)
    assert evaluate.training_images(config, (64, 64), count=8) is None  # trained at 32
    assert evaluate.training_images({**config, "dataroot": "photos"}, (32, 32), count=8) is None
    assert evaluate.training_images({**config, "coco_annotations": "x.json"}, (32, 32), count=8) is None


def test_judges_score_the_input_itself_as_no_change():
    data = dict(zip("AB", shapes.load(24, 32, 4, seed=3)))
    keras.utils.set_random_seed(0)
    plain = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.GlobalAveragePooling2D(name="features"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    judges = evaluation.Judges(plain, shapes=shapes.domain_shapes("ellipses_squares"))
    row = judges.score(data["A"], data["A"], data["B"], "B", kind="instagan")
    assert row["background_error"] == 0.0
    assert row["instances_kept"] == 1.0
    assert row["shape_instances"] == metrics.shape_score(data["A"][1], "square", reference=data["A"][1])
    assert row["shape_instances"] <= 0.1
    assert row["shape_painted"] <= 0.1  # the image's own ellipses
    assert row["object_texture"] == pytest.approx(np.nanmean(metrics.object_texture(*data["A"])))

    def features(images):
        return images.mean(axis=(1, 2))  # what the model's `features` layer computes

    assert row["fid"] == pytest.approx(
        metrics.frechet_distance(features(data["A"][0]), features(data["B"][0])), rel=1e-4
    )
    assert "classification_masked" not in row
    with_intervals = judges.score(data["A"], data["A"], data["B"], "B", kind="instagan", intervals=True)
    assert {k: v for k, v in with_intervals.items() if k != "intervals"} == row
    counts = judges.shares(data["A"], data["A"], "B", kind="instagan")
    assert (
        set(with_intervals["intervals"])
        == set(counts)
        == {"shape_instances", "shape_painted", "classification"}
    )
    for key, (hits, totals) in counts.items():
        assert row[key] == pytest.approx(hits.sum() / totals.sum())
        assert with_intervals["intervals"][key] == metrics.bootstrap_interval(hits, totals)
        low, high = with_intervals["intervals"][key]
        assert low <= row[key] <= high
    one_target = judges.score(data["A"], data["A"], tuple(x[:1] for x in data["B"]), "B")
    assert one_target["fid"] is None and one_target["kid"] is None  # undefined for one image
    assert one_target["background_error"] == 0.0


def test_evaluate_py_refuses_what_it_cannot_evaluate(runs, tmp_path):
    real = tmp_path / "real"
    write_run(str(real), {"dataroot": "datasets/shp2gir_coco"})
    with pytest.raises(SystemExit, match="trained on real data .*datasets/shp2gir_coco.*give --dataroot"):
        evaluate.main(["--run", str(real)])
    with pytest.raises(SystemExit, match="not_a_run: run directory not found"):
        evaluate.main(["--run", str(tmp_path / "not_a_run")])
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--run", str(runs / "insta"), "--label", "a", "b"])
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--run", str(runs / "insta"), "--size", "30", "32"])
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--run", str(runs / "insta"), "--grid", "-1"])


def test_evaluate_py_scores_only_the_generators_a_run_holds(tmp_path, capsys):
    folder = tmp_path / "half"
    write_run(str(folder))
    for name in ("G_B", "D_A", "D_B"):
        os.remove(folder / f"{name}.keras")
    results = evaluate.main(
        ["--run", str(folder), "--count", "8", "--classifier_count", "24", "--out", str(tmp_path / "eval")]
    )
    assert list(results["half"]) == ["info", "AtoB"]
    assert "half: no G_B.keras and no state/ in" in capsys.readouterr().out
    evaluate.main(
        ["--run", str(folder), "--count", "8", "--classifier_count", "24", "--out", str(tmp_path / "eval2")]
        + ["--discriminators"]
    )
    assert "half: no trained D_A and D_B in" in capsys.readouterr().out
    assert "discriminator_verdicts" in json.load(open(tmp_path / "eval2.json"))
    table = open(tmp_path / "eval.md").read()
    assert table.split("### BtoA")[1].count("| half |") == 0 and table.count("| half |") == 1


def test_evaluate_py_scores_the_classification_with_judges_of_other_seeds(tmp_path):
    folder, out = tmp_path / "insta", tmp_path / "eval"
    write_run(str(folder))
    evaluate.main(
        ["--run", str(folder), "--count", "8", "--classifier_count", "24", "--seed", "5"]
        + ["--judge_seeds", "6", "9", "--out", str(out)]
    )
    saved = json.load(open(f"{out}.json"))
    draws = saved["judge_draws"]
    assert list(draws) == ["6", "9"]
    for key in ("plain", "masked"):  # each draw's judges checked on the real evaluation images
        assert draws["6"]["judges"][key] == saved["judges"][key]
        assert 0.0 <= draws["9"]["judges"][key]["value"] <= 1.0
    # seed 6 is the main judges' own (--seed + 1): the same classifiers, the same checks and scores
    # (judges trained on 24 samples fail their check, so these scores are None; the checks' values are not)
    for name in ("real target", "insta"):
        for direction in ("AtoB", "BtoA"):
            for key in ("classification", "classification_masked"):
                main = saved["results"][name][direction].get(key)
                assert draws["6"]["scores"][name][direction].get(key) == main
    table = open(f"{out}.md").read()
    assert "| run | direction | seed 6 | seed 6 | seed 9 |" in table
    assert table.count("| insta | AtoB | ") == 1 and "### Classification by other judges" in table
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--run", str(folder), "--dataroot", str(tmp_path), "--judge_seeds", "1"])


def test_evaluate_py_leaves_out_judges_that_cannot_tell_the_domains_apart(runs, tmp_path, capsys):
    blind = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.GlobalAveragePooling2D(name="features"),
            keras.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros", bias_initializer="ones"),
        ]
    )
    blind.save(tmp_path / "blind.keras")  # P(B) = 0.73 for every image; features = the mean colour
    results = evaluate.main(
        [
            "--run",
            str(runs / "insta"),
            "--count",
            "16",
            "--classifier",
            str(tmp_path / "blind.keras"),
            "--masked_classifier",
            str(tmp_path / "blind.keras"),
            "--out",
            str(tmp_path / "eval"),
        ]
    )
    out = capsys.readouterr().out
    assert (
        "the domain classifier scores 0.500 on the real evaluation images (needs balanced accuracy ≥ 0.8)"
        in out
    )
    assert "pass a better one with --classifier" in out and "--masked_classifier" in out
    assert "the feature extractor separates" in out and "--features" in out
    for direction in ("AtoB", "BtoA"):
        row = results["insta"][direction]
        assert row["classification"] is None and row["classification_masked"] is None and row["fid"] is None
        assert row["background_error"] > 0 and 0 <= row["shape_instances"] <= 1  # the rest still scored
    table = open(tmp_path / "eval.md").read()
    assert "domain classifier balanced accuracy 0.500 (too low: its scores are left out)" in table
    saved = json.load(open(tmp_path / "eval.json"))
    assert saved["judges"]["plain"] == {"value": 0.5, "passed": False}


def test_corrupt_networks_and_configs_are_named(tmp_path):
    from keras_instagan import training
    from keras_instagan.run import RunDirectory

    folder = tmp_path / "run"
    write_run(str(folder))
    (folder / "G_A.keras").write_bytes((folder / "G_A.keras").read_bytes()[:500])
    with pytest.raises(
        SystemExit, match=r"G_A.keras: not a readable .keras network \(corrupt or truncated\?\)"
    ):
        evaluate.main(["--run", str(folder), "--count", "4", "--classifier_count", "8"])
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"config.json: expected a JSON object of options, got a list"):
        RunDirectory(folder).read_config()
    (folder / "config.json").write_bytes(b"\x00garbage{")
    with pytest.raises(training.TrainingError, match=r"--continue_train: .*config.json: not valid JSON"):
        training.check_continued_config(RunDirectory(folder), {})


def test_a_run_holding_other_networks_than_its_config_says_is_refused(tmp_path):
    folder = tmp_path / "mixed"
    write_run(str(folder), {"netG": "resnet", "netD": "basic"})  # set networks, a baseline's config
    with pytest.raises(
        ValueError, match=r"G_A.keras: a SetGenerator \(model: ResnetGenerator; see netG/netD\)"
    ):
        InstaGAN.from_run(str(folder))


def test_a_run_whose_discriminators_see_the_union_is_not_loaded_as_the_official_one(tmp_path):
    folder = tmp_path / "union"
    write_run(str(folder), {"netD": "set"}, netD="set_union")
    with pytest.raises(
        ValueError, match=r"D_A.keras: a SetDiscriminator seeing the masks' union \(model: SetDiscriminator;"
    ):
        InstaGAN.from_run(str(folder))
    config = json.load(open(folder / "config.json"))
    json.dump({**config, "netD": "set_union"}, open(folder / "config.json", "w"))
    assert InstaGAN.from_run(str(folder)).D_B.see_union


def write_synthetic_layout(root, phase, count, seed):
    """Synthetic samples saved in the official folder layout (PNG images, one PNG per mask)."""
    from PIL import Image

    for side, (images, masks) in zip("AB", shapes.load(count, 32, 4, seed=seed)):
        for folder in (side, side + "_seg"):
            os.makedirs(os.path.join(root, phase + folder), exist_ok=True)
        for i, (image, sample_masks) in enumerate(zip(images, masks)):
            Image.fromarray(((image + 1) * 127.5).round().astype("uint8")).save(
                os.path.join(root, phase + side, f"s{i}.png")
            )
            for k in range(sample_masks.shape[-1]):
                if sample_masks[..., k].max() > 0:
                    Image.fromarray(((sample_masks[..., k] > 0) * 255).astype("uint8")).save(
                        os.path.join(root, phase + side + "_seg", f"s{i}_{k}.png")
                    )


def test_evaluate_py_on_a_folder_layout(runs, tmp_path):
    root = str(tmp_path / "data")
    write_synthetic_layout(root, "train", 30, seed=1)
    write_synthetic_layout(root, "test", 8, seed=2)
    folder_run = tmp_path / "folder_run"
    write_run(str(folder_run), {"dataroot": "elsewhere/shapes", "phase": "train"})
    results = evaluate.main(
        ["--run", str(runs / "insta"), str(folder_run), "--dataroot", root, "--phase", "test"]
        + ["--discriminators", "--count", "8", "--out", str(tmp_path / "eval")]
    )
    verdicts = json.load(open(tmp_path / "eval.json"))["discriminator_verdicts"]["folder_run"]
    config = json.load(open(folder_run / "config.json"))
    training = evaluate.training_images(config, (32, 32), 8, root, "test")  # its trainA/, trainB/
    model = InstaGAN.from_run(str(folder_run))
    expected = evaluation.discriminator_verdicts(model, {s: training[s] for s in "AB"}, training=training)
    for name in ("D_A", "D_B"):
        assert verdicts[name]["training"] == pytest.approx(expected[name]["real"], abs=1e-6)
        assert verdicts[name]["training"] != pytest.approx(verdicts[name]["real"], abs=1e-6)
    for got, want in zip(training["B"], FolderDomain(root, "train", "B", (32, 32)).load_all(8)):
        np.testing.assert_array_equal(got, want)
    assert (
        evaluate.training_images(config, (32, 32), 8, root, "train") is None
    )  # evaluated on its training set
    row = results["insta"]["AtoB"]
    assert "shape_instances" not in row  # real data: the target shape is unknown
    assert row["background_error"] > 0 and 0 <= row["instances_kept"] <= 1
    assert results["input unchanged"]["BtoA"]["background_error"] == 0.0
    with pytest.raises(SystemExit, match="testB_seg: folder not found"):
        os.rename(os.path.join(root, "testB_seg"), os.path.join(root, "moved"))
        evaluate.main(["--run", str(runs / "insta"), "--dataroot", root, "--phase", "test"])


def test_evaluate_py_scores_the_run_s_own_synthetic_pair(tmp_path):
    """A run trained on triangles ↔ crosses is evaluated on that pair and with those shapes."""
    folder = tmp_path / "tri"
    write_run(str(folder), {"synthetic": "triangles_crosses"})
    judges_dir = tmp_path / "judges"
    results = evaluate.main(
        [
            "--run",
            str(folder),
            "--count",
            "12",
            "--classifier_count",
            "40",
            "--out",
            str(tmp_path / "eval"),
            "--save_classifiers",
            str(judges_dir),
        ]
    )
    assert results["real target"]["AtoB"]["shape_instances"] >= 0.9  # crosses recognised as crosses
    assert results["input unchanged"]["AtoB"]["shape_instances"] <= 0.1  # triangles are not crosses
    assert results["real target"]["AtoB"]["shape_painted"] >= 0.9
    assert results["input unchanged"]["AtoB"]["shape_painted"] <= 0.1
    loaded = evaluation.Judges.load(str(judges_dir), shapes.domain_shapes("triangles_crosses"))
    assert loaded.candidates == ("triangle", "cross") and loaded.masked is not None
    with pytest.raises(FileNotFoundError, match="domain_classifier.keras"):
        evaluation.Judges.load(str(tmp_path))


def test_grid_labels_wrap_within_their_column():
    from PIL import ImageFont

    font = ImageFont.load_default()
    label = "InstaGAN generator, set + image-only D, 150 epochs: painted"
    lines = evaluate.wrap_to_width(label, font, 90)
    assert len(lines) > 1 and " ".join(lines) == label
    assert all(font.getlength(line) <= 90 for line in lines)
    assert evaluate.wrap_to_width("input", font, 90) == ["input"]
    assert evaluate.wrap_to_width("", font, 90) == [""]
