"""InstaGAN on the other Keras backends: one training iteration on JAX (eager and as one jitted
program) and on PyTorch updates every network and image pool as the TensorFlow iteration does; the
package imports, trains and translates without TensorFlow there, and `.keras` networks move between
backends. Each backend runs in its own process (a process has one Keras backend)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from backend_step import tiny
from utils import max_diff, random_image, random_masks

NETWORKS = ("G_A", "G_B", "D_A", "D_B")
HERE = os.path.dirname(os.path.abspath(__file__))


def run_backend(backend, code_or_script, *args, timeout=900):
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, *(["-c", code_or_script] if "\n" in code_or_script else [code_or_script])]
    result = subprocess.run(
        [*command, *args], env=env, cwd=HERE, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_package_imports_and_translates_without_tensorflow(backend):
    pytest.importorskip(backend)
    out = run_backend(
        backend,
        """
import sys
sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
import numpy as np
import keras_instagan
model = keras_instagan.InstaGAN(ngf=4, ndf=4, n_blocks=1, ins_max=2, ins_per=1)
image, masks = np.zeros((1, 16, 16, 3), "float32"), -np.ones((1, 16, 16, 3), "float32")
masks[0, 4:8, 4:8, 0] = 1.0
out_image, out_masks = model.translate(image, masks)
print(out_image.shape, out_masks.shape)
""",
    )
    assert out.strip().splitlines()[-1] == "(1, 16, 16, 3) (1, 16, 16, 3)"


FREED_MEMORY = """
import resource, sys
import numpy as np
from numpy._core.multiarray import _set_madvise_hugepage
_set_madvise_hugepage(False)  # 4 KB pages, as XLA's buffer gets, so that the faults count pages
if sys.argv[1] == "jax_first":  # JAX's runtime started before keras_instagan: too late to set
    import jax
    jax.devices()
import keras_instagan
from keras_instagan.trainers.jax import FREED_MEMORY_KEPT

def faults_of_a_fresh_buffer():  # 256 MB written, then freed, as XLA's temporary buffer is
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffer = np.empty(2**26, "float32")
    buffer.fill(1.0)
    del buffer
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

import jax
faults_of_a_fresh_buffer()
print(FREED_MEMORY_KEPT, jax.config.values["jax_cpu_enable_async_dispatch"], faults_of_a_fresh_buffer())
"""


@pytest.mark.parametrize("order", ["keras_instagan_first", "jax_first"])
def test_jax_on_a_cpu_reuses_freed_memory(order):
    """Imported with the JAX backend on a CPU before JAX's runtime starts, `keras_instagan` makes JAX
    run CPU programs on the calling thread and a large freed buffer's pages serve the next one: the
    second 256 MB buffer (65,536 pages) costs no new page. Once JAX's runtime has started the
    settings are left alone, and every buffer costs its pages again."""
    pytest.importorskip("jax")
    kept, asynchronous, faults = run_backend("jax", FREED_MEMORY, order).strip().splitlines()[-1].split()
    if order == "keras_instagan_first":
        assert kept == "True" and asynchronous == "False" and int(faults) < 1000
    else:
        assert kept == "False" and asynchronous == "True" and int(faults) > 60000


def network_outputs(networks, batch):
    """Each network's outputs on `batch` (inference mode), flattened to a list of arrays."""
    import keras

    image, masks = batch["image"], batch["masks"]
    outputs = []
    for network in networks:
        result = network([image, masks], training=False)
        outputs += [
            keras.ops.convert_to_numpy(x) for x in (result if isinstance(result, (list, tuple)) else [result])
        ]
    return outputs


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_networks_move_between_backends(tmp_path, backend):
    """A generator and a discriminator saved as `.keras` on TensorFlow load on `backend` with the same
    outputs (within 1e-5), and the files `backend` saves load back on TensorFlow with them too."""
    pytest.importorskip(backend)
    import keras

    from keras_instagan.networks import make_networks

    rng = np.random.default_rng(1)
    batch = {"image": random_image(rng, 2, 32, 32), "masks": random_masks(rng, 2, 32, 32, 2, empty=[(1, 1)])}
    np.savez(tmp_path / "batch.npz", **batch)
    networks = make_networks("set", "set", 4, 4, 1, 3, "A")
    expected = network_outputs(networks, batch)
    for network in networks:
        network.save(tmp_path / f"{network.name}.keras")
    out = run_backend(
        backend,
        f"""
import os, numpy as np, keras
import keras_instagan.networks
from test_backends import network_outputs
d = {str(tmp_path)!r}
batch = np.load(os.path.join(d, "batch.npz"))
load = lambda name: keras.saving.load_model(os.path.join(d, name + ".keras"), compile=False)
networks = [load("G_A"), load("D_A")]
outputs = network_outputs(networks, batch)
np.savez(os.path.join(d, "outputs.npz"), *outputs)
for network in networks:
    network.save(os.path.join(d, network.name + "_again.keras"))
print(len(outputs))
""",
    )
    assert out.strip().splitlines()[-1] == str(len(expected)) == "3"
    moved = np.load(tmp_path / "outputs.npz")
    for i, want in enumerate(expected):
        assert max_diff(moved[f"arr_{i}"], want) <= 1e-5, (backend, i)
    back = [
        keras.saving.load_model(tmp_path / f"{name}_again.keras", compile=False) for name in ("G_A", "D_A")
    ]
    for got, want in zip(network_outputs(back, batch), expected):
        assert max_diff(got, want) <= 1e-5, backend


