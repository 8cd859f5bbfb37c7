"""`python train.py --help`: the `instagan-train` command (`keras_instagan.cli.train`)."""

from keras_instagan.cli.train import main

if __name__ == "__main__":
    main()
