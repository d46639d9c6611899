#!/usr/bin/env python3
"""Golden outputs for tests/test_golden.c, computed by PyTorch (an independent implementation).

Run from the repository root with Debian's python3-torch (PyTorch 1.13):

    /usr/bin/python3 tests/golden/gen.py

It rewrites tests/golden/*.safetensors deterministically (same bytes on every run with the same
PyTorch build). Each case builds, in PyTorch, the same network as one snc model file, sets fixed
parameters and inputs, and records (float32, one thread):

  in.<input>          the inputs (float32 images, int32 labels)
  gen.<param>         [offset, scale]: how the parameter's values are made (see weights() below)
  w.<param>           the parameter values themselves (a cross-check of the C re-creation)
  out.<node>          forward outputs of snc node <node> in evaluation mode
  tout.<node>         the same in training mode (batch norm only)
  loss, term.<loss>   total loss and the unweighted loss terms of the first training forward
  grad.<param>        d loss / d param of the first training step   (grad2.: the second step)
  state1.<param>      batch norm running statistics after the first training forward (state2.)
  adam1.<param>       parameters after the first optimizer step      (adam2., sgd1., sgd2.)
  bound.<param>       (init file) PyTorch's default U(-b, b) bound of each conv/linear parameter

Parameters are not drawn from torch's RNG but from a small counter-based hash that the C test
re-creates bit for bit (value = offset + scale * v, v in [-1, 1) on a 2^-23 grid), so the large
weight tensors need not be stored: the four siamese settings alone hold 360k parameters. Tensors
with more than FULL_MAX elements are stored as a fixed sample of SAMPLE elements (positions in
idx.<base>, shared by w./grad./adam1. of one parameter) plus <key>@stat = [sum, sum|x|, sum x^2,
max|x|] over the whole tensor (accumulated in float64), which the C test recomputes.

Dropout is off in every case (the siamese copy takes its probability from the switch `dropout`,
set to 0): PyTorch's and snc's dropout RNGs differ.

Metadata of each file: model (the YAML path), sets (the --set switches, comma separated),
optimizer, steps, and noise: for every key, the largest |float32 - float64| difference of this
PyTorch computation against the same computation in float64, and the largest |value|, which is
what the tolerances of the C test are measured against (see tests/golden/README.md).
"""
import collections
import copy
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
FULL_MAX = 2048   # tensors up to this many elements are stored whole
SAMPLE = 512      # elements kept of larger tensors
BATCH = 4

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.set_default_dtype(torch.float32)

M64 = (1 << 64) - 1


def fnv1a(s):
    """snc_name_hash (include/snc/rng.h): 64-bit FNV-1a of the UTF-8 bytes."""
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & M64
    return h


def hash_unit(name, n):
    """v_i in [-1, 1) for i < n, exactly representable in float32 (k / 2^23 - 1, k < 2^24):
    z = fnv1a(name) + (i + 1) * 0x9E3779B97F4A7C15 (mod 2^64), then splitmix64's finaliser,
    k = z >> 40. tests/test_golden.c has the same function."""
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(fnv1a(name)) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    k = (z >> np.uint64(40)).astype(np.int64)
    return ((k - (1 << 23)).astype(np.float32) / np.float32(1 << 23)).astype(np.float32)


def weights(name, n, offset, scale):
    """offset + scale * v in float32, rounded once after the product and once after the sum."""
    t = (hash_unit(name, n) * np.float32(scale)).astype(np.float32)
    return (t + np.float32(offset)).astype(np.float32)


def sample_idx(base, n):
    rs = np.random.RandomState(fnv1a(base) & 0x7fffffff)
    return np.sort(rs.choice(n, SAMPLE, replace=False)).astype(np.int32)


# ---------------------------------------------------------------- safetensors writer

def write_safetensors(path, tensors, meta):
    """tensors: ordered {name: np.ndarray float32/int32}; meta: {str: str}."""
    header = {"__metadata__": meta}
    off = 0
    blobs = []
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        dt = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}[a.dtype]
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
    return 8 + len(h) + off