def comparison_batch(directory):
    """The batch of the iteration comparisons, saved as `directory/batch.npz` for `backend_step.py`:
    2 samples, 4 slots; sample 2 of domain A has no instance in chunk 2."""
    rng = np.random.default_rng(0)
    batch = {
        "image_a": random_image(rng, 2, 32, 32),
        "masks_a": random_masks(rng, 2, 32, 32, 4, empty=[(1, 2), (1, 3)]),
        "image_b": random_image(rng, 2, 32, 32),
        "masks_b": random_masks(rng, 2, 32, 32, 4),
    }
    np.savez(directory / "batch.npz", **batch)
    return batch


def update_error(before, expected, actual):
    """‖actual update − expected update‖ / ‖expected update‖ over all of a network's weights."""
    expected_step = np.concatenate([(np.array(e) - b).ravel() for b, e in zip(before, expected)])
    actual_step = np.concatenate([(np.array(a) - b).ravel() for b, a in zip(before, actual)])
    return float(np.linalg.norm(actual_step - expected_step) / np.linalg.norm(expected_step))


@pytest.mark.parametrize(
    "backend, modes",
    [
        pytest.param("jax", ("eager", "jit"), marks=pytest.mark.slow),
        pytest.param("torch", ("eager",)),
    ],
)
def test_iteration_equals_tensorflow_iteration(tmp_path, backend, modes):
    """One iteration (two sequential steps) with SGD (Adam's first steps hide gradient errors);
    sample 2 has no instance in chunk 2 of domain A (that chunk's A→B update and D_A update skip it)
    and the pool fills (no random swap).

    On JAX eagerly and as one jitted program; on PyTorch eagerly (the only way it runs).

    In float32 (the float64 comparison, within 1e-6, is the next test). At float32 rounding one ReLU
    input near zero can fall on the other side and move a channel's gradient by percents, and how far
    depends on the CPU's kernels: G_B's update differed by 0.14 % here and by 3.1 % on CI's machine.
    So each network's whole update is compared within 5 %: training on the first sample only, or with
    domain A's second chunk empty, moves every network's update by 15 % to 124 %. The pooled fakes of
    step 1 (pool slots 0 and 1, made by the initial weights) are compared within 1e-3, those of step 2
    (made after the updates) within 1e-2; a wrong fake in the pool differs by tenths."""
    pytest.importorskip(backend)
    batch = comparison_batch(tmp_path)
    reference = tiny(run_eagerly=True)
    reference.save_weights(tmp_path / "initial.weights.h5")
    initial = {name: [np.array(v) for v in getattr(reference, name).weights] for name in NETWORKS}
    reference.train_on_batch(x=((batch["image_a"], batch["masks_a"]), (batch["image_b"], batch["masks_b"])))
    assert int(reference.g_optimizer.iterations) == 2
    for mode in modes:
        steps = run_backend(backend, os.path.join(HERE, "backend_step.py"), str(tmp_path), mode)
        assert steps.strip().splitlines()[-1] == "2"
        other = tiny(run_eagerly=True)
        other.load_weights(tmp_path / f"{mode}.weights.h5")
        for name in NETWORKS:
            expected, actual = getattr(reference, name).weights, getattr(other, name).weights
            assert update_error(initial[name], expected, actual) < 0.05, (mode, name)
        for name, stored in (("pool_A", 4), ("pool_B", 3)):  # B's fakes: sample 2 skipped once
            assert int(getattr(other, name).stored) == int(getattr(reference, name).stored) == stored
            actual, expected = (
                np.array(getattr(other, name).buffer),
                np.array(getattr(reference, name).buffer),
            )
            assert max_diff(actual[:2], expected[:2]) < 1e-3, (mode, name, "step 1")
            assert max_diff(actual[2:stored], expected[2:stored]) < 1e-2, (mode, name, "step 2")


