"""Each benchmark in `bench/` runs end to end on a tiny case and prints its JSON summary last, so a
change in the library that breaks one shows here (the numbers themselves are not checked: speed is
shown by running the benchmarks, `docs/benchmarks.md`)."""

import json
import os
import subprocess
import sys
from importlib.util import find_spec

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
LAYER = ["--size", "16", "--ngf", "4", "--repeats", "1"]
TINY = ["--size", "32", "--ngf", "4", "--n_blocks", "1"]
STEP = TINY + ["--steps", "1", "--warmup", "1"]

CASES = {
    "thin_conv.py": (LAYER, "runs", ()),
    "upsampling.py": (LAYER, "runs", ()),
    "residual_blocks.py": (LAYER + ["--blocks", "1", "--rounds", "1"], "runs", ()),
    # without XLA and without the official iteration (official_step.py has its own case): four
    # child processes that each compile an XLA program take too long for a smoke run; batch 2
    "train_step.py": (
        STEP + ["--no_jit", "--no_official", "--batch", "2", "--instances", "1"],
        "seconds_per_sample",
        (),
    ),
    "official_step.py": (STEP, "seconds_per_step", ("torch",)),
    "identity_floor.py": (TINY + ["--steps", "1"], "background_error", ()),
    "inference.py": (
        TINY + ["--repeats", "1", "--batches", "1"],
        "fastest_passing",
        ("tf2onnx", "onnxruntime", "ai_edge_litert"),
    ),
    "export_layers.py": (
        ["--size", "8", "--channels", "8", "--repeats", "1"],
        "layers",
        ("tf2onnx", "onnxruntime", "ai_edge_litert"),
    ),
    "iteration_profile.py": (
        TINY + ["--ins_max", "2", "--ins_per", "1", "--steps", "1", "--warmup", "1"],
        "iteration_ms",
        ("jax",),
    ),
    "network_calls.py": (TINY + ["--ins_max", "2", "--ins_per", "1", "--repeats", "1"], "networks", ()),
    "input_pipeline.py": (["--count", "4", "--epochs", "1"], "elements_per_second", ()),
    "multiworker.py": (["--workers", "2", "--steps", "1", "--warmup", "1", "--timeout", "600"], "runs", ()),
}


@pytest.mark.slow
def test_train_step_benchmark_runs_on_pytorch():
    """`bench/train_step.py --backend torch` (JAX's case would compile four whole iterations)."""
    pytest.importorskip("torch")
    result = subprocess.run(
        [sys.executable, os.path.join(BENCH, "train_step.py"), *STEP, "--no_official", "--backend", "torch"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["backend"] == "torch" and summary["seconds_per_step"] > 0
    assert summary["tensor_peak_mb"]["4/2"] is None and summary["peak_rss_mb"]["4/2"] > 0


@pytest.mark.slow
def test_iteration_profile_reads_tensorflow_too():
    """`bench/iteration_profile.py --backend tensorflow`: TensorFlow's trace, matched to its programs."""
    pytest.importorskip("tensorflow")
    arguments = TINY + ["--ins_max", "2", "--ins_per", "1", "--steps", "1", "--warmup", "1"]
    result = subprocess.run(
        [sys.executable, os.path.join(BENCH, "iteration_profile.py"), *arguments, "--backend", "tensorflow"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    operations = summary["by_operation_ms"]
    assert summary["backend"] == "tensorflow" and "convolution" in operations and "dot" in operations
    assert operations.get("?", 0.0) < 0.05 * summary["operations_ms"]  # instructions found in the programs


def test_every_benchmark_has_a_case():
    assert sorted(CASES) == sorted(n for n in os.listdir(BENCH) if n.endswith(".py") and n != "common.py")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_benchmark_runs_on_a_tiny_case(name):
    arguments, key, needs = CASES[name]
    for module in needs:
        if find_spec(module) is None:
            pytest.skip(f"{name} needs {module}")
    result = subprocess.run(
        [sys.executable, os.path.join(BENCH, name), *arguments], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert key in summary, summary
