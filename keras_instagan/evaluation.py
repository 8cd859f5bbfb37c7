"""Evaluate trained runs (InstaGAN or a baseline) on held-out data: the numbers behind `evaluate.py`.

One *row* per run and direction. Every number compares a translated source image with what it came
from or with real images of the target domain:

- `background_error` (↓, 0–255): mean |input − translated| outside the input and translated masks.
- `instances_kept` (↑): instances out / instances in (`metrics.instance_counts`): slot by slot for
  InstaGAN; for CycleGAN+Seg, whose one merged mask cannot tell instances apart, the connected
  components of the translated union against those of the input union. None for CycleGAN (no masks).
- `shape_instances` (↑, synthetic data): share of input instances whose translated mask has the target
  shape (`metrics.shape_score`, slot by slot; InstaGAN only).
- `shape_components` (↑, synthetic data): the same on the connected components of the translated
  union, comparable across InstaGAN and CycleGAN+Seg: Σ hits / Σ max(components in, out).
- `shape_painted` (↑, synthetic data): share of input instances that the translated *image* paints
  in the target shape (`metrics.painted_masks`: the object's colour read from the image, no
  translated mask needed), for every method, CycleGAN included. High `shape_instances` with low
  `shape_painted` means the masks turned and the picture did not.
- `classification`, `classification_masked` (↑): share of translated images a domain classifier puts
  in the target domain; the masked one sees only the pixels inside the translated masks.
- `fid`, `kid` (↓): between translated images and real target images, on a feature extractor (KID
  as the plain MMD², not ×100: its scale follows the extractor's); None with fewer than 2 images on
  either side.

Two reference rows frame them: `input unchanged` (no translation: the floor; its shape scores are
those of the source masks) and `real target` (the real target-domain images and masks: the
classifiers' accuracy and the shape score's ceiling).

`discriminator_verdicts` asks a run's own discriminators what they accept as real (`evaluate.py
--discriminators`): whether they check that a picture agrees with its masks. `cycle_pull`
(`evaluate.py --cycle_pull`) measures whether the cycle term rewards a translation for keeping what
it should have given up of the source objects.
"""

import os

import keras
import numpy as np

from keras_instagan import classifier, metrics

SIDES = {"AtoB": ("A", "B"), "BtoA": ("B", "A")}
METRICS = (
    "background_error",
    "instances_kept",
    "shape_instances",
    "shape_components",
    "shape_painted",
    "object_texture",
    "classification",
    "classification_masked",
    "fid",
    "kid",
)
SHARES = ("shape_instances", "shape_painted", "classification", "classification_masked")
COLUMNS = (
    ("background_error", "bg err ↓", 2),
    ("instances_kept", "inst kept ↑", 3),
    ("shape_instances", "shape inst ↑", 3),
    ("shape_components", "shape comp ↑", 3),
    ("shape_painted", "shape painted ↑", 3),
    ("object_texture", "texture ↓", 2),
    ("classification", "cls ↑", 3),
    ("classification_masked", "cls masked ↑", 3),
    ("fid", "FID ↓", 3),
    ("kid", "KID ↓", 3),
)


