"""Several replicas and machines (`keras_instagan.distributed`, `--strategy`): MirroredStrategy
against one replica, TF_CONFIG handling, 2 workers on 127.0.0.1 against one process, and a killed
worker resumed from the `BackupAndRestore` backup; on JAX, 2 processes against one and `train.py` on
2 processes, resumed."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from keras_instagan import distributed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}


def stop(processes):
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def run_together(commands, env, timeout=900):
    """Start every command at once (the processes of one cluster); their outputs, each process
    checked to end with status 0."""
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for command in commands
    ]
    try:
        outputs = [process.communicate(timeout=timeout)[0] for process in processes]
    finally:
        stop(processes)
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    return outputs


def test_tf_config_and_cluster_task():
    config = distributed.tf_config(["127.0.0.1:1000", "127.0.0.1:1001"], 1)
    assert json.loads(config) == {
        "cluster": {"worker": ["127.0.0.1:1000", "127.0.0.1:1001"]},
        "task": {"type": "worker", "index": 1},
    }
    assert distributed.cluster_task({"TF_CONFIG": config})[1:] == ("worker", 1)
    assert not distributed.is_chief({"TF_CONFIG": config})
    assert distributed.is_chief({"TF_CONFIG": distributed.tf_config(["h:1", "h:2"], 0)})
    with_chief = json.dumps(
        {"cluster": {"chief": ["h:1"], "worker": ["h:2"]}, "task": {"type": "worker", "index": 0}}
    )
    assert not distributed.is_chief({"TF_CONFIG": with_chief})
    assert distributed.cluster_task({"TF_CONFIG": with_chief}) == (
        {"chief": ["h:1"], "worker": ["h:2"]},
        "worker",
        0,
    )
    assert distributed.is_chief({"TF_CONFIG": with_chief.replace('"type": "worker"', '"type": "chief"')})
    backup = os.path.join("run", "backup")
    assert distributed.backup_dir(backup, {"TF_CONFIG": config}) == os.path.join(backup, "worker_1")
    addresses = distributed.local_workers(2)
    assert len(set(addresses)) == 2 and all(a.startswith("127.0.0.1:") for a in addresses)

    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        distributed.cluster_task({})
    with pytest.raises(ValueError, match="not a cluster/task JSON"):
        distributed.cluster_task({"TF_CONFIG": "{not json"})
    with pytest.raises(ValueError, match="not in the cluster"):
        distributed.cluster_task(
            {"TF_CONFIG": distributed.tf_config(["h:1"], 0).replace('"index": 0', '"index": 3')}
        )
    with pytest.raises(ValueError, match="is not host:port"):
        distributed.tf_config(["localhost"], 0)
    with pytest.raises(ValueError, match="--worker_index 2 is not in 0..1"):
        distributed.tf_config(["h:1", "h:2"], 2)


def test_train_py_multiworker_options(capsys):
    from keras_instagan import training

    with pytest.raises(SystemExit):
        training.parse_args(["--workers", "h:1,h:2", "--worker_index", "0"])
    assert "--workers needs --strategy multiworker" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        training.parse_args(["--strategy", "multiworker", "--workers", "h:1,h:2"])
    assert "needs --worker_index" in capsys.readouterr().err


# One worker of a 2-worker cluster (argv: index, address0, address1, out) or, with index "single", one process
# on the same global batches. SGD, no image pool: the update is deterministic.
JOB = textwrap.dedent("""
    import os, sys
    index, addresses, out = sys.argv[1], sys.argv[2:4], sys.argv[4]
    from keras_instagan import distributed
    if index != "single":
        os.environ["TF_CONFIG"] = distributed.tf_config(addresses, int(index))
        strategy = distributed.multiworker_strategy()
    import keras, numpy as np, tensorflow as tf
    from keras_instagan import InstaGAN
    from keras_instagan.data import shapes, unpaired_dataset
    if index == "single":
        strategy = tf.distribute.get_strategy()
    keras.config.set_floatx("float64")  # see test_two_workers_equal_one_process

    # One global batch of 2 samples with >= 3 instances, so that both sequential steps have instances
    # (a step without any is skipped on one device, not with several replicas, where it still moves
    # the spectral-norm vectors).
    a, b = ((images[masks[..., 2].max(axis=(1, 2)) > 0][:2].astype("float64"),
             masks[masks[..., 2].max(axis=(1, 2)) > 0][:2].astype("float64"))
            for images, masks in shapes.load(count=40, size=32, max_instances=4, seed=3))
    dataset = distributed.shard_by_data(unpaired_dataset(a, b, batch_size=2, shuffle=False))
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = InstaGAN(ngf=4, ndf=4, n_blocks=1, pool_size=0)
        model.compile(g_optimizer=keras.optimizers.SGD(0.01), d_optimizer=keras.optimizers.SGD(0.01))
        model.build(tf.nest.map_structure(lambda s: tuple(s.shape), dataset.element_spec))
    initial = [w.numpy() for w in model.trainable_weights]
    model.fit(dataset, epochs=1, verbose=0)
    if index in ("0", "single"):
        np.savez(out, iterations=int(model.g_optimizer.iterations.numpy()),
                 replicas=strategy.num_replicas_in_sync, names=[w.path for w in model.trainable_weights],
                 moved=max(float(np.abs(w.numpy() - i).max())
                           for w, i in zip(model.trainable_weights, initial)),
                 **{f"w{k}": w.numpy() for k, w in enumerate(model.trainable_weights)})