class Golden:
    """Collects the keys of one case: whole tensors or samples with statistics."""

    def __init__(self):
        self.t = collections.OrderedDict()
        self.vals = {}  # key -> full float64 array, for the noise report

    def put(self, key, x, dtype=np.float32):
        a = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
        if dtype == np.int32:
            self.t[key] = a.astype(np.int32)
            return
        a = a.astype(np.float32)
        self.vals[key] = a
        if a.size <= FULL_MAX:
            self.t[key] = a
            return
        base = key.split(".", 1)[1]
        if "idx." + base not in self.t:
            self.t["idx." + base] = sample_idx(base, a.size)
        idx = self.t["idx." + base]
        self.t[key] = a.reshape(-1)[idx]
        d = a.astype(np.float64).reshape(-1)
        self.t[key + "@stat"] = np.array([d.sum(), np.abs(d).sum(), (d * d).sum(), np.abs(d).max()], np.float32)


# ---------------------------------------------------------------- kink checks

class Kinks:
    """Refuses inputs where float32 rounding could flip a discrete choice between snc and PyTorch:
    a max-pool window whose two largest entries are closer than GAP, or a relu/leaky_relu input
    closer than GAP to 0 (GAP is ten times the largest float32 noise of any forward value; otherwise one implementation's gradient would go elsewhere.)"""
    GAP = 1e-5

    def __init__(self):
        self.on = False
        self.worst = float("inf")

    def pool(self, x, k, s, p):
        if not self.on:
            return
        xp = F.pad(x.detach().double(), (p, p, p, p), value=-math.inf)
        u = F.unfold(xp, k, stride=s)  # [B, C*k*k, L]
        B, CK, L = u.shape
        u = u.reshape(B, x.shape[1], k * k, L)
        top = torch.topk(u, 2, dim=2).values
        gap = (top[:, :, 0] - top[:, :, 1]).min().item()
        self.check(gap, "max-pool window")

    def kink(self, x):
        if self.on:
            self.check(x.detach().abs().min().item(), "relu input")

    def check(self, gap, what):
        self.worst = min(self.worst, gap)
        if gap < self.GAP:
            sys.exit(f"gen.py: {what} within {gap:g} of a tie; change the case's seed")


KINKS = Kinks()


def maxpool(x, k, s=None, p=0):
    s = s or k
    KINKS.pool(x, k, s, p)
    return F.max_pool2d(x, k, s, p)


# ---------------------------------------------------------------- models

