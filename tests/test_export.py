"""Export to ONNX / LiteRT and the ONNX Runtime runner: parity with Keras, sequential equality with
`InstaGAN.translate`, no TensorFlow in the runner, clear errors."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from utils import random_image, random_masks

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

from instagan_runner import Runner, RunnerInputError  # noqa: E402
from keras_instagan import (  # noqa: E402
    InstaGAN,
    SetGenerator,
    export,  # noqa: E402
)


@pytest.fixture(scope="module")
def generator():
    keras.utils.set_random_seed(0)
    return SetGenerator(ngf=4, n_blocks=1)


@pytest.mark.parametrize("ins_per", [1, 3])
def test_onnx_and_litert_match_keras(generator, tmp_path, ins_per):
    pytest.importorskip("ai_edge_litert")
    onnx_path = export.export_onnx(generator, str(tmp_path / "g.onnx"), ins_per)
    litert_path = export.export_litert(generator, str(tmp_path / "g.tflite"), ins_per)
    rng = np.random.default_rng(ins_per)
    for height, width in ((64, 64), (96, 128)):
        image = random_image(rng, 2, height, width)
        masks = random_masks(rng, 2, height, width, ins_per, empty={(1, ins_per - 1)})
        for path, kind in ((onnx_path, "onnx"), (litert_path, "litert")):
            assert export.max_difference(generator, path, kind, image, masks) <= 1e-4, (kind, height)


def test_litert_graph_runs_in_xnnpack_operations(generator, tmp_path):
    """The export forms leave no MIRROR_PAD or TRANSPOSE_CONV in the LiteRT graph (both run outside
    XNNPACK with dynamic shapes); convolutions do the work."""
    pytest.importorskip("ai_edge_litert")
    from ai_edge_litert.interpreter import Interpreter

    path = export.export_litert(generator, str(tmp_path / "g.tflite"), 2)
    operations = {op["op_name"] for op in Interpreter(path)._get_ops_details()}
    assert "CONV_2D" in operations
    assert not operations & {"MIRROR_PAD", "TRANSPOSE_CONV"}, operations


def make_run(tmp_path, ins_per=2):
    keras.utils.set_random_seed(1)
    model = InstaGAN(ngf=4, ndf=4, n_blocks=1, ins_max=2 * ins_per, ins_per=ins_per, pool_size=0)
    run = tmp_path / "run"
    run.mkdir()
    model.G_A.save(run / "G_A.keras")
    with open(run / "config.json", "w") as f:
        json.dump({"ngf": 4, "n_blocks": 1, "ins_per": ins_per, "ins_max": 2 * ins_per}, f)
    return model, run


def test_exporter_writes_checked_artifacts_with_sidecars(tmp_path, capsys, monkeypatch):
    model, run = make_run(tmp_path)
    export.main(["--run", str(run), "--direction", "AtoB", "--format", "onnx"])
    onnx_path = run / "exported" / "G_A.onnx"
    with open(run / "exported" / "G_A.onnx.json") as f:
        sidecar = json.load(f)
    assert sidecar["ins_per"] == 2 and sidecar["check"]["max_abs_diff_to_keras"] <= 1e-4
    assert sidecar["precision"] == "fp32" and "quality_guard" not in sidecar
    assert "tf2onnx" in sidecar["versions"] and "multiples of 4" in sidecar["size_rule"]
    assert "max |artifact − Keras|" in capsys.readouterr().out
    runner = Runner(str(onnx_path))
    assert runner.ins_per == 2 and runner.provider == "CPUExecutionProvider"
    with pytest.raises(SystemExit, match="holds no BtoA generator"):
        export.main(["--run", str(run), "--direction", "BtoA", "--format", "onnx"])
    monkeypatch.setattr(export, "TOLERANCE", 0.0)
    with pytest.raises(export.ExportMismatchError, match=r"max \|onnx − Keras\|"):
        export.export_generator(str(run), "AtoB", ["onnx"], str(tmp_path / "again"))


def test_runner_equals_translate_over_five_instances(tmp_path):
    model, run = make_run(tmp_path, ins_per=2)
    path = export.export_onnx(model.G_A, str(tmp_path / "G_A.onnx"), 2)
    runner = Runner(path, ins_per=2)
    rng = np.random.default_rng(5)
    image, masks = random_image(rng, 2, 32, 48), random_masks(rng, 2, 32, 48, 5, empty={(1, 0), (1, 3)})
    expected_image, expected_masks = model.translate(image, masks, "AtoB")
    got_image, got_masks = runner.translate_float(image, masks)
    assert np.abs(got_image - expected_image).max() <= 1e-4
    assert np.abs(got_masks - expected_masks).max() <= 1e-4
    assert np.all(got_masks[1, ..., 0] == -1)  # an empty slot stays empty

    pixels = ((image[0] + 1) * 127.5).round().astype(np.uint8)
    binary = [masks[0, ..., k] > 0 for k in range(5)]
    out, out_masks = runner.translate(pixels, binary)
    assert out.dtype == np.uint8 and out.shape == (32, 48, 3)
    assert out_masks.shape == (5, 32, 48) and out_masks.dtype == bool
    batch, batch_masks = runner.translate(np.stack([pixels, pixels]), [binary, binary[:2]])
    assert batch.shape == (2, 32, 48, 3) and [m.shape[0] for m in batch_masks] == [5, 2]
    np.testing.assert_array_equal(batch[0], out)
    resized, resized_masks = runner.translate(pixels[:30, :46], [m[:30, :46] for m in binary], size=(32, 48))
    assert resized.shape == (30, 46, 3) and resized_masks.shape == (5, 30, 46)


def test_runner_rejects_bad_input(tmp_path):
    model, run = make_run(tmp_path)
    runner = Runner(export.export_onnx(model.G_A, str(tmp_path / "g.onnx"), 2))
    image = np.zeros((32, 32, 3), np.uint8)
    mask = np.zeros((32, 32), bool)
    cases = [
        ((image.astype(np.float32), [mask]), "expected a uint8 NumPy array"),
        ((image[..., :1], [mask]), r"expected \(H, W, 3\)"),
        (
            (np.zeros((30, 32, 3), np.uint8), [mask[:30]]),
            "image: H×W 30×32 must be multiples of 4, each at least 8; pass size=",
        ),
        ((image, [np.zeros((32, 16), bool)]), r"masks\[0\]: shape \(32, 16\), the image is 32×32"),
        ((image, [np.full((32, 32), 7, np.uint8)]), "not binary"),
        ((np.stack([image, image]), [[mask]]), "1 mask lists for a batch of 2 images"),
    ]
    for (bad_image, bad_masks), message in cases:
        with pytest.raises(RunnerInputError, match=message):
            runner.translate(bad_image, bad_masks)
    for size in ((30, 32), (0, 0), (-4, 32)):
        with pytest.raises(
            RunnerInputError, match=f"size: H×W {size[0]}×{size[1]} must be two multiples of 4"
        ):
            runner.translate(image, [mask], size=size)
    floats, empty = np.zeros((1, 32, 32, 3), np.float32), -np.ones((1, 32, 32, 2), np.float32)
    float_cases = [
        ((floats, np.zeros((1, 16, 32, 2), np.float32)), r"masks: expected \(B, H, W, N ≥ 1\)"),
        (
            (floats + 255.0, empty),
            r"image: values must lie in \[-1, 1\] \(RGB scaled to \[-1, 1\]; "
            r"translate\(\) takes uint8\), got \[255, 255\]",
        ),
        ((floats, np.stack([empty[..., 0] + 1, empty[..., 1] + 2], -1)), "masks: 0/1 values"),
        ((floats, empty * np.nan), "masks: holds NaN"),
        ((np.zeros((1, 4, 4, 3), np.float32), empty[:, :4, :4]), "must be multiples of 4, at least 8"),
    ]
    for (bad_image, bad_masks), message in float_cases:
        with pytest.raises(RunnerInputError, match=message):
            runner.translate_float(bad_image, bad_masks)
    with pytest.raises(FileNotFoundError, match="missing.onnx: model file not found"):
        Runner(str(tmp_path / "missing.onnx"))


def test_runner_reads_ins_per_from_the_model_and_refuses_bad_files(tmp_path):
    model, run = make_run(tmp_path)
    path = export.export_onnx(model.G_A, str(tmp_path / "g4.onnx"), 4)
    assert Runner(path).ins_per == 4  # no sidecar: the model's mask input says 4
    sidecar = tmp_path / "g4.onnx.json"
    for text, message in (
        ("{not json", "g4.onnx.json: the model's sidecar is not valid JSON"),
        ("[4]", "g4.onnx.json: the model's sidecar must be a JSON object, got list"),
        ('{"ins_per": "two"}', "g4.onnx.json: ins_per must be a positive integer, got 'two'"),
        ('{"ins_per": 2}', "g4.onnx.json: ins_per 2, but .*g4.onnx takes 4 masks per step"),
    ):
        sidecar.write_text(text)
        with pytest.raises(RunnerInputError, match=message):
            Runner(path)
    sidecar.unlink()
    with pytest.raises(RunnerInputError, match="ins_per: ins_per 3, but .*g4.onnx takes 4"):
        Runner(path, ins_per=3)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(open(path, "rb").read()[:300])
    with pytest.raises(RunnerInputError, match="corrupt.onnx: not a readable ONNX model"):
        Runner(str(corrupt))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "instagan_runner",
            "--model",
            str(corrupt),
            "--image",
            "x.png",
            "--out",
            str(tmp_path / "out.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1].startswith(f"instagan_runner: {corrupt}: not a readable ONNX")
    )


def test_runner_imports_neither_tensorflow_nor_keras(tmp_path):
    model, run = make_run(tmp_path)
    path = export.export_onnx(model.G_A, str(tmp_path / "g.onnx"), 2)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from instagan_runner import Runner
        runner = Runner({path!r})
        image = np.zeros((32, 32, 3), np.uint8)
        mask = np.zeros((32, 32), bool)
        mask[4:20, 4:20] = True
        out, masks = runner.translate(image, [mask])
        assert out.shape == (32, 32, 3)
        print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_runner_command_line(tmp_path):
    from PIL import Image

    model, run = make_run(tmp_path)
    path = export.export_onnx(model.G_A, str(tmp_path / "g.onnx"), 2)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "in.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[5:20, 5:25] = 255
    Image.fromarray(mask).save(tmp_path / "m0.png")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "instagan_runner",
            "--model",
            path,
            "--image",
            str(tmp_path / "in.png"),
            "--masks",
            str(tmp_path / "m0.png"),
            "--out",
            str(tmp_path / "out" / "x.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CPUExecutionProvider" in result.stdout
    assert os.path.exists(tmp_path / "out" / "x.png") and os.path.exists(tmp_path / "out" / "x_0.png")