""")


def run_job(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    addresses = distributed.local_workers(2)
    run_together(
        [[sys.executable, str(script), str(i), *addresses, str(tmp_path / "chief.npz")] for i in range(2)],
        ENV,
        timeout=600,
    )
    single = subprocess.run(
        [sys.executable, str(script), "single", *addresses, str(tmp_path / "single.npz")],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    return np.load(tmp_path / "chief.npz"), np.load(tmp_path / "single.npz")


@pytest.mark.slow
def test_two_workers_equal_one_process(tmp_path):
    """2 workers × batch 1 on 127.0.0.1 = 1 process × batch 2 on the same global batch (SGD): one
    training step, i.e. 2 sequential steps of G, D_A and D_B updates.

    In float64, and only one: at this size the official networks amplify float rounding (instance
    norm over nearly constant feature maps). In float32 even this one step differed by 7.5e-4 (of
    0.11 moved) on the synthetic data's second version, and after a second batch a 1e-6 relative
    change of the initial weights moved some weights by 4e-2; such comparisons test the rounding,
    not the distribution."""
    chief, single = run_job(tmp_path)
    assert int(chief["replicas"]) == 2 and int(single["replicas"]) == 1
    assert int(chief["iterations"]) == int(single["iterations"]) == 2  # 1 batch × 2 sequential steps
    assert float(single["moved"]) > 1e-2
    weights = [k for k in single.files if k.startswith("w")]
    assert weights and set(weights) == {k for k in chief.files if k.startswith("w")}
    assert max(float(np.abs(chief[k] - single[k]).max()) for k in weights) <= 1e-8


TRAIN = ["--ngf", "4", "--ndf", "4", "--n_blocks", "1", "--synthetic_count", "32", "--fineSizeH", "32",
         "--fineSizeW", "32", "--loadSizeH", "36", "--loadSizeW", "36",
         "--eval_samples", "2", "--grid_rows", "1", "--pool_size", "2", "--batch_size", "2",
         "--niter", "2", "--niter_decay", "0", "--eval_every", "0"]  # fmt: skip


def start_cluster(run_root, log_name):
    addresses = distributed.local_workers(2)
    command = [
        sys.executable,
        "train.py",
        "--strategy",
        "multiworker",
        "--checkpoints_dir",
        str(run_root),
        "--name",
        "mw",
        "--workers",
        ",".join(addresses),
        *TRAIN,
    ]
    return [
        subprocess.Popen(
            [*command, "--worker_index", str(i)],
            cwd=ROOT,
            env=ENV,
            stdout=open(run_root / f"{log_name}_{i}.log", "w"),
            stderr=subprocess.STDOUT,
        )
        for i in range(len(addresses))
    ]


def logs_tail(run_root, log_name):
    """The last lines of each worker's log, for a failure message."""
    return "\n".join(
        f"--- worker {i}:\n" + (run_root / f"{log_name}_{i}.log").read_text()[-2500:] for i in range(2)
    )


