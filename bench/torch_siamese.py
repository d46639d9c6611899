#!/usr/bin/env python3
"""The seed network of models/siamese.yaml in PyTorch: the peer of `snrun train` in bench/train_bench.sh.

    /usr/bin/python3 bench/torch_siamese.py --threads 2 --epochs 25 --seed 1

Same architecture, losses, optimizer, batch size and data sizes as the YAML (both switches on: weight
sharing and aux loss). Data: the bundled MNIST IDX files (data/mnist, or --data DIR), 2x2 average pooling
to 14x14, 1000 training pairs from the training pool and 1000 test pairs from the test pool, standardised
with the training set's mean and std. The pairs are drawn with numpy, so they are not the same pairs as
snrun's (same sizes, same distribution).

Prints machine-readable lines:
    seconds 6.71          training steps only (shuffle + forward + backward + Adam), time.perf_counter
    accuracy 0.931        test accuracy of the comparison after the last epoch (eval mode)
plus `threads`, `epochs`, `steps`, `final_train_loss` (mean step loss of the last epoch), `setup_seconds`
(data loading and model build), `import_seconds` (importing torch) and `eval_seconds` (the evaluation
after every epoch, as `snrun train` does it: the test set every epoch, the training set as --eval-train
says, default after the last epoch; eval mode, no gradients, the whole set in one batch).
"""
T_START = __import__("time").perf_counter()
import argparse
import gzip
import os
import sys
import time

import numpy as np

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit("torch_siamese.py: PyTorch is not installed (python3-torch; tools/deps.sh --extras installs it)")
T_IMPORT = time.perf_counter()

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "mnist")

# models/siamese.yaml
LR = 0.005
BATCH = 100
TRAIN_PAIRS = 1000
TEST_PAIRS = 1000
DROPOUT = 0.3


