"""Export a trained generator to ONNX and LiteRT; see `python -m keras_instagan.export --help`.

python export/export.py --run checkpoints/shapes_instagan --direction AtoB --format onnx litert
"""

from keras_instagan.export import main

if __name__ == "__main__":
    main()