@pytest.mark.slow
def test_killed_worker_resumes_from_backup(tmp_path):
    """Kill worker 1 during epoch 2, stop the cluster, restart both: training continues at epoch 2 from
    the epoch-1 backup (optimizer step counters included) and ends with the full count of steps."""
    run_dir = tmp_path / "mw"
    marker = run_dir / "backup" / "worker_0" / "training_metadata.json"
    workers = start_cluster(tmp_path, "first")
    try:
        deadline = time.time() + 600
        while not marker.exists() and time.time() < deadline and workers[0].poll() is None:
            time.sleep(0.2)
        assert marker.exists(), logs_tail(tmp_path, "first")
        time.sleep(1.0)  # into epoch 2
        assert workers[1].poll() is None, (
            "worker 1 finished before it could be killed: make the epochs longer"
        )
        workers[1].send_signal(signal.SIGKILL)
        workers[1].wait()
        time.sleep(2.0)
    finally:
        stop(workers)  # worker 0 is stuck in a collective without its peer
    assert json.loads(marker.read_text())["epoch"] == 1
    assert not (run_dir / "G_A.keras").exists()

    workers = start_cluster(tmp_path, "second")
    try:
        for worker in workers:
            worker.wait(timeout=600)
    finally:
        stop(workers)
    log = (tmp_path / "second_0.log").read_text()
    assert all(w.returncode == 0 for w in workers), logs_tail(tmp_path, "second")
    assert "resuming from the last backup" in log
    assert "Epoch 1/2" not in log and "Epoch 2/2" in log

    from keras_instagan import InstaGAN
    from keras_instagan.run import RunDirectory

    model = InstaGAN.from_run(run_dir)
    model.compile()
    import tensorflow as tf

    from keras_instagan.data import shapes, unpaired_dataset

    element = unpaired_dataset(*shapes.load(2, 32, 4), batch_size=2, crop=(32, 32)).element_spec
    model.build(tf.nest.map_structure(lambda s: tuple(s.shape), element))
    assert RunDirectory(run_dir).restore_state(model) == 2
    steps_per_epoch = 32 // 2
    assert int(model.g_optimizer.iterations) == 2 * steps_per_epoch * model.steps
    assert [row.split(",")[0] for row in (run_dir / "log.csv").read_text().splitlines()[1:]] == ["1", "2"]


