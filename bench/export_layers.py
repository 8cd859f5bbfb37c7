"""Where LiteRT loses time against ONNX Runtime: one generator layer at a time, exported both ways,
in the plain form and in the export forms (`keras_instagan.kernels.export_forms()`).

    python bench/export_layers.py                       # 32×32×256 (a 128×128 image's residual blocks)
    python bench/export_layers.py --size 64 --threads 2

Each layer is a one-layer Keras model with dynamic H and W (as the exporter writes them), exported
to LiteRT (Keras' exporter, XNNPACK delegate) and to ONNX (tf2onnx, ONNX Runtime CPU), median of
`--repeats` calls. The layers: the residual block's reflection pad + 3×3 convolution, the 3×3
convolution alone, an instance norm, a residual block and the 2× upsampling (a transposed
convolution to half the channels). It also lists the LiteRT operations of each layer's graph. The
last line printed is JSON.
"""

import argparse
import contextlib
import json
import os
import tempfile

from common import median_seconds


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=32, help="feature map height and width")
    p.add_argument("--channels", type=int, default=256)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import onnxruntime
    import tensorflow as tf
    import tf2onnx
    from ai_edge_litert.interpreter import Interpreter

    from keras_instagan import kernels, layers

    channels = args.channels
    make = {
        "reflection pad + conv 3×3": lambda: [layers.ReflectionPadding2D(1), layers.TorchConv2D(channels, 3)],
        "conv 3×3 (valid)": lambda: [layers.TorchConv2D(channels, 3)],
        "instance norm": lambda: [layers.instance_norm()],
        "residual block": lambda: [layers.ResnetBlock(channels)],
        "upsampling 2×": lambda: [layers.TorchConv2DTranspose(channels // 2)],
    }
    x = np.random.default_rng(0).standard_normal((1, args.size, args.size, channels)).astype(np.float32)
    spec = tf.TensorSpec((None, None, None, channels), tf.float32, name="x")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name, stack in make.items():
            keras.utils.set_random_seed(0)
            inputs = keras.Input((None, None, channels))
            y = inputs
            for layer in stack():
                y = layer(y)
            model = keras.Model(inputs, y)
            for forms in ("plain", "export forms"):
                switch = kernels.export_forms() if forms == "export forms" else contextlib.nullcontext()
                path = os.path.join(folder, "layer.tflite")
                with switch:
                    model.export(path, format="litert", input_signature=[spec], verbose=False)
                    traced = tf.function(lambda t, model=model: model(t), input_signature=[spec])
                    graph, _ = tf2onnx.convert.from_function(traced, input_signature=[spec], opset=17)
                interpreter = Interpreter(path, num_threads=args.threads)
                operations = sorted({op["op_name"] for op in interpreter._get_ops_details()})
                runner = interpreter.get_signature_runner()
                session = onnxruntime.InferenceSession(
                    graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
                )
                feed = {session.get_inputs()[0].name: x}
                row = {
                    "layer": name,
                    "forms": forms,
                    "litert_ms": round(
                        1e3 * median_seconds(lambda runner=runner: runner(x=x), args.repeats), 2
                    ),
                    "onnxruntime_ms": round(
                        1e3 * median_seconds(lambda s=session, f=feed: s.run(None, f), args.repeats), 2
                    ),
                    "litert_operations": operations,
                }
                row["ratio"] = round(row["litert_ms"] / row["onnxruntime_ms"], 2)
                results.append(row)
                print(
                    f"{name:28s} {forms:12s} LiteRT {row['litert_ms']:7.2f} ms  ONNX Runtime "
                    f"{row['onnxruntime_ms']:7.2f} ms  ×{row['ratio']:.2f}  {' '.join(operations)}",
                    flush=True,
                )
    print(json.dumps({"size": args.size, "channels": channels, "threads": args.threads, "layers": results}))


if __name__ == "__main__":
    main()
