"""Reduced-precision exports (`keras_instagan.quantize`, `export --quantize int8 --fp16`): each passes
the quality guard on a trained tiny run and is served by the runner unchanged; a calibration on blank
images fails the guard with its figures; the guard's arithmetic."""

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")
pytest.importorskip("ai_edge_litert")

from instagan_runner import Runner  # noqa: E402
from keras_instagan import export, quantize  # noqa: E402

TRAINED = Path(__file__).parent / "data" / "trained_tiny"
SAMPLE = Path(__file__).parent.parent / "data" / "shp2gir_coco_sample"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A copy of `tests/data/trained_tiny` (G_A of a 4-epoch default run, `make_trained_tiny.py`)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    shutil.copytree(TRAINED, run)
    return run


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    """Every precision of the trained G_A, through the command line: (folder, printed lines)."""
    out = tmp_path_factory.mktemp("exported")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        export.main(["--run", str(trained_run), "--quantize", "int8", "--fp16", "--out", str(out)])
    return out, printed.getvalue().splitlines()


def test_each_reduced_precision_passes_the_guard_on_a_trained_run(exported):
    out, lines = exported
    for name, precision in (
        ("G_A_int8.onnx", "int8"),
        ("G_A_int8.tflite", "int8"),
        ("G_A_fp16.tflite", "fp16"),
    ):
        sidecar = json.loads((out / f"{name}.json").read_text())
        guard = sidecar["quality_guard"]
        assert sidecar["precision"] == precision
        assert guard["psnr_db"] >= 35.0 and guard["mask_iou"] >= 0.98, (name, guard)
        assert guard["held_out_images"] == 16 and guard["size"] == [64, 64]
        assert any(name in line and "PSNR" in line for line in lines), lines
    assert json.loads((out / "G_A_int8.onnx.json").read_text())["quality_guard"]["calibration_images"] == 32
    assert json.loads((out / "G_A.onnx.json").read_text())["precision"] == "fp32"


def test_the_runner_serves_the_int8_model_unchanged(exported):
    out, _ = exported
    full, int8 = Runner(str(out / "G_A.onnx")), Runner(str(out / "G_A_int8.onnx"))
    assert (full.precision, int8.precision) == ("fp32", "int8") and int8.ins_per == 2
    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal(128, 20, (2, 64, 64, 3)), 0, 255).astype(np.uint8)
    masks = [[np.pad(np.ones((20, 24), bool), ((8, 36), (10, 30)))], [np.pad(np.ones((16, 16), bool), 24)]]
    (image, got_masks), (image8, got_masks8) = full.translate(pixels, masks), int8.translate(pixels, masks)
    assert image8.shape == image.shape and image8.dtype == np.uint8
    assert [m.shape for m in got_masks8] == [m.shape for m in got_masks] == [(1, 64, 64)] * 2
    assert np.abs(image8.astype(int) - image.astype(int)).mean() < 4


def test_blank_calibration_fails_the_guard_with_its_figures(trained_run, tmp_path):
    """int8 ranges calibrated on blank images clip every real activation: the guard refuses the file
    and names its figures; the float32 file beside it is written and checked."""
    config = json.loads((trained_run / "config.json").read_text())
    held_out = export.GuardData.load(config, "AtoB", 2, (64, 64)).held_out
    blank = (np.zeros((4, 64, 64, 3), np.float32), -np.ones((4, 64, 64, 2), np.float32))
    with pytest.raises(
        quantize.QualityGuardError,
        match=r"G_A_int8.onnx: below the quality guard against float32 Keras on held-out images: "
        r"psnr_db [0-9.]+ \(guard ≥ 35.0\), mask_iou [0-9.]+ \(guard ≥ 0.98\)",
    ):
        export.export_generator(
            str(trained_run),
            formats=("onnx",),
            out_dir=str(tmp_path),
            quantize_int8=True,
            guard=export.GuardData(blank, held_out),
        )
    assert json.loads((tmp_path / "G_A_int8.onnx.json").read_text())["quality_guard"]["psnr_db"] < 35


def test_guard_arithmetic():
    reference = -np.ones((1, 8, 8, 2), np.float32)
    reference[0, :4, :4, 0] = 1
    shifted = reference.copy()
    shifted[0, 4, :4, 0] = 1  # 4 pixels more: IoU 16 / 20
    assert quantize.mask_ious(reference, shifted) == [0.8]  # slot 1 empty in both: not counted
    image = np.zeros((1, 4, 4, 3), np.float32)
    assert quantize.psnr(image, image) == float("inf")
    assert quantize.psnr(image, image + 0.02) == pytest.approx(10 * np.log10(4 / 0.0004))
    figures = quantize.quality_figures(
        [(image, reference)] * 2, [(image, reference), (image + 0.02, shifted)]
    )
    assert figures == {"psnr_db": pytest.approx(40.0), "mask_iou": 0.8}
    with pytest.raises(quantize.QualityGuardError, match=r"g.onnx: .*mask_iou 0.800 \(guard ≥ 0.98\)"):
        quantize.check_guard("g.onnx", figures)
    quantize.check_guard("g.onnx", {"psnr_db": 40.0, "mask_iou": 0.99})


def test_calibration_images_come_from_a_folder_or_the_run():
    with pytest.raises(ValueError, match="no calibration images: give a folder in the official layout"):
        quantize.guard_images({}, "AtoB", (64, 64), (4, 2))
    with pytest.raises(ValueError, match="7 images in domain A, need 32 to calibrate and 16 other ones"):
        quantize.guard_images({}, "AtoB", (64, 64), (32, 16), dataroot=str(SAMPLE), phase="sample")
    calibration, held_out = quantize.guard_images(
        {"ins_max": 2}, "BtoA", (64, 48), (5, 2), str(SAMPLE), "sample"
    )
    assert calibration[0].shape == (5, 64, 48, 3) and held_out[1].shape == (2, 64, 48, 2)
    synthetic = quantize.guard_images(
        {"synthetic": "ellipses_squares", "ins_max": 4}, "AtoB", (64, 64), (3, 2)
    )
    assert [x[0].shape[0] for x in synthetic] == [3, 2]
    assert not np.array_equal(synthetic[0][0][:2], synthetic[1][0])  # two seeds: other images
