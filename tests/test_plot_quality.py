"""`plot_quality.py` (`keras_instagan.cli.plot_quality`): curves of the scores in a run's log.csv."""

import os

import pytest


def test_plot_quality_draws_every_logged_score(tmp_path):
    from keras_instagan.cli import plot_quality

    run = tmp_path / "run"
    run.mkdir()
    with open(run / "log.csv", "w") as f:
        f.write(
            "epoch,seconds,shape_instances_AtoB,shape_instances_BtoA,fid_AtoB\n"
            "1,60,nan,nan,nan\n2,60,0.5,0.7,30\n3,120,0.8,0.9,20\n"
        )
    curves = plot_quality.read_curves(str(run))
    assert curves["shape_instances_AtoB"] == [(2.0, 0.5), (4.0, 0.8)]  # minutes: running sum
    written = plot_quality.main(["--run", str(run), "--out", str(tmp_path / "figs" / "q")])
    assert sorted(os.path.basename(p) for p in written) == ["q_fid.png", "q_shape_instances.png"]
    assert all(os.path.getsize(p) > 1000 for p in written)
    (run / "log.csv").write_text("epoch,seconds\n1,60\n")
    with pytest.raises(SystemExit, match="--eval_every"):
        plot_quality.main(["--run", str(run), "--out", str(tmp_path / "q")])
    with pytest.raises(SystemExit, match="not a train.py run directory"):
        plot_quality.main(["--run", str(tmp_path / "none")])