def translate_all(model, images, masks, direction, batch_size=16):
    """`model.translate` over `(n, H, W, 3)` images and `(n, H, W, N)` masks in batches."""
    outputs = [
        model.translate(images[i : i + batch_size], masks[i : i + batch_size], direction)
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate([o[0] for o in outputs]), np.concatenate([o[1] for o in outputs])


def _union_components(masks):
    """Per sample, the connected components of the union of `(n, H, W, N)` masks."""
    return [metrics.connected_components((m > 0).any(-1)) for m in np.asarray(masks)]


def _shape_components(components_in, components_out, target, candidates):
    """Σ hits / Σ max(components in, out) over samples, given both lists of component masks."""
    hits = total = 0
    for before, after in zip(components_in, components_out):
        hits += sum(metrics.shape_of(after[..., k], candidates) == target for k in range(after.shape[-1]))
        total += max(before.shape[-1], after.shape[-1])
    return hits / total if total else float("nan")


def _share(counts):
    """`hits.sum() / totals.sum()` of `(hits, totals)`; None for no counts, NaN for a zero total."""
    if counts is None:
        return None
    hits, totals = counts
    total = np.sum(totals)
    return float(np.sum(hits) / total) if total else float("nan")


def _components_kept(components_in, components_out):
    counts_in = sum(c.shape[-1] for c in components_in)
    counts_out = sum(c.shape[-1] for c in components_out)
    return counts_out / counts_in if counts_in else float("nan")


class Judges:
    """What scores a translation: the domain classifiers, the feature extractor, the target shapes.

    Args:
        plain: a domain classifier (`.keras`, P(domain B) from a whole image).
        masked: a domain classifier for `metrics.masked_images` (None: no masked score).
        extractor: a Keras model for FID/KID features (None: the plain classifier's features).
        shapes: `{"A": shape, "B": shape}` of the synthetic data (None: real data, no shape score).
    """

    FILES = {"plain": "domain_classifier.keras", "masked": "masked_domain_classifier.keras"}
    # What `check` asks of each judge on real images before its scores are reported.
    MIN_ACCURACY = 0.8
    MIN_SEPARATION = 1.5

    def __init__(self, plain, masked=None, extractor=None, shapes=None):
        self.plain, self.masked, self.shapes = plain, masked, shapes
        self.candidates = None if shapes is None else (shapes["A"], shapes["B"])
        self.extractor = extractor if extractor is not None else plain
        self.refused = set()

    def check(self, data):
        """Test the judges on real images of both domains, `{"A": (images, masks), "B": ...}` (never
        their training images), and refuse those that cannot tell the domains apart: their scores
        become None in every later `score`. Returns `{judge: (value, passed)}`:

        - `plain`, `masked`: the classifier's balanced accuracy (mean of the per-domain accuracies),
          at least `MIN_ACCURACY`;
        - `features` (with at least 4 images per domain): FID between the two domains over the larger
          FID between the halves of one domain, at least `MIN_SEPARATION` (features that separate
          nothing make FID/KID noise).
        """
        results = {}
        for key, model in (("plain", self.plain), ("masked", self.masked)):
            if model is None:
                continue
            shown = {
                side: (data[side][0] if key == "plain" else metrics.masked_images(*data[side]))
                for side in "AB"
            }
            accuracy = np.mean(
                [metrics.classification_score(classifier.predict(model, shown[side]), side) for side in "AB"]
            )
            results[key] = (float(accuracy), bool(accuracy >= self.MIN_ACCURACY))
        if min(len(data[side][0]) for side in "AB") >= 4:  # two halves of at least two images each
            features = {side: classifier.features(self.extractor, data[side][0]) for side in "AB"}
            within = max(metrics.frechet_distance(f[0::2], f[1::2]) for f in features.values())
            between = metrics.frechet_distance(features["A"], features["B"])
            separation = between / within if within > 0 else float("inf")
            results["features"] = (float(separation), bool(separation >= self.MIN_SEPARATION))
        self.refused = {key for key, (_, passed) in results.items() if not passed}
        return results

    def save(self, directory):
        """Write the domain classifiers to `directory` (`Judges.FILES`)."""
        os.makedirs(directory, exist_ok=True)
        for key, filename in self.FILES.items():
            if getattr(self, key) is not None:
                getattr(self, key).save(os.path.join(directory, filename))

    @classmethod
    def saved_in(cls, directory):
        """Whether `save` wrote judges to `directory`."""
        return os.path.exists(os.path.join(directory, cls.FILES["plain"]))

    @classmethod
    def load(cls, directory, shapes=None):
        """The judges `save` wrote to `directory` (no separate feature extractor)."""
        models = {
            key: keras.saving.load_model(os.path.join(directory, filename), compile=False)
            for key, filename in cls.FILES.items()
            if os.path.exists(os.path.join(directory, filename))
        }
        if "plain" not in models:
            raise FileNotFoundError(f"{directory}: no {cls.FILES['plain']} (written by Judges.save)")
        return cls(models["plain"], models.get("masked"), shapes=shapes)

    def score(
        self, source, translated, real_target, target, kind="instagan", kid_subsets=10, intervals=False
    ):
        """The row of one translation.

        Args:
            source: `(images, masks)` that went in.
            translated: `(images, masks)` that came out (masks `(n, H, W, 1)` for CycleGAN+Seg).
            real_target: `(images, masks)` of real target-domain data (FID/KID reference).
            target: "A" or "B".
            kind: "instagan" (one mask per instance), "merged" (CycleGAN+Seg), "image" (CycleGAN: no
                translated masks), "unchanged" (the input itself: shape scores, no instance count).
            intervals: also `row["intervals"]`, `{metric: (low, high)}`: the 95 % bootstrap interval
                over the images of each score that is a share (`shares`).
        """
        (image, masks), (fake, fake_masks) = source, translated
        row = {
            "background_error": float(np.nanmean(metrics.background_error(image, fake, masks, fake_masks)))
        }
        row["instances_kept"] = metrics.instance_fidelity(masks, fake_masks) if kind == "instagan" else None
        counts = self.shares(source, translated, target, kind)
        components = None
        if kind == "merged" or (kind != "image" and self.shapes is not None):
            components = _union_components(masks), _union_components(fake_masks)
        if kind == "merged":
            row["instances_kept"] = _components_kept(*components)
        if self.shapes is not None:
            row["shape_instances"] = _share(counts.get("shape_instances"))
            row["shape_components"] = (
                _shape_components(*components, self.shapes[target], self.candidates)
                if components is not None
                else None
            )
            row["shape_painted"] = _share(counts["shape_painted"])
        row["object_texture"] = _nanmean(metrics.object_texture(fake, fake_masks))  # CycleGAN: the input's
        row.update(self._classification(counts))
        row["fid"] = row["kid"] = None
        if "features" not in self.refused and min(len(fake), len(real_target[0])) >= 2:
            fake_features = classifier.features(self.extractor, fake)
            real_features = classifier.features(self.extractor, real_target[0])
            row["fid"] = metrics.frechet_distance(fake_features, real_features)
            row["kid"] = metrics.kernel_distance(fake_features, real_features, subsets=kid_subsets)[0]
        if intervals:
            row["intervals"] = {key: metrics.bootstrap_interval(*c) for key, c in counts.items()}
        return row

    def shares(self, source, translated, target, kind="instagan"):
        """The per-image counts behind the scores that are shares of instances or images:
        `{metric: (hits, totals)}`, two `(n,)` arrays each, the score being `hits.sum() /
        totals.sum()`. For `shape_instances` (InstaGAN and "unchanged" only) and `shape_painted`
        (with target shapes), `classification` and `classification_masked` (unless `check` refused
        the classifier). `kind` as in `score`, or "real": the real-target row (`source` and
        `translated` both the real target images; every mask an instance)."""
        (image, masks), (fake, fake_masks) = source, translated
        counts = {}
        if self.shapes is not None:
            shape = self.shapes[target]
            if kind in ("instagan", "unchanged", "real"):
                counts["shape_instances"] = metrics.shape_hits(
                    fake_masks, shape, reference=None if kind == "real" else masks, candidates=self.candidates
                )
            painted = metrics.painted_masks(image, masks, fake)
            counts["shape_painted"] = metrics.shape_hits(
                painted, shape, reference=masks, candidates=self.candidates
            )
        counts.update(self._classified(fake, fake_masks, target))
        return counts

    def _classified(self, images, masks, target):
        """`{"classification": (hits, totals), "classification_masked": ...}` as in `shares`: whether
        each image is put in domain `target` by the plain classifier and, where there is a masked
        one, by the masked one on `metrics.masked_images(images, masks)` (totals all 1); classifiers
        `check` refused are left out."""
        shown = {"classification": ("plain", self.plain, images)}
        if self.masked is not None and "masked" not in self.refused:
            shown["classification_masked"] = ("masked", self.masked, metrics.masked_images(images, masks))
        return {
            key: (metrics.classified_as(classifier.predict(model, x), target), np.ones(len(x), int))
            for key, (judge, model, x) in shown.items()
            if judge not in self.refused
        }

    def _classification(self, counts):
        row = {"classification": _share(counts.get("classification"))}
        if self.masked is not None:
            row["classification_masked"] = _share(counts.get("classification_masked"))
        return row

    def classify(self, images, masks, target):
        """The classification scores of `images` as domain `target` ("A" or "B"): `classification` by
        the plain classifier and, where there is a masked one, `classification_masked` of
        `metrics.masked_images(images, masks)`; None for a classifier `check` refused."""
        return self._classification(self._classified(images, masks, target))

    def reference(self, data, direction, intervals=False):
        """The two reference rows of a direction: `input unchanged` and `real target` (with
        `intervals` as in `score`)."""
        source_side, target_side = SIDES[direction]
        source, target = data[source_side], data[target_side]
        unchanged = self.score(source, source, target, target_side, kind="unchanged", intervals=intervals)
        counts = self.shares(target, target, target_side, kind="real")
        real = {"background_error": None, "instances_kept": None}
        if self.shapes is not None:
            real["shape_instances"] = _share(counts["shape_instances"])
            components = _union_components(target[1])
            real["shape_components"] = _shape_components(
                components, components, self.shapes[target_side], self.candidates
            )
            real["shape_painted"] = _share(counts["shape_painted"])
        real["object_texture"] = _nanmean(metrics.object_texture(*target))
        real.update(self._classification(counts))
        real["fid"] = real["kid"] = None
        if intervals:
            real["intervals"] = {key: metrics.bootstrap_interval(*c) for key, c in counts.items()}
        return {"input unchanged": unchanged, "real target": real}


def train_judges(training_data, shapes=None, plain=None, masked=None, extractor=None):
    """`Judges` whose domain classifiers not given are trained here from scratch
    (`classifier.train_domain_classifier`) on `training_data`, `{"A": (images, masks), "B": ...}`:
    real images of both domains, never the evaluation samples."""
    (images_a, masks_a), (images_b, masks_b) = training_data["A"], training_data["B"]
    if plain is None:
        plain = classifier.train_domain_classifier(images_a, images_b)
    if masked is None:
        masked = classifier.train_domain_classifier(images_a, images_b, masks_a, masks_b)
    return Judges(plain, masked, extractor, shapes)


def classification_by(judges, data, translated):
    """The plain and masked classification scores that `judges` give the real target images and each
    translation: `{name: {direction: {"classification", "classification_masked"}}}`, name "real
    target" or a key of `translated`, `{name: {direction: (images, masks)}}` (`translate_all`'s
    output). With `data`'s samples fixed, it tells how much a score owes to the judges that gave it.
    A judge that `Judges.check` refused scores None."""
    rows = {"real target": {d: judges.classify(*data[SIDES[d][1]], SIDES[d][1]) for d in SIDES}}
    for name, per_direction in translated.items():
        rows[name] = {d: judges.classify(*pair, SIDES[d][1]) for d, pair in per_direction.items()}
    return rows


def judge_draws_table(results, draws, main_seed):
    """A Markdown table: per row of `results` and direction, the classification scores (plain /
    masked) of the main judges (trained on samples of `main_seed`) and of each draw of `draws`,
    `{seed: classification_by(...)}`."""
    seeds = list(draws)
    lines = [
        "| run | direction | " + " | ".join(f"seed {s}" for s in [main_seed, *seeds]) + " |",
        "|" + "---|" * (2 + len(seeds) + 1),
    ]

    def cell(row):
        return " / ".join(_cell(row.get(key), 3) for key in ("classification", "classification_masked"))

    for name in draws[seeds[0]]:
        for direction in SIDES:
            if direction not in draws[seeds[0]][name]:
                continue
            cells = [cell(results[name][direction])] + [cell(draws[s][name][direction]) for s in seeds]
            lines.append(f"| {name} | {direction} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def kind_of(model):
    """ "instagan", "merged" or "image": how a model's translated masks are scored."""
    return {"set": "instagan", "resnet_seg": "merged", "resnet": "image"}[model.netG]


def evaluate_model(model, data, judges, directions=("AtoB", "BtoA"), batch_size=16, intervals=False):
    """`{direction: row}` for one model. `data`: `{"A": (images, masks), "B": (images, masks)}`;
    `intervals` as in `Judges.score`."""
    rows = {}
    for direction in directions:
        source_side, target_side = SIDES[direction]
        translated = translate_all(model, *data[source_side], direction, batch_size)
        rows[direction] = judges.score(
            data[source_side], translated, data[target_side], target_side, kind_of(model), intervals=intervals
        )
    return rows


VERDICTS = (
    ("training", "real, its training images"),
    ("real", "real, own masks"),
    ("other_masks", "real, another image's masks"),
    ("source_masks", "real, source-domain masks"),
    ("source_picture", "source picture, translated masks"),
    ("translation", "translation"),
)


def _mean_verdict(discriminator, images, masks, batch_size):
    """The verdict averaged over patches and samples, in batches."""
    total = 0.0
    for i in range(0, len(images), batch_size):
        verdict = keras.ops.convert_to_numpy(
            discriminator([images[i : i + batch_size], masks[i : i + batch_size]])
        )
        total += float(np.sum(np.mean(verdict.reshape(len(verdict), -1), axis=1)))
    return total / len(images)


def memorisation(model, training, held_out, batch_size=16):
    """How much more real each discriminator calls real images it was trained on than fresh ones:
    `{"D_A": ..., "D_B": ...}`, the mean LSGAN verdict on `training` minus that on `held_out` (both
    `{"A": (images, masks), "B": ...}`; D_A judges domain B, D_B domain A). Near 0 for a discriminator
    that generalises; a large gap means it recognises its training images, and its verdict on
    anything new (the translations) tells the generator little.
    """
    return {
        name: _mean_verdict(getattr(model, name), *training[side], batch_size)
        - _mean_verdict(getattr(model, name), *held_out[side], batch_size)
        for name, side in (("D_A", "B"), ("D_B", "A"))
    }


def discriminator_verdicts(model, data, batch_size=16, training=None):
    """Mean LSGAN verdict (1 = real, 0 = fake) of each of `model`'s discriminators on up to six kinds
    of (image, masks) pair; `{"D_A": {kind: verdict}, "D_B": {...}}` (D_A judges domain B, D_B domain A).

    `data`: `{"A": (images, masks), "B": (images, masks)}`, images `(n, H, W, 3)` in [-1, 1], masks
    `(n, H, W, ins_max)` in {−1, +1}; `training`: the same for images the model was trained on, or
    None. For D_A, with n = the smaller domain's count:
    - `training`: real B images it was trained on, with their masks (None without `training`); a
      discriminator that scores them well above `real` has memorised its training images, and its
      verdict on anything new tells a generator little;
    - `real`: real B images with their own masks;
    - `other_masks`: real B images, each with the masks of the next B image (a picture whose objects
      are elsewhere than its masks say);
    - `source_masks`: real B images with A masks (masks of the wrong shape);
    - `source_picture`: real A images with their masks translated A→B (the masks turned, the picture
      not: what `lambda_mismatch` teaches the discriminators to call fake);
    - `translation`: `model.translate` A→B, image and masks.

    A discriminator that checks agreement scores `other_masks` and `source_picture` well below
    `real`; one that scores them near `real` lets a generator turn the masks without the picture.
    """
    count = min(len(data["A"][0]), len(data["B"][0]))
    verdicts = {}
    for name, direction in (("D_A", "AtoB"), ("D_B", "BtoA")):
        source_side, target_side = SIDES[direction]
        source, target = data[source_side], data[target_side]
        images, masks = (x[:count] for x in target)
        source_images, source_masks = (x[:count] for x in source)
        translated = translate_all(model, source_images, source_masks, direction, batch_size)
        pairs = {
            "real": (images, masks),
            "other_masks": (images, np.roll(masks, 1, axis=0)),
            "source_masks": (images, source_masks),
            "source_picture": (source_images, translated[1]),
            "translation": translated,
        }
        judge = getattr(model, name)
        verdicts[name] = {
            "training": None if training is None else _mean_verdict(judge, *training[target_side], batch_size)
        }
        verdicts[name].update({kind: _mean_verdict(judge, *pair, batch_size) for kind, pair in pairs.items()})
    return verdicts


def _dilate(masks, steps):
    """`steps` steps of 4-neighbour binary dilation of `(n, H, W)` bool arrays."""
    for _ in range(steps):
        padded = np.pad(masks, ((0, 0), (1, 1), (1, 1)))
        masks = (
            masks | padded[:, :-2, 1:-1] | padded[:, 2:, 1:-1] | padded[:, 1:-1, :-2] | padded[:, 1:-1, 2:]
        )
    return masks


def cycle_pull(model, data, batch_size=16, ring=3):
    """Does the cycle term pay a translation for keeping the parts of the source objects it gives up?

    Per direction: the source images are translated (`model.translate`); the *given-up* pixels are
    those inside a source mask and outside every translated mask (A square's corners under an ellipse
    mask, B→A). A *cleaned* copy of the translation paints them in the background's colour next to
    them (the translation's mean in a `ring`-pixel band outside both mask unions). Both copies are
    translated back with the translated masks, and the cycle's L1 error (mean over channels, images
    in [-1, 1]) is compared inside the given-up pixels and over the whole image. A cleaned error well
    above the kept one means the cycle term pulls against giving the source shape up.

    `data`: `{"A": (images, masks), "B": (images, masks)}` as in `discriminator_verdicts`. Returns
    `{direction: {"given_up", "region_kept", "region_cleaned", "image_kept", "image_cleaned"}}`;
    `given_up` is the share of the source objects' pixels; the region errors are None where no pixel
    was given up.
    """
    pulls = {}
    for direction, back in (("AtoB", "BtoA"), ("BtoA", "AtoB")):
        images, masks = data[SIDES[direction][0]]
        translated, translated_masks = translate_all(model, images, masks, direction, batch_size)
        source_union, translated_union = (masks > 0).any(-1), (translated_masks > 0).any(-1)
        given_up = source_union & ~translated_union
        band = _dilate(source_union | translated_union, ring) & ~(source_union | translated_union)
        cleaned = translated.copy()
        for n in np.flatnonzero(given_up.any((1, 2)) & band.any((1, 2))):
            cleaned[n][given_up[n]] = translated[n][band[n]].mean(0)
        errors = {}
        for name, image in (("kept", translated), ("cleaned", cleaned)):
            reconstructed, _ = translate_all(model, image, translated_masks, back, batch_size)
            error = np.abs(reconstructed - images).mean(-1)
            errors[f"region_{name}"] = float(error[given_up].mean()) if given_up.any() else None
            errors[f"image_{name}"] = float(error.mean())
        pulls[direction] = {"given_up": float(given_up.sum() / max(source_union.sum(), 1)), **errors}
    return pulls


def texture_by_input(model, data, batch_size=16):
    """Does a generator add texture inside its objects only where no L1 term compares its output with
    a flat original?

    For each direction's generator, `metrics.object_texture` (0–255, under the generator's own output
    masks, mean over images) of its translations of three inputs:
    - `source`: the real source-domain images: only the discriminator judges these translations;
    - `cycle`: the other generator's translations of real target-domain images: the cycle term
      compares these translations with the (flat) originals;
    - `identity`: the real target-domain images: the identity term compares these with the inputs.
    A `source` texture well above `cycle` and `identity` is texture that only the discriminator stands
    against.

    `data`: `{"A": (images, masks), "B": (images, masks)}` as in `discriminator_verdicts`. Returns
    `{direction: {"source", "cycle", "identity"}}`, None where no object was left to read.
    """
    textures = {}
    for direction, back in (("AtoB", "BtoA"), ("BtoA", "AtoB")):
        source_side, target_side = SIDES[direction]
        inputs = {
            "source": data[source_side],
            "cycle": translate_all(model, *data[target_side], back, batch_size),
            "identity": data[target_side],
        }
        textures[direction] = {
            name: _nanmean(metrics.object_texture(*translate_all(model, *pair, direction, batch_size)))
            for name, pair in inputs.items()
        }
    return textures


def texture_by_input_table(textures):
    """A Markdown table of `{run: texture_by_input(...)}`: one row per run and generator."""
    header = [
        "run",
        "generator",
        "texture ↓ of its translations of: real source",
        "cycle input",
        "real target",
    ]
    rows = [
        [name, direction] + [_cell(texture[key], 2) for key in ("source", "cycle", "identity")]
        for name, per_direction in textures.items()
        for direction, texture in per_direction.items()
    ]
    return _markdown(header, rows)


def cycle_pull_table(pulls):
    """A Markdown table of `{run: cycle_pull(...)}`: one row per run and direction."""
    header = [
        "run",
        "direction",
        "given up",
        "cycle L1 there, kept",
        "cleaned",
        "whole image, kept",
        "cleaned",
    ]
    keys = ("given_up", "region_kept", "region_cleaned", "image_kept", "image_cleaned")
    rows = [
        [name, direction] + [_cell(pull[key], 4) for key in keys]
        for name, per_direction in pulls.items()
        for direction, pull in per_direction.items()
    ]
    return _markdown(header, rows)


def verdict_table(verdicts):
    """A Markdown table of `{run: discriminator_verdicts(...)}`: one row per run and discriminator."""
    header = ["run", "discriminator"] + [title for _, title in VERDICTS]
    rows = [
        [name, f"{network} (judges {judges})"]
        + [_cell(per_network[network][kind], 3) for kind, _ in VERDICTS]
        for name, per_network in verdicts.items()
        for network, judges in (("D_A", "B"), ("D_B", "A"))
    ]
    return _markdown(header, rows)


def intervals_table(results):
    """A Markdown table of the rows of `results` (`{name: {direction: row}}`) scored with
    `intervals`: per run and direction each share score with its 95 % interval, `score (low–high)`."""
    scored = [
        (name, direction, per[direction])
        for name, per in results.items()
        for direction in SIDES
        if "intervals" in per.get(direction, {})
    ]
    keys = [key for key in SHARES if any(row.get(key) is not None for _, _, row in scored)]

    def cell(row, key):
        if row.get(key) is None:
            return "—"
        return f"{_cell(row[key], 3)} ({_interval(row['intervals'].get(key))})"

    titles = {key: title for key, title, _ in COLUMNS}
    rows = [[name, direction] + [cell(row, key) for key in keys] for name, direction, row in scored]
    return _markdown(["run", "direction"] + [titles[key] for key in keys], rows)


def _interval(bounds):
    return "—" if bounds is None else "–".join(_cell(b, 3) for b in bounds)


def _markdown(header, rows):
    """A Markdown table of `header` cells and `rows`, lists of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])


def _nanmean(values):
    return float(np.nanmean(values)) if np.isfinite(values).any() else None


def _cell(value, digits):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    return f"{value:.{digits}f}" if abs(value) < 10**4 else f"{value:.{digits}g}"


def markdown_table(results, direction, extra_columns=()):
    """A Markdown table of `results[name][direction]` rows; `extra_columns` = `(key, title)` pairs
    read from `results[name]["info"]` first (e.g. the training options)."""
    names = [name for name in results if direction in results[name]]
    present = [c for c in COLUMNS if any(c[0] in results[n][direction] for n in names)]
    header = ["run"] + [title for _, title in extra_columns] + [title for _, title, _ in present]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        info = results[name].get("info", {})
        cells = [name] + [str(info.get(key, "")) for key, _ in extra_columns]
        cells += [_cell(results[name][direction].get(key), digits) for key, _, digits in present]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