@pytest.mark.parametrize(
    "backend, mode",
    [
        pytest.param("jax", "float64", marks=pytest.mark.slow),
        pytest.param("jax", "float64_jit", marks=pytest.mark.slow),
        ("torch", "float64"),
    ],
)
def test_iteration_equals_tensorflow_iteration_in_float64(tmp_path, backend, mode, monkeypatch):
    """One iteration without an image pool, in float64 on both (floatx and dtype policy; JAX's x64
    mode; the Keras operations that compute in float32 on JAX or PyTorch replaced, see
    `backend_step.use_float64`): every weight's update within 1e-6 of TensorFlow's eager one
    (updates up to about 0.8; measured 2e-9 to 4e-9 on both). On JAX eagerly and as the one jitted
    program (its two sequential steps one `fori_loop`, the CPU's convolution forms)."""
    pytest.importorskip(backend)
    from backend_step import use_float64

    batch = comparison_batch(tmp_path)
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    # use_float64 sets JAX's x64 mode in os.environ; monkeypatch restores it after the test, so that
    # the JAX subprocesses of later tests run in float32 again
    monkeypatch.setenv("JAX_ENABLE_X64", "1")
    use_float64()
    try:
        reference = tiny(run_eagerly=True, float64=True)
        reference.save_weights(tmp_path / "initial.weights.h5")
        initial = {name: [np.array(v) for v in getattr(reference, name).weights] for name in NETWORKS}
        data = tuple(
            (batch[f"image_{d}"].astype("float64"), batch[f"masks_{d}"].astype("float64")) for d in "ab"
        )
        reference.train_on_batch(x=data)
        steps = run_backend(backend, os.path.join(HERE, "backend_step.py"), str(tmp_path), mode)
        assert steps.strip().splitlines()[-1] == "2"
        other = tiny(run_eagerly=True, float64=True)
        other.load_weights(tmp_path / f"{mode}.weights.h5")
        for name in NETWORKS:
            for before, expected, actual in zip(
                initial[name], getattr(reference, name).weights, getattr(other, name).weights
            ):
                assert actual.dtype == "float64"
                delta_expected, delta_actual = np.array(expected) - before, np.array(actual) - before
                assert max_diff(delta_actual, delta_expected) < 1e-6, (name, expected.path)
        assert max(max_diff(np.array(v), b) for v, b in zip(reference.G_A.weights, initial["G_A"])) > 0.01
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


