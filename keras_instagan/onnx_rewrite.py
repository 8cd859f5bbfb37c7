"""ONNX graph rewrites that speed the exported generator up on ONNX Runtime's CPU, same math.

ONNX Runtime's x86 convolutions (its NCHWc layout) compute output channels in blocks of 8 (AVX2)
or 16 (AVX-512). The generators end in 7×7 convolutions to 3 (image) and 1 (mask) channels, so
those run 8/3× and 8× the work they need: at 256×256, ngf 64, image + 2 masks, they took 0.35 s of
a 3.3 s step on the 2-core development machine (see docs/benchmarks.md).

`split_thin_convolutions` rewrites each such convolution `y = conv_k×k(x, W) + b` (stride 1, no
padding, one group) as a 1×1 convolution of `x` to one channel per tap and output channel (a dense
matrix product) followed by the sum of the k·k shifted slices:

    y[c, h, w] = Σ_{i,j} t[(i·k + j)·C_out + c, h + i, w + j] + b[c],   t = conv_1×1(x, W[c, :, i, j])

The result equals the original up to float rounding (the sum runs in another order).
"""

import numpy as np
from onnx import helper, numpy_helper

MAX_CHANNELS = 4
# The name ending of the 1×1 convolution a split convolution becomes.
THIN_SUFFIX = "/taps"
_END = np.iinfo(np.int64).max


def split_thin_convolutions(model, max_channels=MAX_CHANNELS):
    """Rewrite, in place, every `Conv` of `model` (an `onnx.ModelProto`) with at most
    `max_channels` output channels, a k×k kernel (k > 1) held as an initializer, stride 1,
    dilation 1, one group and no padding. Returns how many were rewritten."""
    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    nodes, rewritten = [], 0
    for node in graph.node:
        replacement = _split(node, weights, graph, max_channels)
        if replacement is None:
            nodes.append(node)
        else:
            nodes.extend(replacement)
            rewritten += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    unused = [tensor for tensor in graph.initializer if tensor.name not in used]
    for tensor in unused:
        graph.initializer.remove(tensor)
    return rewritten


def _is_thin(node, weights, max_channels):
    if node.op_type != "Conv" or node.domain not in ("", "ai.onnx"):
        return False
    if any(name not in weights for name in node.input[1:] if name):
        return False
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    c_out, _, kh, kw = weights[node.input[1]].dims
    return (
        c_out <= max_channels
        and kh * kw > 1
        and attributes.get("group", 1) == 1
        and all(s == 1 for s in attributes.get("strides", [1, 1]))
        and all(d == 1 for d in attributes.get("dilations", [1, 1]))
        and not any(attributes.get("pads", [0, 0, 0, 0]))
        and attributes.get("auto_pad", b"NOTSET") in (b"NOTSET", b"VALID")
    )


def _split(node, weights, graph, max_channels):
    if not _is_thin(node, weights, max_channels):
        return None
    kernel = numpy_helper.to_array(weights[node.input[1]])
    c_out, c_in, kh, kw = kernel.shape
    name = node.name or node.output[0]

    def constant(suffix, value):
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), f"{name}/{suffix}"))
        return f"{name}/{suffix}"

    taps = kernel.transpose(2, 3, 0, 1).reshape(kh * kw * c_out, c_in, 1, 1)
    nodes = [
        helper.make_node(
            "Conv",
            [node.input[0], constant("taps_kernel", taps)],
            [name + THIN_SUFFIX],
            name=name + THIN_SUFFIX,
            kernel_shape=[1, 1],
        )
    ]
    axes = constant("axes", np.array([1, 2, 3], np.int64))
    parts = []
    for i in range(kh):
        for j in range(kw):
            tap = i * kw + j
            starts = constant(f"starts_{tap}", np.array([tap * c_out, i, j], np.int64))
            ends = constant(
                f"ends_{tap}",
                np.array([(tap + 1) * c_out, i - (kh - 1) or _END, j - (kw - 1) or _END], np.int64),
            )
            parts.append(f"{name}/tap_{tap}")
            nodes.append(
                helper.make_node(
                    "Slice", [name + THIN_SUFFIX, starts, ends, axes], [parts[-1]], name=parts[-1]
                )
            )
    if len(node.input) > 2 and node.input[2]:
        bias = numpy_helper.to_array(weights[node.input[2]]).reshape(1, c_out, 1, 1)
        nodes.append(helper.make_node("Sum", parts, [f"{name}/sum"], name=f"{name}/sum"))
        nodes.append(
            helper.make_node(
                "Add", [f"{name}/sum", constant("bias", bias)], list(node.output), name=f"{name}/bias"
            )
        )
    else:
        nodes.append(helper.make_node("Sum", parts, list(node.output), name=f"{name}/sum"))
    return nodes
