#!/usr/bin/env python3
"""torch_vgg16_bench.py -- the peer side of scripts/gpu-check.sh's stages e and f: PyTorch (cuDNN, cuBLAS) on the
same card as our kernels, printed in the line format of org.vgg4j.cuda.check.GpuBenchmark so the script can join them.

    torch_vgg16_bench.py layers [--batch 64] [--precisions fp32,tf32,bf16] [--reps 5]
        VGG-16's 13 convs: torch.nn.functional.conv2d forward and aten.convolution_backward for backward-data and
        backward-filter, each in NCHW and channels_last (cudnn.benchmark on); fc6-fc8 as torch.matmul. One line each:
        LAYER impl=torch math=fp32 layer=conv1_1 pass=fwd fmt=nchw ms=... tflops=...
    torch_vgg16_bench.py steps [--batch 64] [--max-batch 512] [--steps 5] [--warmup 2] [--precisions ...] [--probe]
        torchvision vgg16 training steps (SGD momentum 0.9, weight decay 5e-4), default and channels_last, at --batch
        and then doubling batches until one does not fit (those, and every batch with --probe, 3 steps after 1):
        STEP impl=torch math=tf32 fmt=channels_last batch=64 img_per_s=... step_ms=... peak_MiB=...

fp32: TF32 off in cuDNN and cuBLAS; tf32: TF32 on; bf16: bfloat16 tensors (layers) or bf16 autocast (steps).
Times: CUDA events, the median of --reps after a warm-up (layers), the mean over --steps after --warmup (steps).
Is not: a correctness check (stage d and the Java suite are).
"""
import argparse
import time

import torch
import torch.nn.functional as F

CONVS = [("conv1_1", 3, 64, 224), ("conv1_2", 64, 64, 224), ("conv2_1", 64, 128, 112), ("conv2_2", 128, 128, 112),
         ("conv3_1", 128, 256, 56), ("conv3_2", 256, 256, 56), ("conv3_3", 256, 256, 56), ("conv4_1", 256, 512, 28),
         ("conv4_2", 512, 512, 28), ("conv4_3", 512, 512, 28), ("conv5_1", 512, 512, 14), ("conv5_2", 512, 512, 14),
         ("conv5_3", 512, 512, 14)]
FCS = [("fc6", 25088, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 1000)]
FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def set_precision(p):
    tf32 = p == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True


def timed(fn, reps):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(max(1, reps)):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def line(p, layer, pass_, fmt, ms, flops):
    print(f"LAYER impl=torch math={p} layer={layer} pass={pass_} fmt={fmt} ms={ms:.4f} tflops={flops / ms / 1e9:.2f}",
          flush=True)


def layers(a):
    for p in a.precisions.split(","):
        set_precision(p)
        dt = torch.bfloat16 if p == "bf16" else torch.float32
        n = a.batch
        for name, c, k, h in CONVS:
            flops = 2.0 * n * k * c * 9 * h * h
            for fmt, mf in FORMATS.items():
                x = torch.randn(n, c, h, h, device="cuda", dtype=dt).to(memory_format=mf)
                w = torch.randn(k, c, 3, 3, device="cuda", dtype=dt).to(memory_format=mf)
                dy = torch.randn(n, k, h, h, device="cuda", dtype=dt).to(memory_format=mf)

                def bwd(mask):
                    return lambda: torch.ops.aten.convolution_backward(dy, x, w, None, [1, 1], [1, 1], [1, 1], False,
                                                                       [0, 0], 1, mask)
                line(p, name, "fwd", fmt, timed(lambda: F.conv2d(x, w, padding=1), a.reps), flops)
                line(p, name, "bwd_data", fmt, timed(bwd([True, False, False]), a.reps), flops)
                line(p, name, "bwd_filter", fmt, timed(bwd([False, True, False]), a.reps), flops)
                del x, w, dy
        for name, i, o in FCS:
            flops = 2.0 * n * i * o
            x = torch.randn(n, i, device="cuda", dtype=dt)
            w = torch.randn(o, i, device="cuda", dtype=dt)
            dy = torch.randn(n, o, device="cuda", dtype=dt)
            line(p, name, "fwd", "nchw", timed(lambda: torch.matmul(x, w.t()), a.reps), flops)
            line(p, name, "bwd_data", "nchw", timed(lambda: torch.matmul(dy, w), a.reps), flops)
            line(p, name, "bwd_filter", "nchw", timed(lambda: torch.matmul(dy.t(), x), a.reps), flops)
            del x, w, dy
        torch.cuda.empty_cache()


def step_run(p, fmt, batch, steps, warmup):
    import torchvision
    set_precision(p)
    mf = FORMATS[fmt]
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = torchvision.models.vgg16().cuda().train().to(memory_format=mf)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 224, 224, device="cuda").to(memory_format=mf)
    y = torch.randint(0, 1000, (batch,), device="cuda")
    t0 = None
    for s in range(warmup + steps):
        if s == warmup:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=p == "bf16"):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    print(f"STEP impl=torch math={p} fmt={fmt} batch={batch} img_per_s={batch * steps / sec:.2f} "
          f"step_ms={1000 * sec / steps:.1f} peak_MiB={torch.cuda.max_memory_allocated() >> 20}", flush=True)


def steps(a):
    for p in a.precisions.split(","):
        for fmt in FORMATS:
            b = a.batch
            while b <= max(a.batch, a.max_batch):
                probing = a.probe or b > a.batch
                try:
                    step_run(p, fmt, b, min(a.steps, 3) if probing else a.steps, 1 if probing else a.warmup)
                except torch.cuda.OutOfMemoryError:
                    print(f"STEP impl=torch math={p} fmt={fmt} batch={b} does_not_fit", flush=True)
                    break
                finally:
                    torch.cuda.empty_cache()
                b *= 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["layers", "steps"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--max-batch", type=int, default=512)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--precisions", default="fp32,tf32,bf16")
    ap.add_argument("--probe", action="store_true", help="time 3 steps after 1 at every batch (finding the largest)")
    a = ap.parse_args()
    print(f"# torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}",
          flush=True)
    layers(a) if a.mode == "layers" else steps(a)


if __name__ == "__main__":
    main()
