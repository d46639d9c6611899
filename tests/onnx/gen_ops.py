#!/usr/bin/env python3
"""The ONNX operators PyTorch's exports in tests/onnx/torch_nets.py do not reach (needs python3-onnx
and numpy only; the files are committed, tests/test_onnx.c needs no Python):
   /usr/bin/python3 tests/onnx/gen_ops.py tests/onnx
writes ops_onnx.onnx (Pad before Conv, GlobalAveragePool, a Transpose that moves size-1 axes,
Squeeze, Unsqueeze, MatMul + Add, Div, Mul by a broadcast constant, Sub, Slice, Gather, Concat,
MaxPool, Flatten), ops_x.npy (input) and the expected outputs ops_sub.npy and ops_flat.npy computed
here with numpy in float64."""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1] if len(sys.argv) > 1 else "."
rng = np.random.default_rng(11)
f32 = lambda *s: rng.uniform(-1, 1, s).astype(np.float32)
N = 5
x = f32(N, 2, 6, 6)
W, B = f32(3, 2, 3, 3), f32(3)
Wm, bm, cm = f32(3, 5), f32(5), f32(5)
I = lambda name, a: numpy_helper.from_array(np.asarray(a), name)
inits = [I("W", W), I("B", B), I("Wm", Wm), I("bm", bm), I("cm", cm), I("two", np.array(2.0, np.float32)),
         I("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)), I("ax12", np.array([1, 2], np.int64)),
         I("ax1", np.array([1], np.int64)), I("st", np.array([1], np.int64)), I("en", np.array([3], np.int64)),
         I("i0", np.array(0, np.int64))]
n = helper.make_node
nodes = [
    n("Pad", ["x", "pads"], ["p"], name="pad", mode="constant"),
    n("Conv", ["p", "W", "B"], ["c"], name="conv", kernel_shape=[3, 3]),
    n("Relu", ["c"], ["r"], name="relu"),
    n("GlobalAveragePool", ["r"], ["g"], name="gap"),
    n("Transpose", ["g"], ["tr"], name="tr", perm=[0, 2, 3, 1]),
    n("Squeeze", ["tr", "ax12"], ["sq"], name="sq"),
    n("MatMul", ["sq", "Wm"], ["mm"], name="mm"),
    n("Add", ["mm", "bm"], ["a"], name="bias"),
    n("Div", ["a", "two"], ["d"], name="half"),
    n("Mul", ["a", "cm"], ["e"], name="scaled"),
    n("Sub", ["d", "e"], ["sub"], name="sub"),
    n("Slice", ["r", "st", "en", "ax1"], ["sl"], name="sl"),
    n("Gather", ["r", "i0"], ["gt"], name="gt", axis=1),
    n("Unsqueeze", ["gt", "ax1"], ["un"], name="un"),
    n("Concat", ["sl", "un"], ["cat"], name="cat", axis=1),
    n("MaxPool", ["cat"], ["mp"], name="mp", kernel_shape=[2, 2], strides=[2, 2]),
    n("Flatten", ["mp"], ["flat"], name="flat"),
]
vi = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
g = helper.make_graph(nodes, "ops", [vi("x", ["N", 2, 6, 6])], [vi("sub", ["N", 5]), vi("flat", ["N", 27])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="gen_ops")
onnx.checker.check_model(m, full_check=True)
open("%s/ops_onnx.onnx" % out, "wb").write(m.SerializeToString())

# the same computation in float64
X = x.astype(np.float64)
P = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
C = np.zeros((N, 3, 6, 6))
for i in range(6):
    for j in range(6):
        C[:, :, i, j] = np.einsum("nchw,ochw->no", P[:, :, i:i + 3, j:j + 3], W.astype(np.float64)) + B
R = np.maximum(C, 0)
SQ = R.mean(axis=(2, 3))
A = SQ @ Wm.astype(np.float64) + bm
SUB = A / 2 - A * cm
CAT = np.concatenate([R[:, 1:3], R[:, 0:1]], axis=1)
MP = CAT.reshape(N, 3, 3, 2, 3, 2).max(axis=(3, 5))
np.save("%s/ops_x.npy" % out, x)
np.save("%s/ops_sub.npy" % out, SUB.astype(np.float32))
np.save("%s/ops_flat.npy" % out, MP.reshape(N, 27).astype(np.float32))
print("wrote ops_onnx.onnx, ops_x.npy, ops_sub.npy, ops_flat.npy")