@pytest.mark.parametrize("backend", [pytest.param("jax", marks=pytest.mark.slow), "torch"])
def test_training_run_resumes_and_loads_without_tensorflow(tmp_path, backend):
    """`training.train` on the synthetic data with TensorFlow unimportable: one epoch, then continued
    for a second from `state/` (the optimizer's step count goes on), then `InstaGAN.from_run`. On JAX
    the compiled iteration is kept in the checkpoints folder's cache (every program kept here: the
    tiny one compiles in under a second) and the continued run loads it from there."""
    pytest.importorskip(backend)
    out = run_backend(
        backend,
        f"""
import json, os, sys
sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
import numpy as np
from keras_instagan import InstaGAN
from keras_instagan.training import options, train

tiny = dict(checkpoints_dir={str(tmp_path)!r}, name={backend!r}, ngf=4, ndf=4, n_blocks=1, ins_max=2,
            ins_per=1, synthetic_count=4, eval_samples=4, judge_count=8, grid_rows=1, niter_decay=0,
            loadSizeH=36, loadSizeW=36, fineSizeH=32, fineSizeW=32)
first = train(options(niter=1, **tiny))
steps_first = int(first.model.g_optimizer.iterations)
hits = []
if {backend!r} == "jax":
    import jax
    jax.monitoring.register_event_listener(lambda event, **_: hits.append(event))
second = train(options(niter=2, continue_train=True, **tiny))
steps_second = int(second.model.g_optimizer.iterations)
loaded = InstaGAN.from_run(second.run.path)
image, masks = np.zeros((1, 32, 32, 3), "float32"), -np.ones((1, 32, 32, 2), "float32")
masks[0, 8:20, 8:20, 0] = 1.0
fake, fake_masks = loaded.translate(image, masks)
rows = second.run.read_log()
print(json.dumps({{"steps": [steps_first, steps_second], "epochs": [int(r["epoch"]) for r in rows],
                  "shape": list(fake.shape), "finite": bool(np.isfinite(fake).all()),
                  "cache_hits": hits.count("/jax/compilation_cache/cache_hits")}}))
""",
        timeout=1500,
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert 0 < result["steps"][0] < result["steps"][1] <= 2 * result["steps"][0]
    assert result["epochs"] == [1, 2]
    assert result["shape"] == [1, 32, 32, 3] and result["finite"]
    if backend == "jax":
        iterations = [name for name in os.listdir(tmp_path / ".jax_cache") if name.startswith("jit_traced")]
        assert len(iterations) == 1  # both runs' iteration: compiled once, then loaded
        assert result["cache_hits"] >= 1


@pytest.mark.slow
def test_jax_data_parallel_update_equals_one_device():
    """`--strategy mirrored` on JAX (`training.JaxDataParallel`) over 2 CPU devices makes the update of
    one device at the same global batch (2 samples, one per device; sample 2 has an empty slot), within
    1e-8 of each network's update (issue #28 asks 1e-4; measured ≤ 1e-12). In float64
    (`backend_step.use_float64`, with Keras' float32 `mean` and `tanh` replaced), so that no ReLU
    input near zero falls on the other side by float32 rounding: with Keras' own, some initial
    weights gave 4e-3. A batch size that does not split evenly is refused."""
    pytest.importorskip("jax")
    out = run_backend(
        "jax",
        """
import json, os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_ENABLE_X64"] = "1"
import keras, numpy as np
from backend_step import use_float64
use_float64()
keras.utils.set_random_seed(0)
from keras_instagan import InstaGAN
from keras_instagan.training import OneDevice, TrainingError, make_strategy, options
from utils import random_image, random_masks

rng = np.random.default_rng(0)
x = ((random_image(rng, 2, 32, 32), random_masks(rng, 2, 32, 32, 2, empty=[(1, 1)])),
     (random_image(rng, 2, 32, 32), random_masks(rng, 2, 32, 32, 2)))

def trained(strategy, weights):
    with strategy.scope():
        model = InstaGAN(ngf=4, ndf=4, n_blocks=1, ins_max=2, ins_per=2, pool_size=2, seed=0)
        model.build((((None, 32, 32, 3), (None, 32, 32, 2)),) * 2)
        model.compile(g_optimizer=keras.optimizers.SGD(0.01), d_optimizer=keras.optimizers.SGD(0.01))
        if weights is None:
            weights = [np.array(v) for v in model.weights]
        else:
            model.set_weights(weights)
        model.train_on_batch(x=x)
    return weights, [np.array(v) for v in model.weights], model

parallel = make_strategy(options(strategy="mirrored", batch_size=2))[0]
try:
    make_strategy(options(strategy="mirrored", batch_size=3))
    refused = ""
except TrainingError as error:
    refused = str(error)
initial, one, _ = trained(OneDevice(), None)
_, both, model = trained(parallel, initial)
errors = {}
for network in ("G_A", "G_B", "D_A", "D_B"):
    ids = {id(v) for v in getattr(model, network).weights}
    picked = [i for i, v in enumerate(model.weights) if id(v) in ids]
    expected = np.concatenate([(one[i] - initial[i]).ravel() for i in picked])
    actual = np.concatenate([(both[i] - initial[i]).ravel() for i in picked])
    errors[network] = float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))
sharding = str(model.G_A.weights[0].value.sharding)
print(json.dumps({"replicas": parallel.num_replicas_in_sync, "refused": refused, "errors": errors,
                  "dtype": str(one[0].dtype), "sharding": sharding}))
""",
        timeout=1800,
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["dtype"] == "float64"
    assert "--batch_size 3" in result["refused"] and "2 local JAX devices" in result["refused"]
    assert "NamedSharding" in result["sharding"], result["sharding"]  # the variables are replicated
    for network, error in result["errors"].items():
        assert error <= 1e-8, (network, error)
