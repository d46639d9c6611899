#!/usr/bin/env python3
"""PyTorch side of the ONNX tests (tests/test_onnx_torch.c).

  torch_nets.py export DIR     four networks with random weights -> DIR/<net>.onnx, DIR/<net>_x.npy
                               (inputs) and DIR/<net>_y.npy (PyTorch's outputs in eval mode)
  torch_nets.py run NET.onnx X.npy Y.npy
                               PyTorch evaluates the digit CNN snc exported from models/digit_cnn.yaml
                               (the ONNX initializers loaded into the same PyTorch module) on X,
                               writes Y (after onnx.checker with full checking)
  torch_nets.py check NET.onnx onnx.checker.check_model(full_check=True)

Exit status 3 when torch or onnx cannot be imported (the C test then skips with that message).
"""
import sys

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import onnx
    from onnx import numpy_helper
except Exception as e:  # noqa: BLE001 - any import failure means "skip"
    print("skip: PyTorch/ONNX not available (%s)" % e)
    sys.exit(3)

N = 37  # samples: not a multiple of the batch sizes, so the last batch is partial


class DigitCNN(nn.Module):  # the seed's single-digit network (models/digit_cnn.yaml)
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(256, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.tanh(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.tanh(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)  # Shape/Gather/Unsqueeze/Concat/Reshape without constant folding
        x = torch.tanh(self.fc1(x))
        x = torch.tanh(self.fc2(x))
        return self.fc3(x)


class LeNet5(nn.Module):  # models/lenet5.yaml: 5x5 convolutions, average pooling
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5, padding=2)
        self.s2 = nn.AvgPool2d(2)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.f5 = nn.Linear(144, 120)
        self.f6 = nn.Linear(120, 84)
        self.out = nn.Linear(84, 10)

    def forward(self, x):
        x = self.s2(torch.tanh(self.c1(x)))
        x = torch.tanh(self.c3(x))
        x = torch.flatten(x, 1)
        x = torch.tanh(self.f5(x))
        x = torch.sigmoid(self.f6(x))
        return torch.log_softmax(self.out(x), dim=1)


class MLP(nn.Module):  # models/mlp.yaml, with the other activations
    def __init__(self):
        super().__init__()
        self.h1 = nn.Linear(196, 256)
        self.h2 = nn.Linear(256, 128)
        self.h3 = nn.Linear(128, 64)
        self.logits = nn.Linear(64, 10)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        x = nn.Flatten()(x)
        x = self.drop(torch.relu(self.h1(x)))
        x = nn.functional.leaky_relu(self.h2(x), 0.05)
        x = nn.functional.elu(self.h3(x), 0.7)
        return torch.softmax(self.logits(x), dim=1)


class BNCNN(nn.Module):  # siamese_plus's branch: padded 3x3 convolutions, batch norm, ReLU
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 48, 3, padding=1), nn.BatchNorm2d(48)
        self.c2, self.b2 = nn.Conv2d(48, 48, 3, padding=1), nn.BatchNorm2d(48)
        self.c3, self.b3 = nn.Conv2d(48, 96, 3, padding=1), nn.BatchNorm2d(96)
        self.fc, self.bf = nn.Linear(96 * 3 * 3, 128), nn.BatchNorm1d(128)
        self.out = nn.Linear(128, 10)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        x = torch.relu(self.b1(self.c1(x)))
        x = torch.max_pool2d(torch.relu(self.b2(self.c2(x))), 2)
        x = torch.max_pool2d(torch.relu(self.b3(self.c3(x))), 2)
        x = self.drop(torch.flatten(x, 1))
        x = self.drop(torch.relu(self.bf(self.fc(x))))
        return self.out(x)


# name, module, input shape, opset, constant folding
NETS = [
    ("digit_cnn", DigitCNN, (1, 14, 14), 13, False),
    ("lenet5", LeNet5, (1, 14, 14), 11, True),
    ("mlp", MLP, (1, 14, 14), 17, True),
    ("bn_cnn", BNCNN, (1, 14, 14), 13, True),
]


def randomize(m, g):
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):  # running statistics of a trained net
                mod.weight.uniform_(0.5, 1.5, generator=g)
                mod.bias.uniform_(-0.2, 0.2, generator=g)
                mod.running_mean.uniform_(-0.3, 0.3, generator=g)
                mod.running_var.uniform_(0.5, 2.0, generator=g)
            elif isinstance(mod, (nn.Conv2d, nn.Linear)):
                b = 1.0 / (mod.weight[0].numel() ** 0.5)
                mod.weight.uniform_(-b, b, generator=g)
                mod.bias.uniform_(-b, b, generator=g)


def export(out):
    torch.set_num_threads(1)
    for i, (name, cls, shape, opset, fold) in enumerate(NETS):
        g = torch.Generator().manual_seed(100 + i)
        m = cls()
        randomize(m, g)
        m.eval()
        x = torch.rand((N,) + shape, generator=g) * 2 - 0.5
        with torch.no_grad():
            y = m(x)
        torch.onnx.export(m, x[:2], "%s/%s.onnx" % (out, name), opset_version=opset, do_constant_folding=fold,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
        onnx.checker.check_model(onnx.load("%s/%s.onnx" % (out, name)), full_check=True)
        np.save("%s/%s_x.npy" % (out, name), x.numpy().astype(np.float32))
        np.save("%s/%s_y.npy" % (out, name), y.numpy().astype(np.float32))
        print("exported %s (opset %d, constant folding %s)" % (name, opset, fold))


def run(path, xpath, ypath):
    """PyTorch on the weights of an ONNX file snc exported from models/digit_cnn.yaml."""
    torch.set_num_threads(1)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    w = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    m = DigitCNN()
    with torch.no_grad():
        for p in ("conv1", "conv2"):
            getattr(m, p).weight.copy_(w[p + ".weight"])
            getattr(m, p).bias.copy_(w[p + ".bias"])
        for p, q in (("fc1", "fc1"), ("fc2", "fc2"), ("fc3", "logits")):
            getattr(m, p).weight.copy_(w[q + ".weight"])
            getattr(m, p).bias.copy_(w[q + ".bias"])
    m.eval()
    x = torch.from_numpy(np.load(xpath))
    with torch.no_grad():
        y = m(x)
    np.save(ypath, y.numpy().astype(np.float32))
    print("pytorch ran %s on %d samples" % (path, x.shape[0]))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "export":
        export(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        onnx.checker.check_model(onnx.load(sys.argv[2]), full_check=True)
        print("checker: %s is valid" % sys.argv[2])
    else:
        print(__doc__)
        sys.exit(2)
