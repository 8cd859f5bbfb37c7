"""`python evaluate.py --help`: the `instagan-evaluate` command (`keras_instagan.cli.evaluate`)."""

from keras_instagan.cli.evaluate import main

if __name__ == "__main__":
    main()
