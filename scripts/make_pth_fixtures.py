#!/usr/bin/env python3
"""Fixtures for VGG4J's .pth reader (vgg-core io/TorchStateDict), written by real torch.save.

What it is: a few small state dicts saved by torch.save in both of its formats, the zip archive written by
default (<stem>/data.pkl, <stem>/data/N, <stem>/byteorder, <stem>/version) and the legacy sequence of pickles
(_use_new_zipfile_serialization=False), plus the values torch holds for every tensor, written by this script as
a safetensors file (raw little-endian bytes of each tensor as torch has it, under "<fixture>/<key>"), so Java tests
compare element for element. Also hostile files the reader must refuse: a pickle calling os.system, truncated
files, a non-contiguous tensor, an unsupported dtype. What it is not: part of the build; Java tests only read its
output.

Run (Debian's python3-torch 1.13 + python3-torchvision 0.14, a few seconds; the values are deterministic, the
legacy files' storage keys are memory addresses and change from run to run):
    /usr/bin/python3 scripts/make_pth_fixtures.py [--out vgg-core/src/test/resources/pth]
"""
import argparse
import collections
import json
import os
import struct

import torch
import torch.nn as nn
from torchvision.models import vgg as tvvgg

# The narrow vgg11_bn of scripts/goldens/make_goldens.py and CheckpointTest.VGG11_BN_NARROW: 10 classes, 32x32
# input, width 1/32 (channels 2, 4, 8, 16), hidden 16.
CLASSES = 10
HIDDEN = 16
SIDE = 32
NARROW_A = [2, "M", 4, "M", 8, 8, "M", 16, 16, "M", 16, 16, "M"]

ST_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8"}
RAW_VIEW = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def raw_bytes(t):
    """The tensor's values as raw little-endian bytes in its own dtype (bf16 has no numpy type: view as int16)."""
    v = t.detach().contiguous().cpu().view(RAW_VIEW[t.element_size()]).numpy()
    return v.astype(v.dtype.newbyteorder("<")).tobytes()


def write_safetensors(path, tensors):
    """tensors: ordered dict name -> torch tensor. The format: 8-byte LE header length, JSON header, data."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = raw_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def vgg11_bn_narrow():
    """torchvision's own VGG (make_layers + VGG), narrow, after two training-mode forwards so the running
    statistics and num_batches_tracked are not their defaults. Keys: features.0.weight ... classifier.6.bias."""
    torch.manual_seed(14)
    model = tvvgg.VGG(tvvgg.make_layers(NARROW_A, batch_norm=True), num_classes=CLASSES, init_weights=True)
    model.avgpool = nn.Identity()  # our Vgg flattens the final 1x1 map directly (no parameters either way)
    model.classifier = nn.Sequential(
        nn.Linear(16, HIDDEN), nn.ReLU(True), nn.Dropout(0.0),
        nn.Linear(HIDDEN, HIDDEN), nn.ReLU(True), nn.Dropout(0.0), nn.Linear(HIDDEN, CLASSES))
    for m in model.classifier:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.3)
            nn.init.constant_(m.bias, 0.01)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(2, 3, SIDE, SIDE))
    return model.state_dict()


def tiny(dtype):
    """A tiny nn.Sequential with torchvision's key names (features.0.*, classifier.6.*) in {@code dtype}."""
    torch.manual_seed(7)
    features = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1))
    classifier = nn.Sequential(*[nn.Identity() for _ in range(6)], nn.Linear(4, 3))
    model = nn.Module()
    model.features = features
    model.classifier = classifier
    return model.to(dtype).state_dict()


class Pwned:
    """Unpickling this calls os.system (pickled as the global posix.system on Linux)."""

    def __reduce__(self):
        return os.system, ("echo pwned-by-a-state-dict",)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="vgg-core/src/test/resources/pth")
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    expected = collections.OrderedDict()

    def save(name, sd, legacy=False, same_as=None):
        """Saves; the expected values go under "<name>/<key>" unless another fixture holds the same dict."""
        path = os.path.join(out, name)
        torch.save(sd, path, _use_new_zipfile_serialization=not legacy)
        for k, v in sd.items():
            if same_as is None and isinstance(v, torch.Tensor):
                expected[name + "/" + k] = v
        print(f"{path}: {os.path.getsize(path)} bytes, {len(sd)} entries")
        return path

    sd = vgg11_bn_narrow()
    zip_path = save("vgg11_bn_narrow.pth", sd)
    save("vgg11_bn_narrow_legacy.pth", sd, legacy=True, same_as=zip_path)
    save("tiny_f16.pth", tiny(torch.float16))
    bf16_legacy = save("tiny_bf16_legacy.pth", tiny(torch.bfloat16), legacy=True)
    f64_zip = save("tiny_f64.pth", tiny(torch.float64))

    # Tensors that share one storage at different offsets (saved once, viewed twice), and a parameter.
    base = torch.arange(12, dtype=torch.float32) / 8
    shared = collections.OrderedDict([("a", base[2:8].view(2, 3)), ("b", base[8:]),
                                      ("p", nn.Parameter(torch.tensor([1.5, -2.25])))])
    save("shared_storage.pth", shared)

    # Refused: a transposed (non-contiguous) tensor, a complex dtype, a pickle that runs a command.
    torch.save(collections.OrderedDict([("w", torch.arange(6, dtype=torch.float32).view(2, 3).t())]),
               os.path.join(out, "noncontiguous.pth"))
    torch.save(collections.OrderedDict([("z", torch.zeros(2, dtype=torch.complex64))]),
               os.path.join(out, "complex.pth"))
    torch.save(collections.OrderedDict([("w", torch.zeros(2)), ("x", Pwned())]), os.path.join(out, "malicious.pth"))
    torch.save(collections.OrderedDict([("x", Pwned())]), os.path.join(out, "malicious_legacy.pth"),
               _use_new_zipfile_serialization=False)
    # Truncated: a zip cut before its central directory, a legacy file cut inside its last storage.
    for src, dst, cut in ((f64_zip, "truncated.pth", 2 / 3), (bf16_legacy, "truncated_legacy.pth", None)):
        with open(src, "rb") as f:
            data = f.read()
        with open(os.path.join(out, dst), "wb") as f:
            f.write(data[: int(len(data) * cut)] if cut else data[:-3])

    write_safetensors(os.path.join(out, "expected.safetensors"), expected)
    print("expected values:", len(expected), "tensors")


if __name__ == "__main__":
    main()
