"""The command-line programs: `instagan-train`, `instagan-evaluate`, `instagan-plot-quality` (also run
as `python train.py`, `python evaluate.py`, `python plot_quality.py` from the repository root)."""
