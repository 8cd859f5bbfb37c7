"""Training on several machines: TensorFlow's `MultiWorkerMirroredStrategy`, configured by `TF_CONFIG`,
and on JAX one process per machine joined by `jax.distributed`.

TensorFlow: each worker runs the same program (`python train.py --strategy multiworker ...`) with its own
`TF_CONFIG`, the JSON TensorFlow reads to find the cluster and its own place in it:

    {"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]}, "task": {"type": "worker", "index": 0}}

Worker 0 is the chief (unless the cluster names a "chief" task): it alone writes the run directory.
Every worker keeps a `keras.callbacks.BackupAndRestore` backup of its own state (weights, optimizers,
spectral-norm vectors and its image pool) after each epoch; restarting all workers after a failure
resumes from the last finished epoch.

JAX (`KERAS_BACKEND=jax`): the same command with `--workers` and `--worker_index` joins the processes
through `keras.distribution.initialize` (worker 0's address is JAX's coordinator); without
`--workers` it reads `KERAS_DISTRIBUTION_JOB_ADDRESSES`, `KERAS_DISTRIBUTION_NUM_PROCESSES` and
`KERAS_DISTRIBUTION_PROCESS_ID`, or lets JAX find the cluster (Cloud TPU, SLURM). The iteration is then
one program over every process's devices (`keras.distribution.DataParallel`); each process loads its
own slice of every global batch. Process 0 writes the run directory; `--continue_train` needs the run
directory on a file system every process reads.

The training step is `InstaGAN.train_step`, the same as on one device and under `MirroredStrategy`.
TensorFlow is imported only by the functions that use it.
"""

import json
import os
import socket


def check_workers(workers, index):
    """`workers`, a list of `"host:port"` strings, stripped; a `ValueError` naming the option when an
    address is not host:port or `index` is not a place in the list."""
    workers = [w.strip() for w in workers if w.strip()]
    if len(workers) < 1:
        raise ValueError("--workers: give at least one host:port")
    for address in workers:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--workers: {address!r} is not host:port")
    if not 0 <= index < len(workers):
        raise ValueError(f"--worker_index {index} is not in 0..{len(workers) - 1} ({len(workers)} workers)")
    return workers


def tf_config(workers, index):
    """The `TF_CONFIG` JSON for worker `index` of `workers`, a list of `"host:port"` strings."""
    workers = check_workers(workers, index)
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": int(index)}})


def local_workers(count):
    """`count` `"127.0.0.1:port"` addresses on ports free right now: a cluster on this machine (tests,
    benchmarks, trying it out)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    finally:
        for s in sockets:
            s.close()


def cluster_task(environ=None):
    """`(cluster, task type, task index)` from `TF_CONFIG`; a `ValueError` naming what is wrong when it
    is missing or malformed."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not text:
        raise ValueError(
            "--strategy multiworker needs TF_CONFIG (or --workers host:port,... and "
            "--worker_index i, which write it)"
        )
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"TF_CONFIG is not a cluster/task JSON ({error}): {text!r}") from None
    if kind not in cluster or not 0 <= index < len(cluster[kind]):
        raise ValueError(f"TF_CONFIG: task {kind} #{index} is not in the cluster {cluster}")
    return cluster, kind, index


def is_chief(environ=None):
    """Whether this task writes the run directory: the "chief" task, or worker 0 without one."""
    cluster, kind, index = cluster_task(environ)
    return kind == "chief" or ("chief" not in cluster and kind == "worker" and index == 0)


def multiworker_strategy():
    """`MultiWorkerMirroredStrategy` for the cluster in `TF_CONFIG`. Create it before anything else
    touches TensorFlow (it starts the runtime's collective service)."""
    import tensorflow as tf

    cluster_task()
    return tf.distribute.MultiWorkerMirroredStrategy()


def shard_by_data(dataset):
    """The data set with data sharding across workers: each worker keeps its own part of every global
    batch, so the global batch is the sum of the workers' batches. All workers must build the same
    data set (the same seed)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def backup_dir(backup_root, environ=None):
    """Where this task's `BackupAndRestore` keeps its state: `<backup_root>/<type>_<index>` (the run's
    `backup/`, `RunDirectory.backup`)."""
    _, kind, index = cluster_task(environ)
    return os.path.join(backup_root, f"{kind}_{index}")


def has_backup(directory):
    """Whether `BackupAndRestore` left a backup in `directory` (a restarted cluster resumes from it)."""
    return os.path.exists(os.path.join(directory, "training_metadata.json"))


def join_jax_processes(workers=None, index=None):
    """Join this process to the others of a JAX cluster (`keras.distribution.initialize`), before any
    JAX computation: with `workers` (`"host:port"` strings, the same list in every process, the first
    being the coordinator) as process `index`, or else from the environment as the module docstring
    says. Returns `(process index, process count)`."""
    workers = check_workers(workers, index) if workers else None
    import jax
    import keras

    if workers:
        keras.distribution.initialize(",".join(workers), len(workers), index)
    else:
        keras.distribution.initialize()
    return jax.process_index(), jax.process_count()