def read_idx(path):
    """An IDX file (gzip or plain) as a numpy array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    off = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) - off != count:
        sys.exit(f"{path}: {len(raw) - off} data bytes, header says {count}")
    return np.frombuffer(raw, dtype=np.uint8, offset=off).reshape(dims)


def load_pool(data_dir, prefix):
    def find(kind):
        for name in (f"{prefix}-{kind}.gz", f"{prefix}-{kind}"):
            p = os.path.join(data_dir, name)
            if os.path.exists(p):
                return p
        sys.exit(f"{data_dir}: no {prefix}-{kind}[.gz]")

    images = read_idx(find("images-idx3-ubyte")).astype(np.float32)
    labels = read_idx(find("labels-idx1-ubyte")).astype(np.int64)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        sys.exit(f"{data_dir}: {prefix} images {images.shape} do not match labels {labels.shape}")
    # 2x2 average pooling: 28x28 -> 14x14 (0..255 floats, as the course helper)
    pooled = images.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))
    return pooled, labels


def make_pairs(images, labels, n, rng):
    """A random permutation picks 2n distinct images, paired in order; target = class(first) <= class(second)."""
    if images.shape[0] < 2 * n:
        sys.exit(f"pool of {images.shape[0]} images is too small for {n} pairs")
    idx = rng.permutation(images.shape[0])[:2 * n].reshape(n, 2)
    pair = images[idx]                      # [n, 2, 14, 14]
    classes = labels[idx]                   # [n, 2]
    target = (classes[:, 0] <= classes[:, 1]).astype(np.int64)
    return pair, target, classes


class Branch(nn.Module):
    """LeNet-5 for 14x14: conv 3x3 32, dropout, tanh, pool 2, conv 3x3 64, dropout, tanh, pool 2, 256-120-84-10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(256, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        self.drop = nn.Dropout(DROPOUT)

    def forward(self, x):
        x = F.max_pool2d(torch.tanh(self.drop(self.conv1(x))), 2)
        x = F.max_pool2d(torch.tanh(self.drop(self.conv2(x))), 2)
        x = torch.tanh(self.fc1(x.flatten(1)))
        x = torch.tanh(self.fc2(x))
        return self.fc3(x)


class Siamese(nn.Module):
    def __init__(self, sharing=True):
        super().__init__()
        self.branch_a = Branch()
        self.branch_b = self.branch_a if sharing else Branch()
        self.head = nn.Linear(20, 2)

    def forward(self, pair):
        da = self.branch_a(pair[:, 0:1])
        db = self.branch_b(pair[:, 1:2])
        prob_a, prob_b = torch.softmax(da, -1), torch.softmax(db, -1)
        compare = torch.softmax(self.head(torch.cat([prob_a, prob_b], 1)), -1)  # head on the digit distributions
        return compare, prob_a, prob_b


def loss_fn(model, pair, target_1h, ca_1h, cb_1h, aux):
    compare, prob_a, prob_b = model(pair)
    loss = F.binary_cross_entropy(compare, target_1h)
    if aux:
        loss = loss + F.binary_cross_entropy(prob_a, ca_1h) + F.binary_cross_entropy(prob_b, cb_1h)
    return loss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="intra- and inter-op threads (default 2)")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=DATA, help="directory of MNIST-format IDX files (default: bundled)")
    ap.add_argument("--no-aux", action="store_true", help="drop the auxiliary digit losses")
    ap.add_argument("--no-sharing", action="store_true", help="separate parameters for the two branches")
    ap.add_argument("--eval-train", choices=("every", "end", "never"), default="end",
                    help="evaluate the training set after every epoch, the last (default) or never, as snrun train")
    args = ap.parse_args()
    if args.threads < 1 or args.epochs < 1:
        ap.error("--threads and --epochs must be at least 1")

    t_setup = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    train_img, train_lab = load_pool(args.data, "train")
    test_img, test_lab = load_pool(args.data, "t10k")
    tr_pair, tr_target, tr_classes = make_pairs(train_img, train_lab, TRAIN_PAIRS, rng)
    te_pair, te_target, _ = make_pairs(test_img, test_lab, TEST_PAIRS, rng)
    mean, std = float(tr_pair.mean()), float(tr_pair.std())  # population std, as snc
    tr_pair = (tr_pair - mean) / std
    te_pair = (te_pair - mean) / std

    x = torch.from_numpy(np.ascontiguousarray(tr_pair, dtype=np.float32))
    t1h = F.one_hot(torch.from_numpy(tr_target), 2).float()
    ca1h = F.one_hot(torch.from_numpy(tr_classes[:, 0]), 10).float()
    cb1h = F.one_hot(torch.from_numpy(tr_classes[:, 1]), 10).float()
    xt = torch.from_numpy(np.ascontiguousarray(te_pair, dtype=np.float32))
    tt = torch.from_numpy(te_target)

    model = Siamese(sharing=not args.no_sharing)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    aux = not args.no_aux
    setup = time.perf_counter() - t_setup

    # the timed part: training steps only (per-epoch shuffle, forward, backward, Adam)
    def evaluate(xs, targets):
        model.eval()
        with torch.no_grad():
            compare, _, _ = model(xs)
            a = (compare.argmax(1) == targets).float().mean().item()
        model.train()
        return a

    xtr_target = torch.from_numpy(tr_target)
    model.train()
    steps = 0
    loss_sum = 0.0
    seconds = eval_seconds = 0.0
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(TRAIN_PAIRS)
        for s in range(0, TRAIN_PAIRS, BATCH):
            b = perm[s:s + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model, x[b], t1h[b], ca1h[b], cb1h[b], aux)
            loss.backward()
            opt.step()
            steps += 1
            loss_sum += loss.item() * len(b)  # the epoch's mean step loss, as snrun keeps it
        last = loss_sum / TRAIN_PAIRS
        loss_sum = 0.0
        t1 = time.perf_counter()
        seconds += t1 - t0
        if args.eval_train == "every" or (args.eval_train == "end" and epoch == args.epochs - 1):
            evaluate(x, xtr_target)
        acc = evaluate(xt, tt)
        eval_seconds += time.perf_counter() - t1

    print(f"threads {args.threads}")
    print(f"epochs {args.epochs}")
    print(f"steps {steps}")
    print(f"setup_seconds {setup:.3f}")
    print(f"import_seconds {T_IMPORT - T_START:.3f}")
    print(f"eval_seconds {eval_seconds:.3f}")
    print(f"final_train_loss {last:.4f}")
    print(f"seconds {seconds:.3f}")
    print(f"accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
