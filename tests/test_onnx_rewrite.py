"""`split_thin_convolutions`: which convolutions it rewrites, and that the rewritten graph computes
the same numbers as the original on ONNX Runtime."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from keras_instagan.onnx_rewrite import split_thin_convolutions  # noqa: E402


def conv_model(rng, convs):
    """One input `x (B, 6, H, W)`; one output per conv spec `(c_out, k, bias, attributes)`."""
    nodes, initializers, outputs = [], [], []
    for n, (c_out, k, bias, attributes) in enumerate(convs):
        inputs = ["x", f"w{n}"]
        kernel = rng.normal(size=(c_out, 6, k, k)).astype(np.float32)
        initializers.append(numpy_helper.from_array(kernel, f"w{n}"))
        if bias:
            initializers.append(numpy_helper.from_array(rng.normal(size=c_out).astype(np.float32), f"b{n}"))
            inputs.append(f"b{n}")
        nodes.append(
            helper.make_node("Conv", inputs, [f"y{n}"], name=f"conv{n}", kernel_shape=[k, k], **attributes)
        )
        outputs.append(helper.make_tensor_value_info(f"y{n}", TensorProto.FLOAT, [None] * 4))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 6, None, None])
    graph = helper.make_graph(nodes, "convs", [x], outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # the newest IR version onnxruntime 1.31 reads
    return model


def run(model, x):
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def conv_kernels(model):
    weights = {t.name: t.dims for t in model.graph.initializer}
    return [tuple(weights[node.input[1]]) for node in model.graph.node if node.op_type == "Conv"]


def test_thin_convolutions_are_split_and_compute_the_same():
    rng = np.random.default_rng(0)
    specs = [
        (1, 7, True, {}),  # the mask decoder's last layer: split
        (3, 7, True, {}),  # the image decoder's last layer: split
        (2, 3, False, {}),  # no bias: split
        (8, 3, True, {}),  # wide: kept
        (1, 1, True, {}),  # 1×1: kept
        (1, 3, True, {"pads": [1, 1, 1, 1]}),  # padded: kept
        (1, 3, True, {"strides": [2, 2]}),  # strided: kept
    ]
    model = conv_model(rng, specs)
    x = rng.normal(size=(2, 6, 20, 28)).astype(np.float32)
    expected = run(model, x)
    assert split_thin_convolutions(model) == 3
    onnx.checker.check_model(model)
    kernels = conv_kernels(model)
    assert (49, 6, 1, 1) in kernels and (147, 6, 1, 1) in kernels and (18, 6, 1, 1) in kernels
    thin = [(c, k) for c, _, k, _ in kernels if c <= 4 and k > 1]
    assert thin == [(1, 3), (1, 3)]  # only the padded and the strided one are left
    assert not any(name in {t.name for t in model.graph.initializer} for name in ("w0", "w1", "w2"))
    got = run(model, x)
    for n, (e, g) in enumerate(zip(expected, got)):
        assert g.shape == e.shape, n
        np.testing.assert_allclose(g, e, atol=1e-4, rtol=1e-5, err_msg=f"conv{n}")


def test_exported_generator_keeps_no_thin_kxk_convolution(tmp_path):
    keras = pytest.importorskip("keras")
    pytest.importorskip("tf2onnx")
    from keras_instagan import SetGenerator
    from keras_instagan.export import export_onnx

    keras.utils.set_random_seed(0)
    path = export_onnx(SetGenerator(ngf=4, n_blocks=1), str(tmp_path / "g.onnx"), 2)
    kernels = conv_kernels(onnx.load(path))
    one_by_one = {c for c, _, k, _ in kernels if k == 1}
    assert {49 * 3, 49} <= one_by_one  # the image and mask decoders' last 7×7 layers, split
    assert not any(c <= 4 and k > 1 for c, _, k, _ in kernels)
