#!/usr/bin/python3
"""The data benchmark's peer: torchvision + PIL (Debian python3-torchvision, Pillow) doing the same work as
vgg-data's bench (DataTool bench): open + decode a JPEG, Resize(S) (S fixed, or drawn from [Smin, Smax]),
RandomCrop(224), RandomHorizontalFlip, ToTensor, Normalize(ImageNet mean/std). One thread (images/s per core).
Usage: bench_data_peer_torch.py DIR [--s 256 | --smin 256 --smax 512] [--seconds 10] [--repeat 3] [--decode-only]"""
import argparse
import os
import random
import time

import torch
from PIL import Image
from torchvision import transforms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--s", type=int, default=256)
    ap.add_argument("--smin", type=int)
    ap.add_argument("--smax", type=int)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--decode-only", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    smin = a.smin or a.s
    smax = a.smax or smin
    files = sorted(os.path.join(a.dir, f) for f in os.listdir(a.dir) if f.endswith(".jpg"))
    tail = transforms.Compose([transforms.RandomCrop(224), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                               transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    resizes = {s: transforms.Resize(s) for s in range(smin, smax + 1)}
    rng = random.Random(1)
    for rep in range(-1, a.repeat):
        t0 = time.perf_counter()
        c0 = time.process_time()  # process CPU time: images per CPU-second is the per-core rate
        deadline = t0 + (min(a.seconds, 5) if rep < 0 else a.seconds)
        done = 0
        i = 0
        while time.perf_counter() < deadline:
            with open(files[i], "rb") as f:
                im = Image.open(f).convert("RGB")
            if not a.decode_only:
                x = tail(resizes[rng.randint(smin, smax)](im))
            done += 1
            i = (i + 1) % len(files)
        el = time.perf_counter() - t0
        cpu = time.process_time() - c0
        if rep >= 0:
            print("torchvision %s S=[%d,%d] run %d: %.1f img/cpu-s, %.1f img/s wall (%d images, %.1f s, %.1f cpu-s)"
                  % ("decode-only" if a.decode_only else "decode+augment", smin, smax, rep, done / cpu, done / el, done,
                     el, cpu))


if __name__ == "__main__":
    main()
