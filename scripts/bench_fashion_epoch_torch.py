#!/usr/bin/python3
"""Peer benchmark (NOT a test): the Fashion-MNIST acceptance recipe's training epoch in PyTorch, as `vgg train` runs it.

The same network as TrainStepBench's workload F (vgg11_bn's stack at a quarter of the width, 3x32x32, FC 256-256-10,
no dropout: 679,882 parameters), the same data and augmentation as `vgg train --data fashion-mnist --pad 2`: the
28x28 image in a 32x32 canvas, shifted by up to `pad` pixels (what leaves the canvas is cut, the rest is black),
mirrored with probability 1/2, normalised with the training set's pixel mean and standard deviation, the grey value
in all three channels; batch 128 in a shuffled order, SGD with momentum 0.9 and weight decay 5e-4. The data
pipeline is PyTorch at its best on two cores: the whole set in one uint8 tensor, each batch cut and flipped with
tensor ops in the training thread (no DataLoader worker processes, which would take the cores from the step).

    /usr/bin/python3 scripts/bench_fashion_epoch_torch.py [images=60000] [pad=2] [dir=/usr/share/datasets/fashion-mnist] [nchw|channels_last]

Prints one "RESULT key=value ..." line: images per second over the first `images` training images (data included,
validation excluded, as the img/s that `vgg train` writes in metrics.csv), the last batch's loss and the peak RSS.
Run through scripts/bench-fashion-epoch.sh, which runs ours side by side.
"""
import gzip
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_peer_torch import fashion_a_bn  # noqa: E402  (the same network as workload F)


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    images = int(sys.argv[1]) if len(sys.argv) > 1 else 60000
    pad = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    folder = sys.argv[3] if len(sys.argv) > 3 else "/usr/share/datasets/fashion-mnist"
    fmt = sys.argv[4] if len(sys.argv) > 4 else "nchw"
    if fmt not in ("nchw", "channels_last"):
        raise SystemExit("memory format must be nchw or channels_last, got " + fmt)
    memory_format = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    torch.set_num_threads(2)
    torch.manual_seed(1)
    x = torch.from_numpy(idx(os.path.join(folder, "train-images-idx3-ubyte.gz")).copy())  # (60000, 28, 28) uint8
    y = torch.from_numpy(idx(os.path.join(folder, "train-labels-idx1-ubyte.gz")).astype(np.int64))
    images = min(images, x.shape[0])
    mean = x.double().div(255).mean().item()
    std = x.double().div(255).std(unbiased=False).item()
    border = 2 + pad  # 28 + 2 * 2 = 32, and pad more each side for the shift
    canvas = torch.zeros(x.shape[0], 28 + 2 * border, 28 + 2 * border, dtype=torch.uint8)
    canvas[:, border:border + 28, border:border + 28] = x  # (60000, 32 + 2 pad, 32 + 2 pad)
    model = fashion_a_bn().to(memory_format=memory_format)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(x.shape[0])[:images]
    batch = 128
    t0 = time.perf_counter()
    loss = None
    for start in range(0, images, batch):
        idxs = order[start:start + batch]
        n = idxs.shape[0]
        shift = torch.randint(0, 2 * pad + 1, (n, 2))
        flips = torch.rand(n) < 0.5
        crops = torch.empty(n, 32, 32, dtype=torch.uint8)
        for i in range(n):  # (32, 32) windows of the padded canvas
            c = canvas[idxs[i], shift[i, 0]:shift[i, 0] + 32, shift[i, 1]:shift[i, 1] + 32]
            crops[i] = c.flip(1) if flips[i] else c
        inp = ((crops.float() / 255 - mean) / std).unsqueeze(1).expand(n, 3, 32, 32).contiguous(memory_format=memory_format)
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(inp), y[idxs])
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print("RESULT side=peer workload=fashion-epoch backend=torch-%s format=%s threads=%d images=%d seconds=%.2f img_s=%.1f "
          "loss=%.4f peak_rss_mib=%d" % (torch.__version__, fmt, torch.get_num_threads(), images, seconds, images / seconds,
                                         loss.item(), peak_mib))


if __name__ == "__main__":
    main()
