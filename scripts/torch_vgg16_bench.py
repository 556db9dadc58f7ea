#!/usr/bin/env python3
"""torch_vgg16_bench.py -- the peer of scripts/gpu-check.sh: torchvision's vgg16 training (forward, backward,
momentum SGD with weight decay, as the paper) with cuDNN, and the card's GEMM rate (cuBLAS), per precision.

Prints one RESULT line per precision and one GEMM line per precision, for gpu-check.sh to collect:
    RESULT torch_vgg16_train precision=fp32 batch=64 img_per_s=...
    GEMM torch precision=fp32 n=8192 tflops=...
fp32: TF32 disabled everywhere; tf32: TF32 allowed in cuDNN and cuBLAS; bf16: autocast to bfloat16.
Is not: a correctness check (the Java suite is).
"""
import argparse
import time

import torch
import torch.nn.functional as F
import torchvision


def set_precision(p):
    tf32 = p == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def train(precision, batch, steps, warmup):
    set_precision(precision)
    torch.backends.cudnn.benchmark = True
    model = torchvision.models.vgg16().cuda().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 224, 224, device="cuda")
    y = torch.randint(0, 1000, (batch,), device="cuda")
    for s in range(warmup + steps):
        if s == warmup:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    print(f"RESULT torch_vgg16_train precision={precision} batch={batch} img_per_s={batch * steps / sec:.2f} "
          f"step_ms={1000 * sec / steps:.1f}", flush=True)


def gemm(precision, n=8192, reps=10):
    set_precision(precision)
    dt = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(n, n, device="cuda", dtype=dt)
    b = torch.randn(n, n, device="cuda", dtype=dt)
    a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    sec = (time.perf_counter() - t0) / reps
    print(f"GEMM torch precision={precision} n={n} tflops={2 * n ** 3 / sec / 1e12:.1f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--precisions", default="fp32,tf32,bf16")
    a = ap.parse_args()
    print(f"# torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}")
    for p in a.precisions.split(","):
        gemm(p)
        train(p, a.batch, a.steps, a.warmup)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
