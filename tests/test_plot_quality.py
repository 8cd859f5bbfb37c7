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


def test_plot_quality_tables_the_scores_at_the_asked_and_the_last_epochs(tmp_path, capsys):
    from keras_instagan.cli import plot_quality

    header = "epoch,seconds," + ",".join(
        f"{score}_{d}" for score, _, _ in plot_quality.TABLE_SCORES for d in ("AtoB", "BtoA")
    )

    def scores(value):
        return ",".join([value] * 2 * len(plot_quality.TABLE_SCORES))

    logs = {
        "long": ["1,60," + scores("nan"), "2,60," + scores("0.5"), "3,60," + scores("0.25")],
        "short": ["1,120," + scores("1")],
        "merged": ["1,60,1,1,nan,nan,1,1,1,1"],  # bg err, shape inst (none: merged masks), painted, cls
    }
    runs = []
    for name, rows in logs.items():
        run = tmp_path / name
        run.mkdir()
        (run / "log.csv").write_text("\n".join([header, *rows]) + "\n")
        runs.append(str(run))
    text = plot_quality.main(["--run", *runs, "--label", "L", "S", "M", "--table", "2"])
    lines = text.splitlines()
    assert lines[0].startswith("| epoch | run | training min | bg err")
    # epoch 2 (asked), 3 (long's last) and 1 (short's and merged's last); long's epoch 1 has no
    # scores; merged (CycleGAN+Seg) logs no per-instance shape score
    assert lines[2:] == [
        "| 1 | S | 2.0 | 1.00 / 1.00 | 1.000 / 1.000 | 1.000 / 1.000 | 1.000 / 1.000 |",
        "| 1 | M | 1.0 | 1.00 / 1.00 | — / — | 1.000 / 1.000 | 1.000 / 1.000 |",
        "| 2 | L | 2.0 | 0.50 / 0.50 | 0.500 / 0.500 | 0.500 / 0.500 | 0.500 / 0.500 |",
        "| 3 | L | 3.0 | 0.25 / 0.25 | 0.250 / 0.250 | 0.250 / 0.250 | 0.250 / 0.250 |",
    ]
    assert capsys.readouterr().out.strip() == text