class Branch(nn.Module):
    """models/siamese.yaml's `branch` network (and models/digit_cnn.yaml's graph)."""

    def __init__(self, p):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(256, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        self.drop = nn.Dropout(p)

    def forward(self, x, rec, pre, names):
        c1 = self.conv1(x)
        m1 = maxpool(torch.tanh(self.drop(c1)), 2)
        c2 = self.conv2(m1)
        m2 = maxpool(torch.tanh(self.drop(c2)), 2)
        f1 = self.fc1(m2.flatten(1))
        f3 = self.fc3(torch.tanh(self.fc2(torch.tanh(f1))))
        for n, v in zip(names, (c1, m1, c2, m2, f1, f3)):
            rec[pre + n] = v
        return f3


SIAMESE_NODES = ("conv1", "maxpool2d_4", "conv2", "maxpool2d_8", "fc1", "fc3")


class Siamese(nn.Module):
    def __init__(self, sharing, aux, p=0.0):
        super().__init__()
        self.sharing, self.aux = sharing, aux
        self.digit_a = Branch(p)
        self.digit_b = self.digit_a if sharing else Branch(p)
        self.head = nn.Linear(20, 2)

    def snc_params(self):
        out = collections.OrderedDict()
        for inst in ("digit_a",) if self.sharing else ("digit_a", "digit_b"):
            for n, t in getattr(self, inst).named_parameters():
                out[f"{inst}.{n}"] = t
        out["head.weight"], out["head.bias"] = self.head.weight, self.head.bias
        return out

    def forward(self, pair, target, classes):
        rec = {}
        first, second = pair[:, 0:1], pair[:, 1:2]
        da = self.digit_a(first, rec, "digit_a.", SIAMESE_NODES)
        db = self.digit_b(second, rec, "digit_b.", SIAMESE_NODES)
        rec["prob_a"] = prob_a = torch.softmax(da, -1)
        rec["prob_b"] = prob_b = torch.softmax(db, -1)
        rec["both"] = both = torch.cat([prob_a, prob_b], 1)  # the head reads the digit distributions
        rec["head"] = h = self.head(both)
        rec["compare"] = compare = torch.softmax(h, -1)
        dt = pair.dtype
        terms = collections.OrderedDict()
        terms["compare_loss"] = nn.BCELoss()(compare, F.one_hot(target.long(), 2).to(dt))
        if self.aux:
            terms["aux_a"] = nn.BCELoss()(prob_a, F.one_hot(classes[:, 0].long(), 10).to(dt))
            terms["aux_b"] = nn.BCELoss()(prob_b, F.one_hot(classes[:, 1].long(), 10).to(dt))
        loss = sum(terms.values())  # snc: add(terms...) in the same order, all weights 1
        return rec, terms, loss


class DigitCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = Branch(0.0)

    def snc_params(self):
        names = {"conv1": "conv1", "conv2": "conv2", "fc1": "fc1", "fc2": "fc2", "fc3": "logits"}
        out = collections.OrderedDict()
        for n, t in self.net.named_parameters():
            layer, kind = n.split(".")
            out[f"{names[layer]}.{kind}"] = t
        return out

    def forward(self, image, label):
        rec = {}
        logits = self.net(image, rec, "", ("conv1", "maxpool2d_3", "conv2", "maxpool2d_6", "fc1", "logits"))
        terms = collections.OrderedDict(ce=nn.CrossEntropyLoss()(logits, label.long()))
        return rec, terms, terms["ce"]


class Zoo(nn.Module):
    """tests/golden/zoo.yaml."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6, eps=0.01)
        self.c2 = nn.Conv2d(6, 8, 3, padding=1)
        self.ap = nn.AvgPool2d(3, stride=2, padding=1)  # count_include_pad=True, PyTorch's default
        self.fc1 = nn.Linear(32, 12, bias=False)
        self.bn2 = nn.BatchNorm1d(12, momentum=0.2)
        self.fc2 = nn.Linear(12, 5)
        self.fc3 = nn.Linear(12, 4)

    def snc_params(self):
        return collections.OrderedDict(self.named_parameters())

    def snc_state(self):
        return collections.OrderedDict((n, b) for n, b in self.named_buffers() if "running" in n)

    def forward(self, image, label, targets):
        r = {}
        r["c1"] = self.c1(image)
        r["bn1"] = self.bn1(r["c1"])
        KINKS.kink(r["bn1"])
        r["r1"] = F.relu(r["bn1"])
        r["c2"] = self.c2(r["r1"])
        KINKS.kink(r["c2"])
        r["lr2"] = F.leaky_relu(r["c2"], 0.1)
        r["ap"] = self.ap(r["lr2"])
        r["mp"] = maxpool(r["lr2"], 3, 2, 1)
        r["el"] = F.elu(r["mp"], alpha=0.7)
        r["sq"] = r["el"] * r["el"]
        r["cat"] = torch.cat([r["ap"], r["sq"]], 1)
        r["col"] = r["cat"][:, :, :, 1]
        r["flat"] = r["col"].flatten(1)
        r["fc1"] = self.fc1(r["flat"])
        r["bn2"] = self.bn2(r["fc1"])
        r["sg"] = torch.sigmoid(r["bn2"])
        r["fc2"] = self.fc2(r["sg"])
        r["lsm"] = F.log_softmax(r["fc2"], -1)
        r["q"] = torch.sigmoid(r["lsm"])
        r["fc3"] = self.fc3(r["sg"])
        t1 = targets[:, 1]
        terms = collections.OrderedDict()
        terms["ce"] = nn.CrossEntropyLoss()(r["fc2"], label.long())
        terms["bl"] = nn.BCEWithLogitsLoss()(r["fc3"], t1)
        terms["bq"] = nn.BCELoss()(r["q"], F.one_hot(label.long(), 5).to(image.dtype))
        loss = terms["ce"] + 0.5 * terms["bl"] + 2.0 * terms["bq"]
        return r, terms, loss


class Head(nn.Module):
    """tests/golden/head.yaml: outer product, triangular constant, mul broadcast, reduce_sum."""

    def __init__(self):
        super().__init__()
        self.fa = nn.Linear(6, 4)
        self.fb = nn.Linear(6, 4)

    def snc_params(self):
        return collections.OrderedDict(self.named_parameters())

    def forward(self, x, target, t4):
        r = {}
        dt = x.dtype
        tri = torch.triu(torch.ones(4, 4, dtype=torch.bool))  # i <= j, as `triangular: upper`
        le = torch.where(tri, torch.tensor(0.99, dtype=torch.float32), torch.tensor(0.01, dtype=torch.float32)).to(dt)
        w = torch.tensor([0.5, -1, 2, 1.5], dtype=torch.float32).to(dt)
        r["fa"] = self.fa(x[:, 0])
        r["fb"] = self.fb(x[:, 1])
        r["pa"] = torch.softmax(r["fa"], -1)
        r["pb"] = torch.softmax(r["fb"], -1)
        r["joint"] = r["pa"][:, :, None] * r["pb"][:, None, :]
        r["masked"] = r["joint"] * le
        r["compare"] = r["masked"].sum((1, 2))
        r["wa"] = w * r["fa"]
        r["rows"] = r["joint"].sum(2)
        r["rk"] = r["masked"].sum(1, keepdim=True)
        r["rkf"] = r["rk"].flatten(1)
        terms = collections.OrderedDict()
        terms["cmp"] = nn.BCELoss()(r["compare"], target.to(dt))
        terms["bl"] = nn.BCEWithLogitsLoss()(r["wa"], t4)
        terms["br"] = nn.BCEWithLogitsLoss()(r["rows"], t4)
        terms["bk"] = nn.BCEWithLogitsLoss()(r["rkf"], t4)
        loss = terms["cmp"] + terms["bl"] + 0.5 * terms["br"] + 2.0 * terms["bk"]
        return r, terms, loss


# ---------------------------------------------------------------- running a case

def set_params(model, gens):
    """Writes the hash-made values into the model's parameters and running statistics."""
    named = dict(model.snc_params())
    if hasattr(model, "snc_state"):
        named.update(model.snc_state())
    with torch.no_grad():
        for name, (off, sc) in gens.items():
            t = named[name]
            t.copy_(torch.from_numpy(weights(name, t.numel(), off, sc)).reshape(t.shape))


def conv_linear_gens(model):
    """Conv and linear parameters: U(-b, b) with PyTorch's default bound b = 1/sqrt(fan_in)."""
    ps = model.snc_params()
    out = collections.OrderedDict()
    for name, t in ps.items():
        w = ps[name.rsplit(".", 1)[0] + ".weight"]  # a bias takes its layer's fan-in
        if w.dim() < 2:
            continue  # batch norm
        fan_in = w.shape[1] * w[0, 0].numel()
        out[name] = (0.0, float(np.float32(1.0 / math.sqrt(fan_in))))
    return out


def run(model, inputs, gens, opt_fn, steps, train_nodes, g, dtype, kinks):
    """Evaluation forward, then `steps` training steps; records every key into g."""
    model = model.to(dtype)
    inputs = [x.to(dtype) if x.is_floating_point() else x for x in inputs]
    set_params(model, gens)
    params = model.snc_params()
    opt = opt_fn(list(params.values()))
    KINKS.on = kinks
    model.eval()
    with torch.no_grad():
        rec, _, _ = model(*inputs)
    for n, v in rec.items():
        g.put("out." + n, v)
    model.train()
    for step in (1, 2)[:steps]:
        opt.zero_grad()
        rec, terms, loss = model(*inputs)
        loss.backward()
        sfx = "" if step == 1 else "2"
        g.put("loss" + sfx, loss)
        if step == 1:
            for n in train_nodes:
                g.put("tout." + n, rec[n])
            for n, v in terms.items():
                g.put("term." + n, v)
        for n, p in params.items():
            g.put(f"grad{sfx}.{n}", p.grad)
        if hasattr(model, "snc_state"):
            for n, b in model.snc_state().items():
                g.put(f"state{step}.{n}", b)
        opt.step()
        kind = "adam" if isinstance(opt, torch.optim.Adam) else "sgd"
        for n, p in params.items():
            g.put(f"{kind}{step}.{n}", p)
    KINKS.on = False


def case(fname, yaml, sets, model_fn, inputs, gens, opt_fn, opt_name, steps=1, train_nodes=()):
    g32, g64 = Golden(), Golden()
    for name, x in inputs.items():
        g32.put("in." + name, x, np.int32 if x.dtype == torch.int32 else np.float32)
    for name, (off, sc) in gens.items():
        g32.put("gen." + name, np.array([off, sc], np.float32))
    model = model_fn()
    for name, (off, sc) in gens.items():
        shape = dict(model.snc_params(), **(model.snc_state() if hasattr(model, "snc_state") else {}))[name].shape
        g32.put("w." + name, weights(name, int(np.prod(shape)), off, sc).reshape(shape))
    run(model, list(inputs.values()), gens, opt_fn, steps, train_nodes, g32, torch.float32, True)
    run(model_fn(), list(inputs.values()), gens, opt_fn, steps, train_nodes, g64, torch.float64, False)
    noise = collections.OrderedDict()
    for k, v in g32.vals.items():
        if k in g64.vals and not k.startswith(("in.", "gen.", "w.")):
            d = np.abs(v.astype(np.float64) - g64.vals[k].astype(np.float64)).max()
            noise[k] = [float("%.3g" % d), float("%.3g" % np.abs(g64.vals[k]).max())]
    meta = {
        "model": yaml,
        "sets": ",".join(f"{k}={v}" for k, v in sets.items()),
        "optimizer": opt_name,
        "steps": str(steps),
        "generator": "tests/golden/gen.py",
        "torch": torch.__version__.split("+")[0],
        "noise": json.dumps(noise, separators=(",", ":")),
    }
    d = opt_fn([torch.zeros(1, requires_grad=True)]).defaults  # PyTorch's optimizer settings
    meta.update(lr=repr(d["lr"]), weight_decay=repr(d["weight_decay"]))
    if opt_name == "adam":
        meta.update(beta1=repr(d["betas"][0]), beta2=repr(d["betas"][1]), eps=repr(d["eps"]))
    else:
        meta.update(momentum=repr(d["momentum"]), dampening=repr(d["dampening"]), nesterov=str(d["nesterov"]))
    size = write_safetensors(os.path.join(HERE, fname), g32.t, meta)
    worst = max(((d / m if m else 0), k) for k, (d, m) in noise.items())
    print(f"{fname}: {size} bytes, {len(g32.t)} tensors; worst float32 noise {worst[0]:.2g} of max|x| ({worst[1]})")
    return size


def siamese_cases():
    total = 0
    torch.manual_seed(6)  # chosen so that no max-pool window is near a tie (Kinks)
    pair = torch.randn(BATCH, 2, 14, 14)
    classes = torch.randint(0, 10, (BATCH, 2), dtype=torch.int32)
    target = (classes[:, 0] <= classes[:, 1]).to(torch.int32)
    inputs = collections.OrderedDict(pair=pair, target=target, classes=classes)
    for ws in (True, False):
        for aux in (True, False):
            sets = collections.OrderedDict(weight_sharing=str(ws).lower(), aux_loss=str(aux).lower(), dropout=0)
            gens = conv_linear_gens(Siamese(ws, aux))
            adam = lambda ps: torch.optim.Adam(ps, lr=0.001)
            total += case(f"siamese_ws{int(ws)}_aux{int(aux)}.safetensors", "tests/golden/siamese.yaml", sets,
                          lambda: Siamese(ws, aux), inputs, gens, adam, "adam")
    return total


def zoo_case():
    torch.manual_seed(2)
    inputs = collections.OrderedDict(
        image=torch.randn(BATCH, 3, 8, 8),
        label=torch.randint(0, 5, (BATCH,), dtype=torch.int32),
        targets=torch.rand(BATCH, 2, 4))
    model = Zoo()
    gens = collections.OrderedDict()
    for name, t in model.snc_params().items():
        if name.startswith("bn"):
            gens[name] = (1.0, 0.25) if name.endswith("weight") else (0.0, 0.2)
    gens.update({k: v for k, v in conv_linear_gens(model).items() if not k.startswith("bn")})
    for name in model.snc_state():
        gens[name] = (1.0, 0.5) if name.endswith("var") else (0.0, 0.3)
    adam = lambda ps: torch.optim.Adam(ps, lr=0.001, betas=(0.8, 0.95), weight_decay=0.01)
    return case("zoo.safetensors", "tests/golden/zoo.yaml", {}, Zoo, inputs, gens, adam, "adam", steps=2,
                train_nodes=("bn1", "bn2"))


def digit_cnn_case():
    torch.manual_seed(3)
    inputs = collections.OrderedDict(
        image=torch.randn(BATCH, 1, 14, 14),
        label=torch.randint(0, 10, (BATCH,), dtype=torch.int32))
    gens = conv_linear_gens(DigitCnn())
    sgd = lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-4)
    return case("digit_cnn_sgd.safetensors", "tests/golden/digit_cnn_sgd.yaml", {}, DigitCnn, inputs, gens, sgd,
                "sgd", steps=2)


