#!/usr/bin/python3
"""Peer benchmark (NOT a test): the same float32 training step as org.vgg4j.core.bench.TrainStepBench, in PyTorch.

One step = forward, cross-entropy, backward, SGD (momentum 0.9, weight decay 5e-4), model in training mode
(dropout on). Prints one "RESULT key=value ..." line: median img/s over the timed steps and the peak resident set
(resource.getrusage ru_maxrss) of this process. One workload per process, so peaks do not mix.

    /usr/bin/python3 scripts/bench_peer_torch.py W1|W2|W3|F [warmup=2] [steps=5] [precision=fp32|bf16] [nchw|channels_last]

Precision bf16: forward and loss under torch.autocast("cpu", dtype=torch.bfloat16) (PyTorch's mixed precision on
CPUs: convolutions and linear layers in bf16, fp32 parameters and SGD update; backward outside the context, as
autocast prescribes); the RESULT line says precision=bf16.

W1 torchvision vgg16 3x224x224 batch 4, 1000 classes; W2 vgg11 the same; W3 vgg16's conv stack at 3x32x32
batch 64 with classifier 512-512-512-10 (15,245,130 parameters, as VggSpec.small(D, 32, 10)); F the Fashion-MNIST
acceptance network, vgg11_bn's stack at a quarter width, 3x32x32 batch 128, FC 256-256-10, no dropout (679,882). Run through
scripts/bench-core.sh, which runs ours and this side by side.
"""
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torchvision


def small_vgg16(classes=10):
    # torchvision's VGG-16 feature stack; at 32x32 it ends at 512x1x1, flattened straight into FC 512-512-512-10
    # (torchvision's AdaptiveAvgPool2d(7) would blow 1x1 up to 7x7, so it is replaced by the identity).
    m = torchvision.models.vgg16()
    m.avgpool = nn.Identity()
    m.classifier = nn.Sequential(
        nn.Linear(512, 512), nn.ReLU(True), nn.Dropout(0.5),
        nn.Linear(512, 512), nn.ReLU(True), nn.Dropout(0.5),
        nn.Linear(512, classes))
    return m


def fashion_a_bn():
    # workload F, the Fashion-MNIST acceptance network (TrainStepBench.fashionSpec): configuration A with BatchNorm
    # at a quarter of the paper's width, 3x32x32 input, FC 256-256-10, no dropout (679,882 parameters)
    layers, c = [], 3
    for v in [16, "M", 32, "M", 64, 64, "M", 128, 128, "M", 128, 128, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(True)]
            c = v
    return nn.Sequential(*layers, nn.Flatten(),
                         nn.Linear(128, 256), nn.ReLU(True), nn.Linear(256, 256), nn.ReLU(True), nn.Linear(256, 10))


def run_options(argv):
    """[warmup=2] [steps=5] [precision=fp32|bf16] [nchw|channels_last] after the workload (argv[1]), checked; the
    dense-inference peer shares them."""
    warmup = int(argv[2]) if len(argv) > 2 else 2
    steps = int(argv[3]) if len(argv) > 3 else 5
    precision = argv[4] if len(argv) > 4 else "fp32"
    if precision not in ("fp32", "bf16"):
        raise SystemExit("precision must be fp32 or bf16, got " + precision)
    fmt = argv[5] if len(argv) > 5 else "nchw"
    if fmt not in ("nchw", "channels_last"):
        raise SystemExit("memory format must be nchw or channels_last, got " + fmt)
    return warmup, steps, precision, fmt


def in_format(model, x, fmt):
    """The model and input in the memory format: channels_last keeps activations NHWC through oneDNN (mkldnn)."""
    if fmt == "channels_last":
        return model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    return model, x


def main():
    what = sys.argv[1]
    warmup, steps, precision, fmt = run_options(sys.argv)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    if what == "W1":
        model, batch, side, classes = torchvision.models.vgg16(), 4, 224, 1000
    elif what == "W2":
        model, batch, side, classes = torchvision.models.vgg11(), 4, 224, 1000
    elif what == "W3":
        model, batch, side, classes = small_vgg16(10), 64, 32, 10
    elif what == "F":
        model, batch, side, classes = fashion_a_bn(), 128, 32, 10
    else:
        raise SystemExit("workload must be W1, W2, W3 or F, got " + what)
    params = sum(p.numel() for p in model.parameters())
    if what == "W3" and params != 15245130:
        raise SystemExit("W3 must have 15,245,130 parameters, has %d" % params)
    if what == "F" and params != 679882:
        raise SystemExit("F must have 679,882 parameters, has %d" % params)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(batch, 3, side, side) * 2 - 1
    model, x = in_format(model, x, fmt)
    y = torch.randint(0, classes, (batch,))
    loss_fn = nn.CrossEntropyLoss()
    times = []
    cpus = []  # process CPU seconds per step (all threads): robust-er than wall time on a shared machine
    loss = None
    sys_s = []  # kernel CPU seconds per step (page faults of fresh mappings, thread wake-ups)
    faults = []  # minor page faults per step (each a fresh 4 KiB page, or a 2 MiB one under THP)
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        c0 = time.process_time()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        opt.zero_grad(set_to_none=False)
        if precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = loss_fn(model(x), y)
        else:
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        dc = time.process_time() - c0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        if s >= warmup:
            times.append(dt)
            cpus.append(dc)
            sys_s.append(r1.ru_stime - r0.ru_stime)
            faults.append(r1.ru_minflt - r0.ru_minflt)
    median = statistics.median(times)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print("RESULT workload=%s backend=torch-%s precision=%s format=%s threads=%d batch=%d params=%d median_step_s=%.4f img_s=%.4f "
          "cpu_s_per_img=%.4f sys_s_per_step=%.2f minflt_per_step=%.0f peak_rss_mib=%d loss=%.5f steps=%s"
          % (what, torch.__version__, precision, fmt, torch.get_num_threads(), batch, params, median, batch / median,
             statistics.median(cpus) / batch, statistics.median(sys_s), statistics.median(faults), peak_mib, loss.item(),
             [round(t, 3) for t in times]))


if __name__ == "__main__":
    main()
