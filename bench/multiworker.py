"""Training throughput with 1 and 2 `MultiWorkerMirroredStrategy` workers on this machine (127.0.0.1).

    python bench/multiworker.py                 # 1 worker, then 2 workers
    python bench/multiworker.py --workers 2 --steps 30

Each worker trains the synthetic data with batch 1 per worker (global batch = number of workers),
32×32 crops, ngf = ndf = 8, 2 blocks, ins_max 4, ins_per 2 (the `python train.py` configuration), and
times every training step after `--warmup` steps. The last line is JSON: per worker count, the median
seconds per step, steps/s and samples/s. All workers of a run share this machine's cores, so on a
2-core machine a second worker adds communication and contention, not speed.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker(args):
    from keras_instagan import distributed

    os.environ["TF_CONFIG"] = distributed.tf_config(args.addresses.split(","), args.worker_index)
    strategy = distributed.multiworker_strategy()
    import keras
    import numpy as np

    from keras_instagan import InstaGAN
    from keras_instagan.data import shapes, unpaired_dataset

    class StepTimes(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    times = []
    workers = len(args.addresses.split(","))
    count = (args.steps + args.warmup) * workers
    a, b = shapes.load(count, 36, max_instances=4, seed=0)
    dataset = distributed.shard_by_data(
        unpaired_dataset(a, b, batch_size=workers, seed=0, crop=(32, 32), flip=True)
    )
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = InstaGAN(ngf=8, ndf=8, n_blocks=2, ins_max=4, ins_per=2, seed=0)
        model.compile()
    model.fit(dataset, epochs=1, verbose=0, callbacks=[StepTimes()])
    if args.worker_index == 0:
        seconds = float(np.median(times[args.warmup :]))
        print(
            "RESULT " + json.dumps({"seconds_per_step": round(seconds, 4), "steps": len(times) - args.warmup})
        )


def run(workers, args):
    from keras_instagan.distributed import local_workers

    addresses = ",".join(local_workers(workers))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--addresses",
        addresses,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
    ]
    processes = [
        subprocess.Popen(
            [*command, "--worker_index", str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(workers)
    ]
    try:
        outputs = [p.communicate(timeout=args.timeout)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    if any(p.returncode for p in processes):
        sys.exit(f"bench/multiworker.py: a worker failed:\n{outputs[0][-3000:]}\n{outputs[-1][-3000:]}")
    result = json.loads(next(line for line in outputs[0].splitlines() if line.startswith("RESULT "))[7:])
    result.update(
        workers=workers,
        global_batch=workers,
        steps_per_second=round(1 / result["seconds_per_step"], 3),
        samples_per_second=round(workers / result["seconds_per_step"], 3),
    )
    print(
        f"{workers} worker(s): {result['seconds_per_step']:.3f} s/step, {result['steps_per_second']:.2f} "
        f"steps/s, {result['samples_per_second']:.2f} samples/s",
        flush=True,
    )
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to measure")
    p.add_argument("--steps", type=int, default=20, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=3, help="untimed first steps (tracing)")
    p.add_argument("--timeout", type=int, default=1200, help="seconds before a run is killed")
    p.add_argument("--addresses", help=argparse.SUPPRESS)  # set for the worker processes
    p.add_argument("--worker_index", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.addresses:
        return worker(args)
    results = [run(n, args) for n in args.workers]
    print(
        json.dumps(
            {
                "config": "synthetic 32x32, ngf=ndf=8, 2 blocks, ins_max 4, ins_per 2, batch 1 per worker",
                "cpu_count": os.cpu_count(),
                "runs": results,
            }
        )
    )


if __name__ == "__main__":
    main()
