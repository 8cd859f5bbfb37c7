"""Real data: the official folder layout, COCO annotations, the file-backed tf.data pipeline and its
errors."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from utils import command

from keras_instagan.data import CocoDomain, FolderDomain, unpaired_dataset
from keras_instagan.data.coco import annotation_mask
from keras_instagan.data.prepare_coco import main as prepare_coco
from keras_instagan.run import RunDirectory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "data", "shp2gir_coco_sample")
# train.py options of a one-epoch run on write_layout's 24×32 images
TINY_FOLDER_RUN = ["--ngf", "4", "--ndf", "4", "--n_blocks", "1", "--fineSizeH", "24", "--fineSizeW", "32",
                   "--niter", "1", "--niter_decay", "0", "--eval_samples", "2", "--grid_rows", "1",
                   "--pool_size", "2"]  # fmt: skip


def box(height, width, top, left, bottom, right):
    mask = np.zeros((height, width), bool)
    mask[top:bottom, left:right] = True
    return mask


def write_layout(root, phase="train", masks_as="L", seed=0):
    """A tiny official layout; domain A: a PNG with 3 masks (one RGB, one JPEG-free 0/1 'L'), a JPEG
    with 22 masks, a PNG without masks; domain B: one image with one mask; the pixels random from
    `seed`. Returns the masks."""
    rng = np.random.default_rng(seed)
    for folder in ("A", "A_seg", "B", "B_seg"):
        os.makedirs(os.path.join(root, f"{phase}{folder}"), exist_ok=True)

    def image(name, domain, size=(24, 32)):
        pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(root, f"{phase}{domain}", name), quality=100)
        return pixels

    def mask(name, domain, array, mode):
        if mode == "RGB":
            rgb = np.zeros((*array.shape, 3), np.uint8)
            rgb[array, 2] = 200  # non-zero in one channel only
            Image.fromarray(rgb).save(os.path.join(root, f"{phase}{domain}_seg", name))
        else:
            Image.fromarray(array.astype(np.uint8) * (255 if mode == "L" else 1)).save(
                os.path.join(root, f"{phase}{domain}_seg", name)
            )

    image("a1.png", "A")
    first = [box(24, 32, 0, 0, 4, 4), box(24, 32, 2, 2, 22, 30), box(24, 32, 10, 10, 20, 16)]
    for k, (m, mode) in enumerate(zip(first, ("L", "RGB", "01"))):
        mask(f"a1_{k}.png", "A", m, mode)
    image("a2.jpg", "A")
    many = [box(24, 32, 0, k, k + 1, k + 1) for k in range(22)]  # area k + 1
    for k, m in enumerate(many):
        mask(f"a2_{k}.png", "A", m, "L")
    image("a3.png", "A")
    image("b1.png", "B")
    mask("b1_0.png", "B", box(24, 32, 5, 5, 15, 15), "L")
    return first, many


def test_official_sample_loads_every_instance_sorted_by_area():
    for side in "AB":
        domain = FolderDomain(SAMPLE, "sample", side, load_size=(128, 128), ins_max=20)
        files = {f for f in os.listdir(os.path.join(SAMPLE, f"sample{side}_seg"))}
        assert len(domain) == 7 and sum(domain.instance_counts()) == len(files)
        for index, count in enumerate(domain.instance_counts()):
            image, masks = domain.load(index)
            assert image.shape == (128, 128, 3) and -1 <= image.min() and image.max() <= 1
            assert masks.shape == (128, 128, 20) and -1 <= masks.min() and masks.max() <= 1
            area = (masks + 1).sum(axis=(0, 1))
            assert (area > 0).sum() == count
            assert np.all(np.diff(area) <= 0)
        four = FolderDomain(SAMPLE, "sample", side, load_size=(128, 128), ins_max=4)
        for index, count in enumerate(four.instance_counts()):
            kept = ((four.load(index)[1] + 1).sum(axis=(0, 1)) > 0).sum()
            assert kept == min(count, 4)


def test_folder_layout_reads_any_path_jpeg_rgb_masks_and_no_cap(tmp_path):
    root = str(tmp_path / "ABBA data B")  # capital A/B in the path broke the official loader
    first, many = write_layout(root)
    domain = FolderDomain(root, "train", "A", ins_max=25)
    assert len(domain) == 3 and domain.instance_counts() == [3, 22, 0]
    image, masks = domain.load(0)
    assert image.shape == (24, 32, 3) and masks.shape == (24, 32, 25)
    by_area = sorted(first, key=lambda m: -m.sum())
    for slot, expected in enumerate(by_area):  # stored size: no resize, masks exactly ±1
        np.testing.assert_array_equal(masks[..., slot], np.where(expected, 1.0, -1.0))
    assert np.all(masks[..., 3:] == -1)
    _, masks = domain.load(1)  # 22 masks: no cap of 20, largest first
    for slot in range(22):
        np.testing.assert_array_equal(masks[..., slot], np.where(many[21 - slot], 1.0, -1.0))
    _, masks = domain.load(2)  # an image without masks: every slot empty
    assert np.all(masks == -1)
    top4 = FolderDomain(root, "train", "A", load_size=(48, 64), ins_max=4)
    image, masks = top4.load(1)
    assert image.shape == (48, 64, 3) and masks.shape == (48, 64, 4)
    assert masks.min() >= -1 and masks.max() <= 1  # resized masks are soft and stay in range
    area = (masks + 1).sum(axis=(0, 1))
    assert np.all(np.diff(area) <= 0) and np.all(area > 0)


def test_an_image_that_fails_to_decode_mid_training_ends_the_process_in_one_line(tmp_path):
    root = str(tmp_path / "data")
    write_layout(root)
    for k in range(4, 8):  # more images, so that a3 is not among the first two held-out samples
        shutil.copy(os.path.join(root, "trainA", "a1.png"), os.path.join(root, "trainA", f"a{k}.png"))
    data = open(os.path.join(root, "trainA", "a1.png"), "rb").read()
    with open(os.path.join(root, "trainA", "a5.png"), "wb") as f:
        f.write(data[: len(data) // 2])  # a valid header, a truncated body: found only when loaded
    run = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "train.py"),
            *("--dataroot", root, "--checkpoints_dir", str(tmp_path), "--name", "broken"),
            *("--loadSizeH", "24", "--loadSizeW", "32", *TINY_FOLDER_RUN),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    assert re.match(
        r"train\.py: .*a5\.png: not a readable image \(corrupt or truncated\?\).*\(stopped; "
        r".*broken/state holds the last finished epoch",
        last,
    ), last


def test_misnamed_masks_fail_at_scan_and_a_mostly_empty_domain_warns(tmp_path):
    root = str(tmp_path / "data")
    write_layout(root)
    seg = os.path.join(root, "trainB_seg")
    os.rename(os.path.join(seg, "b1_0.png"), os.path.join(seg, "b1-0.png"))  # "-" for "_"
    with pytest.raises(
        ValueError,
        match=r"domain B: no image has an instance mask \(expected "
        r".*trainB_seg/<stem>_<k>\.png .*none found for .*b1\.png\)",
    ):
        FolderDomain(root, "train", "B")
    os.rename(os.path.join(seg, "b1-0.png"), os.path.join(seg, "x1_0.png"))  # a stem of no image
    with pytest.raises(ValueError, match=r"1 mask stem\(s\) there match no image, e.g. 'x1'"):
        FolderDomain(root, "train", "B")
    for mask_file in os.listdir(os.path.join(root, "trainA_seg")):  # a2 loses its masks: a1 keeps some
        if mask_file.startswith("a2_"):
            os.remove(os.path.join(root, "trainA_seg", mask_file))
    with pytest.warns(UserWarning, match=r"domain A: 2 of 3 images have no instance mask"):
        FolderDomain(root, "train", "A")


def test_file_pipeline_crops_and_flips_image_and_masks_together(tmp_path):
    root = str(tmp_path / "data")
    write_layout(root)
    domain_a = FolderDomain(root, "train", "A", ins_max=3)
    domain_b = FolderDomain(root, "train", "B", ins_max=3)
    full_image, full_masks = domain_a.load(0)
    offsets, flips = set(), set()
    for seed in range(12):
        tf.random.set_seed(seed)  # the crop and flip draw from TensorFlow's seeded op RNG
        dataset = unpaired_dataset(
            domain_a, domain_b, batch_size=1, shuffle=False, seed=seed, crop=(16, 20), flip=True
        )
        (image, masks), _ = next(iter(dataset))
        image, masks = image.numpy()[0], masks.numpy()[0]
        found = [
            (top, left, flip)
            for flip in (False, True)
            for top in range(24 - 16 + 1)
            for left in range(32 - 20 + 1)
            if np.array_equal(
                (full_image[:, ::-1] if flip else full_image)[top : top + 16, left : left + 20], image
            )
        ]
        assert len(found) == 1
        top, left, flip = found[0]
        offsets.add((top, left))
        flips.add(flip)
        window = (full_masks[:, ::-1] if flip else full_masks)[top : top + 16, left : left + 20]
        order = np.argsort(-(window + 1).sum(axis=(0, 1)), kind="stable")
        np.testing.assert_array_equal(masks, window[..., order])  # re-sorted by area after the crop
    assert flips == {False, True} and len(offsets) > 3


def test_file_pipeline_epoch_cache_and_training_shapes(tmp_path):
    root = str(tmp_path / "data")
    write_layout(root)
    domain_a = FolderDomain(root, "train", "A", load_size=(24, 32), ins_max=4)
    domain_b = FolderDomain(root, "train", "B", load_size=(24, 32), ins_max=4)
    for cache in (None, ""):
        batches = list(unpaired_dataset(domain_a, domain_b, batch_size=1, seed=0, crop=(20, 28), cache=cache))
        assert len(batches) == 3  # max(|A|, |B|)
        (image_a, masks_a), (image_b, masks_b) = batches[0]
        assert image_a.shape == (1, 20, 28, 3) and masks_b.shape == (1, 20, 28, 4)
    with pytest.raises(ValueError, match=r"crop \(32, 32\) is larger than domain_a's samples \(24, 32\)"):
        unpaired_dataset(domain_a, domain_b, crop=(32, 32))


def test_bad_folder_inputs_name_the_file(tmp_path):
    root = str(tmp_path / "data")
    write_layout(root)
    with pytest.raises(ValueError, match=r"trainC: folder not found"):
        FolderDomain(root, "train", "C")
    os.rename(os.path.join(root, "trainB_seg"), os.path.join(root, "elsewhere"))
    with pytest.raises(ValueError, match=r"trainB_seg: folder not found"):
        FolderDomain(root, "train", "B")
    os.makedirs(os.path.join(root, "emptyA"))
    os.makedirs(os.path.join(root, "emptyA_seg"))
    with pytest.raises(ValueError, match=r"emptyA: no PNG or JPEG images: domain A is empty"):
        FolderDomain(root, "empty", "A")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(os.path.join(root, "trainA_seg", "a3_0.png"))
    with pytest.raises(ValueError, match=r"a3_0\.png: mask is 10×10 \(H×W\), its image .*a3\.png is 24×32"):
        FolderDomain(root, "train", "A")
    os.remove(os.path.join(root, "trainA_seg", "a3_0.png"))
    with open(os.path.join(root, "trainA", "a3.png"), "wb") as f:
        f.write(b"not a png at all")
    with pytest.raises(ValueError, match=r"a3\.png: not a readable image"):
        FolderDomain(root, "train", "A")
    data = open(os.path.join(root, "trainA", "a1.png"), "rb").read()
    with open(os.path.join(root, "trainA", "a3.png"), "wb") as f:
        f.write(data[: len(data) // 2])  # a valid header, a truncated body
    domain = FolderDomain(root, "train", "A")
    with pytest.raises(ValueError, match=r"a3\.png: not a readable image \(corrupt or truncated\?\)"):
        domain.load(2)


def coco_fixture(root):
    """Three images, categories sheep/giraffe/dog: a polygon, a compressed RLE, a crowd (uncompressed
    RLE), an instance whose `area` is below 10, a giraffe polygon. Returns the expected masks per image id."""
    from pycocotools import mask as api

    images = os.path.join(root, "mini")
    os.makedirs(images)
    rng = np.random.default_rng(1)
    records = []
    for image_id in (1, 2, 3):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(
            os.path.join(images, f"{image_id:012d}.png")
        )
        records.append({"id": image_id, "file_name": f"{image_id:012d}.png", "height": 30, "width": 40})
    rle_mask = box(30, 40, 3, 20, 25, 38)
    compressed = api.encode(np.asfortranarray(rle_mask.astype(np.uint8)))
    compressed["counts"] = compressed["counts"].decode()
    crowd_mask = box(30, 40, 20, 0, 30, 10)
    flat = crowd_mask.flatten(order="F")
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat.astype(int), [2]])) != 0)
    counts = np.diff(np.concatenate([[0], changes])).tolist()  # uncompressed RLE, column-major
    assert sum(counts) == 30 * 40
    annotations = [
        {
            "id": 10,
            "image_id": 1,
            "category_id": 20,
            "iscrowd": 0,
            "area": 48.0,
            "segmentation": [[2.0, 2.0, 10.0, 2.0, 10.0, 8.0, 2.0, 8.0]],
        },
        {"id": 11, "image_id": 1, "category_id": 20, "iscrowd": 0, "area": 396.0, "segmentation": compressed},
        {
            "id": 12,
            "image_id": 1,
            "category_id": 20,
            "iscrowd": 1,
            "area": 100.0,
            "segmentation": {"counts": counts, "size": [30, 40]},
        },
        {
            "id": 13,
            "image_id": 2,
            "category_id": 20,
            "iscrowd": 0,
            "area": 2.0,
            "segmentation": [[18.0, 10.0, 24.0, 10.0, 24.0, 16.0, 18.0, 16.0]],
        },
        {
            "id": 14,
            "image_id": 3,
            "category_id": 25,
            "iscrowd": 0,
            "area": 120.0,
            "segmentation": [[5.0, 5.0, 17.0, 5.0, 17.0, 15.0, 5.0, 15.0]],
        },
    ]
    data = {
        "images": records,
        "annotations": annotations,
        "categories": [{"id": 20, "name": "sheep"}, {"id": 25, "name": "giraffe"}, {"id": 18, "name": "dog"}],
    }
    os.makedirs(os.path.join(root, "annotations"))
    path = os.path.join(root, "annotations", "instances_mini.json")
    with open(path, "w") as f:
        json.dump(data, f)
    return path, images, rle_mask, crowd_mask


def test_coco_polygon_rle_and_crowd_become_masks_and_folder_layout(tmp_path):
    pytest.importorskip("pycocotools")
    path, images, rle_mask, crowd_mask = coco_fixture(str(tmp_path))
    polygon = annotation_mask([[2.0, 2.0, 10.0, 2.0, 10.0, 8.0, 2.0, 8.0]], 30, 40)
    assert polygon[3:8, 3:10].all() and not polygon[10:].any() and not polygon[:, 12:].any()
    assert abs(int(polygon.sum()) - 48) <= 16  # the 8×6 box, up to its rasterised border

    sheep = CocoDomain(path, images, "sheep", ins_max=4)
    assert len(sheep) == 2  # images 1 and 2 have sheep; image 3 has none
    _, masks = sheep.load(0)
    expected = sorted([polygon, rle_mask, crowd_mask], key=lambda m: -m.sum())
    for slot, mask in enumerate(expected):
        np.testing.assert_array_equal(masks[..., slot], np.where(mask, 1.0, -1.0))
    assert np.all(masks[..., 3] == -1)

    no_crowd = CocoDomain(path, images, "sheep", ins_max=4, include_crowd=False, min_area=10)
    assert len(no_crowd) == 1  # image 2's only sheep is smaller than min_area
    assert ((no_crowd.load(0)[1] + 1).sum(axis=(0, 1)) > 0).sum() == 2
    with pytest.raises(ValueError, match=r"unknown COCO category 'zebra'; known: dog, giraffe, sheep"):
        CocoDomain(path, images, "zebra")

    out = str(tmp_path / "layout")
    prepare_coco(
        [
            "--coco_dir",
            str(tmp_path),
            "--splits",
            "mini:train",
            "--classA",
            "sheep",
            "--classB",
            "giraffe",
            "--out",
            out,
            "--image_size",
            "30",
        ]
    )
    assert sorted(os.listdir(os.path.join(out, "trainA"))) == ["1.png", "2.png"]
    assert sorted(os.listdir(os.path.join(out, "trainA_seg"))) == ["1_0.png", "1_1.png", "1_2.png", "2_0.png"]
    assert os.listdir(os.path.join(out, "trainB_seg")) == ["3_0.png"]
    folder = FolderDomain(out, "train", "A", ins_max=4)
    direct = CocoDomain(path, images, "sheep", ins_max=4, image_size=30)
    for index in range(2):
        image_f, masks_f = folder.load(index)
        image_d, masks_d = direct.load(index)
        assert image_f.shape == (30, 30, 3)
        np.testing.assert_array_equal(image_f, image_d)
        np.testing.assert_array_equal(masks_f, masks_d)
    # the square crop keeps the centre 30×30 of the 30×40 image: the crowd box (columns 0–9) loses 5
    cut_crowd = np.where(crowd_mask[:, 5:35], 1.0, -1.0)
    assert any(np.array_equal(folder.load(0)[1][..., k], cut_crowd) for k in range(3))


def test_eval_phase_holds_out_its_own_images(tmp_path):
    from keras_instagan import training

    root = str(tmp_path / "data")
    write_layout(root, phase="train")
    write_layout(root, phase="test", seed=1)
    sizes = dict(loadSizeH=28, loadSizeW=36, fineSizeH=24, fineSizeW=32, eval_samples=2, grid_rows=1)

    def folder(phase, side):
        return FolderDomain(root, phase, side, (24, 32)).load_all(2)

    args = training.options(dataroot=root, eval_phase="test", **sizes)
    (domain_a, domain_b), held_out, _ = training.load_data(args)
    training_images = training.training_samples(args, domain_a, domain_b)
    for i, side in enumerate("AB"):
        for got, expected in zip(held_out[i], folder("test", side)):
            np.testing.assert_array_equal(got, expected)
        for got, expected in zip(training_images[side], folder("train", side)):
            np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(held_out[0][0], training_images["A"][0])
    plain = training.options(dataroot=root, **sizes)  # no held-out phase: the first training images
    (domain_a, domain_b), held_out, _ = training.load_data(plain)
    np.testing.assert_array_equal(held_out[0][0], folder("train", "A")[0])
    assert training.training_samples(plain, domain_a, domain_b) is None
    with pytest.raises(training.TrainingError, match="valA: folder not found"):
        training.load_data(training.options(dataroot=root, eval_phase="val", **sizes))


def test_instagan_train_on_a_folder_layout(tmp_path):
    """Trains on `sample*/`, shows and scores held-out `test*/` images, logging the discriminators'
    memorisation (their verdict on training images minus that on the held-out ones)."""
    root = str(tmp_path / "data")
    write_layout(root, phase="sample")
    write_layout(root, phase="test", seed=1)
    run = subprocess.run(  # the instagan-train command (train.py is the same program)
        [
            command("instagan-train"),
            *(
                "--dataroot",
                root,
                "--phase",
                "sample",
                "--checkpoints_dir",
                str(tmp_path),
                "--name",
                "folder",
                "--eval_phase",
                "test",
                "--eval_every",
                "1",
            ),
            *("--loadSizeH", "28", "--loadSizeW", "36", *TINY_FOLDER_RUN),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "3/1 images A/B" in run.stdout
    assert os.path.exists(os.path.join(tmp_path, "folder", "samples", "epoch_001.png"))
    (row,) = RunDirectory(str(tmp_path / "folder")).read_log()
    assert np.isfinite(float(row["background_error_AtoB"])) and np.isfinite(float(row["D_A_memorised"]))
    bad = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "train.py"),
            "--dataroot",
            root,
            "--phase",
            "train",
            "--checkpoints_dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "trainA: folder not found" in bad.stderr
