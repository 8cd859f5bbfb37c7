"""Runs the notebooks in full (not the CI smoke run) and saves each with its outputs, so that the
figures and tables show where the notebooks are browsed.

    python notebooks/run_full.py                      # all three
    python notebooks/run_full.py 03_deploy.ipynb      # one

Each notebook runs in `notebooks/` (its figures go to `notebooks/figures/`, its runs to
`notebooks/notebook_runs/`) with `INSTAGAN_SMOKE=0`. Needs the `dev` extra (nbclient, ipykernel).
"""

import argparse
import os
import re
import time

import nbformat
from nbclient import NotebookClient

HERE = os.path.dirname(os.path.abspath(__file__))
# Lines of TensorFlow's logging that say nothing about the notebook: its C++ start-up lines (absl),
# printed whatever the log level, and its Python INFO lines (MirroredStrategy's reductions).
NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} \d\d:\d\d:\d\d|INFO:tensorflow:)")


def without_log_noise(notebook):
    """Drops TensorFlow's log lines (`NOISE`) from the stream outputs, and the outputs left empty."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            if output.get("output_type") == "stream":
                lines = output["text"].splitlines(keepends=True)
                output["text"] = "".join(line for line in lines if not NOISE.match(line))
                if not output["text"].strip():
                    continue
            outputs.append(output)
        cell["outputs"] = outputs
    return notebook


def run(name, timeout):
    path = os.path.join(HERE, name)
    notebook = nbformat.read(path, as_version=4)
    os.environ.update(INSTAGAN_SMOKE="0", TF_CPP_MIN_LOG_LEVEL="3")
    start = time.time()
    NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": HERE}}
    ).execute()
    nbformat.write(without_log_noise(notebook), path)
    print(f"{name}: ran in {(time.time() - start) / 60:.1f} min, saved with its outputs", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="notebooks in notebooks/ (default: all)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds allowed per cell")
    args = p.parse_args()
    for name in args.names or sorted(n for n in os.listdir(HERE) if n.endswith(".ipynb")):
        run(name, args.timeout)


if __name__ == "__main__":
    main()