def head_case():
    torch.manual_seed(5)
    inputs = collections.OrderedDict(
        x=torch.randn(BATCH, 2, 6),
        target=torch.tensor([1, 0, 1, 1], dtype=torch.int32),
        t4=torch.rand(BATCH, 4))
    gens = conv_linear_gens(Head())
    adam = lambda ps: torch.optim.Adam(ps, lr=0.01)
    return case("head.safetensors", "tests/golden/head.yaml", {}, Head, inputs, gens, adam, "adam", steps=2)


def init_file():
    """PyTorch's default initialisation of models/siamese.yaml's parameters: fresh modules, the bound
    1/sqrt(fan_in) from torch's own fan-in rule and gain (kaiming_uniform with a = sqrt(5) for the
    weight: gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in); U(-1/sqrt(fan_in), ...) for the
    bias), checked against the values a fresh module actually draws."""
    torch.manual_seed(4)
    m = Siamese(True, True)
    t = collections.OrderedDict()
    for name, p in m.snc_params().items():
        layer = m.head if name.startswith("head") else getattr(m.digit_a, name.split(".")[1])
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        if name.endswith("weight"):
            gain = nn.init.calculate_gain("leaky_relu", math.sqrt(5))
            bound = gain * math.sqrt(3.0 / fan_in)
        else:
            bound = 1.0 / math.sqrt(fan_in)
        assert abs(bound - 1.0 / math.sqrt(fan_in)) < 1e-12
        fresh = p.detach().abs().max().item()
        assert fresh <= bound and (p.numel() < 200 or fresh > 0.95 * bound), (name, fresh, bound)
        t["bound." + name] = np.array(bound, np.float32)
    bn = nn.BatchNorm2d(3)
    t["batchnorm"] = np.array([bn.weight[0].item(), bn.bias[0].item(), bn.running_mean[0].item(),
                               bn.running_var[0].item(), bn.eps, bn.momentum], np.float32)
    meta = {"model": "models/siamese.yaml", "generator": "tests/golden/gen.py",
            "torch": torch.__version__.split("+")[0],
            "batchnorm": "weight, bias, running_mean, running_var, eps, momentum of a fresh nn.BatchNorm2d"}
    size = write_safetensors(os.path.join(HERE, "init.safetensors"), t, meta)
    print(f"init.safetensors: {size} bytes")
    return size


def main():
    total = siamese_cases() + zoo_case() + digit_cnn_case() + head_case() + init_file()
    print(f"total {total} bytes; closest max-pool tie / relu input to 0: {KINKS.worst:.3g}")


if __name__ == "__main__":
    main()
