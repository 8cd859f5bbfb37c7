"""`python plot_quality.py --help`: the `instagan-plot-quality` command."""

from keras_instagan.cli.plot_quality import main

if __name__ == "__main__":
    main()
