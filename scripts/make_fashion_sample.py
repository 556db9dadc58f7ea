#!/usr/bin/env python3
"""Makes the small Fashion-MNIST sample bundled in vgg-data (the README demo and the tests use it).

Source: Debian's dataset-fashion-mnist (Zalando SE, MIT/Expat licence), /usr/share/datasets/fashion-mnist.
Takes the first PER_CLASS_TRAIN images of each class from the training set and the first PER_CLASS_TEST of
each class from the test set, keeps their original order, and writes IDX files (gzip) with the same format.
Run: python3 scripts/make_fashion_sample.py  (deterministic: same output every time)
"""
import gzip
import struct
import sys

SRC = "/usr/share/datasets/fashion-mnist"
DST = "vgg-data/src/main/resources/org/vgg4j/data/fashion-mnist-sample"
PER_CLASS_TRAIN = 500
PER_CLASS_TEST = 100


def read_idx(path):
    data = gzip.open(path).read()
    magic, count = struct.unpack(">II", data[:8])
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return shape, data[4 + 4 * dims:]


def write_idx(path, magic, shape, payload):
    header = struct.pack(">I", magic) + struct.pack(">" + "I" * len(shape), *shape)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(header + payload)


def subset(images_file, labels_file, per_class, prefix):
    (n, h, w), pixels = read_idx(f"{SRC}/{images_file}")
    (n2,), labels = read_idx(f"{SRC}/{labels_file}")
    assert n == n2
    taken = {c: 0 for c in range(10)}
    keep = []
    for i in range(n):
        c = labels[i]
        if taken[c] < per_class:
            taken[c] += 1
            keep.append(i)
    img = b"".join(pixels[i * h * w:(i + 1) * h * w] for i in keep)
    lab = bytes(labels[i] for i in keep)
    write_idx(f"{DST}/{prefix}-images-idx3-ubyte.gz", 0x803, (len(keep), h, w), img)
    write_idx(f"{DST}/{prefix}-labels-idx1-ubyte.gz", 0x801, (len(keep),), lab)
    print(prefix, len(keep), "images", file=sys.stderr)


subset("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", PER_CLASS_TRAIN, "train")
subset("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", PER_CLASS_TEST, "t10k")
