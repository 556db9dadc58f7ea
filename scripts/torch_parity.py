#!/usr/bin/env python3
"""torch_parity.py -- PyTorch's half of scripts/gpu-check.sh's stage d (org.vgg4j.cuda.check.TorchParity is ours).

    torch_parity.py --out FILE [--batch 4] [--size 224] [--seed 0]

Builds torchvision's vgg16 with its own (seeded) initialisation, dropout off, in FP32 with TF32 off and
deterministic cuDNN, runs one training-mode forward and backward of the mean cross-entropy on a seeded batch on the
GPU, and writes ONE safetensors file: the state dict (torchvision names), "input", "labels" (int64), "logits" and
"grad.<name>" for every parameter. The writer is our own (8-byte little-endian header length, JSON header, raw
little-endian data), so no safetensors package is needed.
"""
import argparse
import json
import struct

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}


def write_safetensors(path, tensors):
    header, arrays, offset = {}, [], 0
    for name, t in tensors.items():
        st, np_dtype = DTYPES[t.dtype]
        a = t.detach().contiguous().cpu().numpy().astype(np_dtype, copy=False)
        header[name] = {"dtype": st, "shape": list(t.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        arrays.append(a)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for a in arrays:
            a.tofile(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.manual_seed(a.seed)
    model = torchvision.models.vgg16()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    model = model.cuda().train()
    x = torch.randn(a.batch, 3, a.size, a.size, device="cuda")
    labels = torch.randint(0, 1000, (a.batch,), device="cuda")
    logits = model(x)
    F.cross_entropy(logits, labels).backward()
    out = {k: v for k, v in model.state_dict().items()}
    out["input"] = x
    out["labels"] = labels
    out["logits"] = logits
    for k, p in model.named_parameters():
        out["grad." + k] = p.grad
    write_safetensors(a.out, out)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.cuda.get_device_name()}: "
          f"wrote {a.out} ({len(out)} tensors, batch {a.batch}, {a.size}x{a.size})", flush=True)


if __name__ == "__main__":
    main()
