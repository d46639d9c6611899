#!/usr/bin/env python3
"""Writes the bad-ONNX corpus of tests/test_onnx.c (needs python3-onnx only):
   /usr/bin/python3 tests/onnx/bad/gen_bad.py tests/onnx/bad
Each file breaks one rule; test_onnx.c holds the message each must give."""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1] if len(sys.argv) > 1 else "."
rng = np.random.default_rng(7)


def t(name, shape, dtype=np.float32):
    return numpy_helper.from_array(rng.uniform(-1, 1, shape).astype(dtype), name)


def model(nodes, inits, inputs, outputs, opset=13):
    g = helper.make_graph(nodes, "bad", inputs, outputs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="gen_bad")


X = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])
XF = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 196])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)


def conv(name="conv_0", **attrs):
    return helper.make_node("Conv", ["x", "w", "b"], ["y"], name=name, kernel_shape=[3, 3], **attrs)


good = model([conv()], [t("w", (4, 1, 3, 3)), t("b", (4,))], [X], [Y])
files = {
    "opset9": model([conv()], [t("w", (4, 1, 3, 3)), t("b", (4,))], [X], [Y], opset=9),
    "unsupported_op": model([helper.make_node("Erf", ["x"], ["y"], name="erf_0")], [], [X], [Y]),
    "missing_initializer": model([conv()], [t("b", (4,))], [X], [Y]),
    "shape_mismatch": model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)],
                            [t("w", (10, 99)), t("b", (10,))], [XF], [Y]),
    "group2": model([helper.make_node("Conv", ["x", "w"], ["y"], name="Conv_3", group=2)],
                    [t("w", (4, 1, 3, 3))], [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 8, 8])], [Y]),
    "float16_weight": model([conv()], [t("w", (4, 1, 3, 3), np.float16), t("b", (4,))], [X], [Y]),
    "int64_input": model([helper.make_node("Identity", ["x"], ["y"], name="id")], [],
                         [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 3])], [Y]),
    "asymmetric_pads": model([conv(pads=[1, 1, 0, 0])], [t("w", (4, 1, 3, 3)), t("b", (4,))], [X], [Y]),
    "output_shape": model([conv()], [t("w", (4, 1, 3, 3)), t("b", (4,))], [X],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 7, 7])]),
    "add_broadcast": model([helper.make_node("Conv", ["x", "w"], ["c"], name="c"),
                            helper.make_node("Add", ["c", "x"], ["y"], name="add_1")],
                           [t("w", (4, 1, 3, 3))], [X], [Y]),
    "no_outputs_computed": model([conv()], [t("w", (4, 1, 3, 3)), t("b", (4,))], [X],
                                 [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)]),
    "dilated": model([conv(dilations=[2, 2])], [t("w", (4, 1, 3, 3)), t("b", (4,))], [X], [Y]),
}
for name, m in files.items():
    with open("%s/%s.onnx" % (out, name), "wb") as f:
        f.write(m.SerializeToString())
data = good.SerializeToString()
with open("%s/truncated.onnx" % out, "wb") as f:
    f.write(data[: len(data) * 2 // 3])
with open("%s/not_onnx.onnx" % out, "wb") as f:
    f.write(b"model: mlp\ninputs: {x: {shape: [3]}}\n")
with open("%s/empty.onnx" % out, "wb") as f:
    pass
with open("%s/good.onnx" % out, "wb") as f:
    f.write(data)
print("wrote %d files to %s" % (len(files) + 4, out))
