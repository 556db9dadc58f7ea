#!/usr/bin/python3
"""Peer benchmark (NOT a test): dense evaluation of VGG-16 in PyTorch, as org.vgg4j.core.bench.DenseInferenceBench.

The paper's dense evaluation (section 3.2): torchvision's vgg16 feature stack, then the classifier as convolutions
(FC6 as a 7x7 convolution over the 512x7x7 map it was trained on, FC7 and FC8 as 1x1 convolutions, ReLU between
them, dropout gone), the class score map averaged over its pixels. Model in eval mode, forward under
torch.no_grad(). Prints one "RESULT key=value ..." line: median img/s over the timed forwards and the peak resident
set of this process. One workload per process.

    /usr/bin/python3 scripts/bench_dense_peer_torch.py D224|D384 [warmup=2] [steps=5] [precision=fp32|bf16] [nchw|channels_last]
    /usr/bin/python3 scripts/bench_dense_peer_torch.py check DIR

D224: batch 4 of 3x224x224 images (score map 1x1); D384: batch 4 of 3x384x384 (score map 6x6); 1000 classes.
Precision bf16: the forward under torch.autocast("cpu", dtype=torch.bfloat16).

check DIR times nothing: it loads what `DenseInferenceBench check DIR` wrote (a narrow VGG-16's parameters, its
input and its scores), runs the same network built here at that width, and exits non-zero unless the score shapes
and each image's top class match and the scores agree to float32 rounding (see TOLERANCE).
"""
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torchvision
from torchvision.models.vgg import cfgs, make_layers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_peer_torch import in_format, run_options  # noqa: E402  (the training peer's options, shared)

BATCH = 4
TOLERANCE = 1e-4  # |ours - peer| <= TOLERANCE * (1 + |peer|): two float32 summation orders of the same network


def dense_vgg16(width=1.0, hidden=4096, classes=1000, fc6_kernel=7):
    """torchvision's vgg16 features (channels scaled by width) + the classifier as convolutions, keyed as vgg16's."""
    cfg = [v if v == "M" else int(v * width) for v in cfgs["D"]]
    channels = int(512 * width)
    m = nn.Module()
    m.features = make_layers(cfg)
    # Identity where torchvision has Dropout, so the parameter keys stay classifier.0/3/6
    m.classifier = nn.Sequential(
        nn.Conv2d(channels, hidden, fc6_kernel), nn.ReLU(True), nn.Identity(),
        nn.Conv2d(hidden, hidden, 1), nn.ReLU(True), nn.Identity(),
        nn.Conv2d(hidden, classes, 1))
    return m


def forward(m, x):
    return m.classifier(m.features(x)).mean(dim=(2, 3))  # (N, classes): the score map averaged


def check(directory):
    import numpy as np
    m = dense_vgg16(width=0.125, hidden=24, classes=10, fc6_kernel=2)
    flat = np.fromfile(directory + "/params.f32", dtype="<f4")
    state = {}
    at = 0
    for line in open(directory + "/params.txt"):
        key, *dims = line.split()
        shape = [int(d) for d in dims]
        n = int(np.prod(shape))
        state[key] = torch.from_numpy(flat[at:at + n].copy()).reshape(shape)
        at += n
    if at != flat.size:
        raise SystemExit("check: params.txt names %d values, params.f32 holds %d" % (at, flat.size))
    m.load_state_dict(state, strict=True)  # every key and shape must match this network's
    m.eval()
    x = torch.from_numpy(np.fromfile(directory + "/input.f32", dtype="<f4").copy()).reshape(2, 3, 96, 96)
    ours = torch.from_numpy(np.fromfile(directory + "/scores.f32", dtype="<f4").copy())
    with torch.no_grad():
        peer = forward(m, x)
    if ours.numel() != peer.numel():
        raise SystemExit("check: ours has %d scores, the peer %s" % (ours.numel(), tuple(peer.shape)))
    ours = ours.reshape(peer.shape)
    err = ((ours - peer).abs() / (1 + peer.abs())).max().item()
    same_class = torch.equal(ours.argmax(1), peer.argmax(1))
    print("CHECK scores %s, max relative difference %.2e, top classes ours %s peer %s"
          % (tuple(peer.shape), err, ours.argmax(1).tolist(), peer.argmax(1).tolist()))
    if err > TOLERANCE or not same_class:
        raise SystemExit("check: the peer's dense evaluation differs from ours (tolerance %g)" % TOLERANCE)


def main():
    what = sys.argv[1]
    if what == "check":
        check(sys.argv[2])
        return
    warmup, steps, precision, fmt = run_options(sys.argv)
    sides = {"D224": 224, "D384": 384}
    if what not in sides:
        raise SystemExit("workload must be D224, D384 or check, got " + what)
    side = sides[what]
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = dense_vgg16()
    model.eval()
    x = torch.rand(BATCH, 3, side, side) * 2 - 1
    model, x = in_format(model, x, fmt)
    times = []
    cpus = []
    scores = None
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        c0 = time.process_time()
        with torch.no_grad():
            if precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    scores = forward(model, x)
            else:
                scores = forward(model, x)
        dt = time.perf_counter() - t0
        dc = time.process_time() - c0
        if s >= warmup:
            times.append(dt)
            cpus.append(dc)
    median = statistics.median(times)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print("RESULT workload=%s backend=torch-%s precision=%s format=%s threads=%d batch=%d side=%d classes=%d median_step_s=%.4f "
          "img_s=%.4f cpu_s_per_img=%.4f peak_rss_mib=%d steps=%s"
          % (what, torch.__version__, precision, fmt, torch.get_num_threads(), BATCH, side, scores.shape[1], median,
             BATCH / median, statistics.median(cpus) / BATCH, peak_mib, [round(t, 3) for t in times]))


if __name__ == "__main__":
    main()