MIRRORED = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from keras_instagan import InstaGAN
    from keras_instagan.data import shapes, unpaired_dataset

    a, b = shapes.load(count=2, size=32, max_instances=4, seed=3)
    dataset = unpaired_dataset(a, b, batch_size=2, shuffle=False)
    shape = tf.nest.map_structure(lambda s: tuple(s.shape), dataset.element_spec)

    def trained(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = InstaGAN(ngf=4, ndf=4, n_blocks=1, pool_size=0)
            model.compile(g_optimizer=keras.optimizers.SGD(0.01), d_optimizer=keras.optimizers.SGD(0.01))
            model.build(shape)
        initial = [w.numpy() for w in model.trainable_weights]
        model.fit(dataset, epochs=1, verbose=0)
        steps = int(model.g_optimizer.iterations.numpy())
        return [w.numpy() for w in model.trainable_weights], initial, steps

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    (two, start, steps_two), (one, _, steps_one) = trained(mirrored), trained(tf.distribute.get_strategy())
    diff = max(float(np.abs(x - y).max()) for x, y in zip(two, one))
    moved = max(float(np.abs(x - y).max()) for x, y in zip(one, start))
    print("MAXDIFF", diff, moved, steps_two, steps_one)
""")


@pytest.mark.slow
def test_mirrored_strategy_equals_one_replica():
    """One fit step on a global batch of 2 split over 2 logical CPUs = the same batch on one device."""
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED], capture_output=True, text=True, timeout=900, cwd=ROOT
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("MAXDIFF")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    _, diff, moved, iterations_two, iterations_one = lines[0].split()
    assert float(diff) <= 1e-4 and float(moved) > 1e-2
    assert int(iterations_two) == int(iterations_one) == 2


# One JAX process of a 2-process cluster (argv: index, coordinator, out) or, with index "single", one
# process on the same global batch: the JOB above on JAX, with `UnpairedSequence` slices for data.
JAX_JOB = textwrap.dedent("""
    import os, sys
    index, coordinator, out = sys.argv[1:4]
    os.environ["JAX_ENABLE_X64"] = "1"
    import keras, numpy as np
    from keras_instagan import distributed
    from keras_instagan.training import JaxDataParallel, OneDevice, fit_scope
    if index == "single":
        strategy, shard = OneDevice(), None
    else:
        processes = distributed.join_jax_processes([coordinator, "127.0.0.1:1"], int(index))
        strategy = JaxDataParallel(2, processes)
        shard = strategy.shard
    from backend_step import use_float64
    use_float64()
    from keras_instagan import InstaGAN
    from keras_instagan.data import UnpairedSequence, shapes

    a, b = ((images[masks[..., 2].max(axis=(1, 2)) > 0][:2].astype("float64"),
             masks[masks[..., 2].max(axis=(1, 2)) > 0][:2].astype("float64"))
            for images, masks in shapes.load(count=40, size=32, max_instances=4, seed=3))
    sequence = UnpairedSequence(a, b, batch_size=2, shuffle=False, shard=shard)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = InstaGAN(ngf=4, ndf=4, n_blocks=1, pool_size=0)
        model.compile(g_optimizer=keras.optimizers.SGD(0.01), d_optimizer=keras.optimizers.SGD(0.01))
        model.build((((None, 32, 32, 3), (None, 32, 32, 4)),) * 2)
    initial = [np.array(w) for w in model.trainable_weights]
    with fit_scope(strategy):
        model.fit(sequence, epochs=1, verbose=0)
    if index in ("0", "single"):
        np.savez(out, iterations=int(model.g_optimizer.iterations), replicas=strategy.num_replicas_in_sync,
                 batch=len(sequence[0][0][0][0]), dtype=str(initial[0].dtype),
                 moved=max(float(np.abs(np.array(w) - i).max())
                           for w, i in zip(model.trainable_weights, initial)),
                 **{f"w{k}": np.array(w) for k, w in enumerate(model.trainable_weights)})
""")
JAX_ENV = {**ENV, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": f"{ROOT}:{ROOT}/tests"}


@pytest.mark.slow
def test_jax_processes_equal_one_process(tmp_path):
    """`--strategy multiworker` on JAX: 2 processes joined by `jax.distributed`, each with one CPU
    device and its half of the global batch (`UnpairedSequence(shard=...)`), make the update of one
    process on the same global batch of 2 (SGD, float64, as `test_two_workers_equal_one_process`)."""
    pytest.importorskip("jax")
    script = tmp_path / "jax_job.py"
    script.write_text(JAX_JOB)
    coordinator = distributed.local_workers(1)[0]
    run_together(
        [
            [sys.executable, str(script), index, coordinator, str(tmp_path / f"{name}.npz")]
            for index, name in (("0", "chief"), ("1", "other"), ("single", "single"))
        ],
        JAX_ENV,
    )
    chief, single = np.load(tmp_path / "chief.npz"), np.load(tmp_path / "single.npz")
    assert not (tmp_path / "other.npz").exists()
    assert int(chief["replicas"]) == 2 and int(single["replicas"]) == 1
    assert int(chief["batch"]) == 1 and int(single["batch"]) == 2  # each process loads its half
    assert str(chief["dtype"]) == "float64"
    assert int(chief["iterations"]) == int(single["iterations"]) == 2
    assert float(single["moved"]) > 1e-2
    weights = [k for k in single.files if k.startswith("w")]
    assert weights and set(weights) == {k for k in chief.files if k.startswith("w")}
    assert max(float(np.abs(chief[k] - single[k]).max()) for k in weights) <= 1e-8


def train_on_jax_processes(run_root, *options):
    """`train.py --strategy multiworker` on 2 JAX processes of this machine; their outputs."""
    addresses = distributed.local_workers(2)
    command = [sys.executable, "train.py", "--strategy", "multiworker", "--workers", ",".join(addresses),
               "--checkpoints_dir", str(run_root), "--name", "mw", "--ngf", "4", "--ndf", "4",
               "--n_blocks", "1", "--synthetic_count", "8", "--eval_samples", "4", "--judge_count", "16",
               "--fineSizeH", "32", "--fineSizeW", "32", "--loadSizeH", "36", "--loadSizeW", "36",
               "--grid_rows", "1", "--batch_size", "2", "--niter_decay", "0", *options]  # fmt: skip
    return run_together([[*command, "--worker_index", str(i)] for i in range(2)], JAX_ENV)


@pytest.mark.slow
def test_train_py_on_jax_processes_writes_one_run_and_resumes(tmp_path):
    """`train.py --strategy multiworker` with `KERAS_BACKEND=jax`: 2 processes train one run; worker 0
    alone writes the run folder (grid, scores, log, state, networks), its callbacks running outside
    the distribution (`callbacks.OutsideDistribution`). Started again with `--continue_train` and one
    more epoch, both processes resume from `state/` and train epoch 2 only."""
    pytest.importorskip("jax")
    outputs = train_on_jax_processes(tmp_path, "--niter", "1")
    assert "2 replica(s), epochs 1..1" in outputs[0] and "training: done" in outputs[0]
    assert "training: done" not in outputs[1] and "judges" not in outputs[1]
    run = tmp_path / "mw"
    rows = (run / "log.csv").read_text().splitlines()
    assert len(rows) == 2 and "classification_AtoB" in rows[0]
    assert (run / "samples" / "epoch_001.png").exists() and (run / "G_A.keras").exists()
    assert json.loads((run / "state" / "epoch.json").read_text())["epochs_done"] == 1

    outputs = train_on_jax_processes(tmp_path, "--niter", "2", "--continue_train")
    assert all("epochs 2..2" in output for output in outputs)
    assert [row.split(",")[0] for row in (run / "log.csv").read_text().splitlines()[1:]] == ["1", "2"]
    assert json.loads((run / "state" / "epoch.json").read_text())["epochs_done"] == 2


def test_jax_processes_refuse_bad_options():
    """Bad `--workers` on JAX are named before JAX is started."""
    with pytest.raises(ValueError, match="is not host:port"):
        distributed.join_jax_processes(["localhost"], 0)
    with pytest.raises(ValueError, match="--worker_index 2 is not in 0..1"):
        distributed.join_jax_processes(["h:1", "h:2"], 2)
