#!/usr/bin/env python3
"""Golden values for VGG4J's whole-network tests, computed by torchvision (an independent implementation).

What it is: builds narrow VGGs through torchvision's own code path (torchvision.models.vgg.VGG and make_layers),
fills them with seeded weights, runs one float64 forward/backward on a fixed batch and writes, per case, ONE
safetensors file with the weights (torchvision state-dict names), the input, the labels, the logits, the mean
cross-entropy loss and the gradient of every parameter ("grad.<name>"); for BatchNorm also the running statistics
after the training-mode forward ("after.<name>"). It also writes torchvision parameter counts of the full-size
models and a vgg11_bn state_dict interop file. What it is not: part of the build; Java tests only read its output.

Run (Debian's python3-torch 1.13 + torchvision 0.14, ~1 minute, deterministic):
    /usr/bin/python3 scripts/goldens/make_goldens.py [--out vgg-core/src/test/resources/goldens]
Check a file written by VGG4J loads into torchvision with load_state_dict(strict=True) and gives the same logits:
    /usr/bin/python3 scripts/goldens/make_goldens.py --check-java vgg-core/target/interop/vgg11_bn_narrow_from_java.safetensors

The safetensors writer/reader below is our own (Debian has no safetensors package): 8-byte little-endian header
length, JSON header, raw little-endian data.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import vgg as tvvgg

torch.set_num_threads(2)

# Our VggSpec for every narrow case: 10 classes, 32x32 input, width 1/32 (channels 2, 4, 8, 16), hidden 16,
# dropout 0. Width 1/32 keeps each float64 file (weights + gradients) well under 1 MB.
WIDTH = 1.0 / 32
HIDDEN = 16
CLASSES = 10
SIDE = 32
BATCH = 4

ST_DTYPES = {torch.float64: ("F64", "<f8"), torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}
NP_OF = {"F64": "<f8", "F32": "<f4", "I64": "<i8", "F16": "<f2"}


def write_safetensors(path, tensors, metadata=None):
    """tensors: ordered dict name -> torch tensor (F64, F32 or I64). Atomic: temp file, fsync, rename."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        st, np_dtype = ST_DTYPES[t.dtype]
        data = t.numpy().astype(np_dtype).tobytes()
        header[name] = {"dtype": st, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        arr = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=NP_OF[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta


def narrow_cfg(letter):
    """torchvision's cfgs[letter] with every width scaled as VggSpec.channels: max(1, round(c * WIDTH))."""
    return [v if v == "M" else max(1, int(round(v * WIDTH))) for v in tvvgg.cfgs[letter]]


def narrow_vgg(letter, batch_norm, lrn=False):
    """torchvision's VGG over make_layers(...), avgpool replaced by Identity (VGG4J flattens the final map, which
    is 1x1 at 32x32) and a small classifier with the same module indices as torchvision's (0, 3, 6)."""
    features = tvvgg.make_layers(narrow_cfg(letter), batch_norm=batch_norm)
    if lrn:
        # Configuration A-LRN: LRN after the first conv's ReLU (AlexNet's settings, PyTorch's formula).
        mods = list(features.children())
        mods.insert(2, nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
        features = nn.Sequential(*mods)
    model = tvvgg.VGG(features, num_classes=CLASSES, init_weights=False)
    model.avgpool = nn.Identity()
    last = narrow_cfg(letter)[-2]
    flat = last * (SIDE // 32) ** 2
    model.classifier = nn.Sequential(
        nn.Linear(flat, HIDDEN), nn.ReLU(True), nn.Dropout(0.0),
        nn.Linear(HIDDEN, HIDDEN), nn.ReLU(True), nn.Dropout(0.0),
        nn.Linear(HIDDEN, CLASSES))
    return model


def seeded_weights(model, seed):
    """He-scaled normal weights, small random biases; BN with non-trivial gamma, beta and running statistics so
    that every term of the computation is exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g, dtype=torch.float64) * (2.0 / fan_in) ** 0.5)
                m.bias.copy_((torch.rand(m.bias.shape, generator=g, dtype=torch.float64) - 0.5) * 0.2)
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g, dtype=torch.float64))
                m.bias.copy_((torch.rand(c, generator=g, dtype=torch.float64) - 0.5) * 0.4)
                m.running_mean.copy_(torch.randn(c, generator=g, dtype=torch.float64) * 0.1)
                m.running_var.copy_(0.5 + torch.rand(c, generator=g, dtype=torch.float64))


def golden_case(out_dir, case, letter, batch_norm, lrn, seed):
    torch.set_default_dtype(torch.float64)
    model = narrow_vgg(letter, batch_norm, lrn).double()
    seeded_weights(model, seed)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(seed + 1000)
    x = torch.randn((BATCH, 3, SIDE, SIDE), generator=g, dtype=torch.float64)
    labels = torch.randint(0, CLASSES, (BATCH,), generator=g)
    model.train()  # dropout p=0 is the identity; BN uses batch statistics and updates its running ones
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    tensors = dict(state)
    tensors["input"] = x
    tensors["labels"] = labels
    tensors["logits"] = logits.detach()
    tensors["loss"] = loss.detach().reshape(())
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad
    if batch_norm:
        for name, b in model.named_buffers():
            if name.endswith("running_mean") or name.endswith("running_var"):
                tensors["after." + name] = b
    meta = {"case": case, "config": letter + ("-LRN" if lrn else ""), "batch_norm": str(batch_norm).lower(),
            "width": str(WIDTH), "hidden": str(HIDDEN), "classes": str(CLASSES), "input": str(SIDE),
            "seed": str(seed), "torch": torch.__version__, "torchvision": __import__("torchvision").__version__}
    path = os.path.join(out_dir, case + ".safetensors")
    write_safetensors(path, tensors, meta)
    print(f"{path}: {os.path.getsize(path)} bytes, loss {loss.item():.17g}")


def interop_vgg11_bn(out_dir):
    """A torchvision state_dict, as torchvision itself makes it (its own init_weights, float32), after two
    training-mode forwards so that running statistics and num_batches_tracked are not the defaults."""
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(11)
    features = tvvgg.make_layers(narrow_cfg("A"), batch_norm=True)
    model = tvvgg.VGG(features, num_classes=CLASSES, init_weights=True)
    model.avgpool = nn.Identity()
    model.classifier = nn.Sequential(
        nn.Linear(narrow_cfg("A")[-2], HIDDEN), nn.ReLU(True), nn.Dropout(0.0),
        nn.Linear(HIDDEN, HIDDEN), nn.ReLU(True), nn.Dropout(0.0), nn.Linear(HIDDEN, CLASSES))
    for m in model.classifier:
        if isinstance(m, nn.Linear):  # torchvision's Linear init scheme, but std 0.3 (not 0.01) so logits are not ~0
            nn.init.normal_(m.weight, 0, 0.3)
            nn.init.constant_(m.bias, 0.01)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(BATCH, 3, SIDE, SIDE))
    model.eval()
    x = torch.randn(BATCH, 3, SIDE, SIDE)
    with torch.no_grad():
        logits = model(x)
    sd = model.state_dict()
    write_safetensors(os.path.join(out_dir, "vgg11_bn_narrow_state_dict.safetensors"), sd,
                      {"format": "pt", "source": "torchvision state_dict"})
    write_safetensors(os.path.join(out_dir, "vgg11_bn_narrow_io.safetensors"), {"input": x, "logits": logits})
    print("interop files written; keys:", len(sd))
    return model


def check_java(path):
    """Loads a VGG4J-written vgg11_bn narrow checkpoint into torchvision strictly and compares eval logits with the
    committed interop golden (the Java test saves the weights it loaded from the torchvision file)."""
    torch.set_default_dtype(torch.float32)
    tensors, meta = read_safetensors(path)
    features = tvvgg.make_layers(narrow_cfg("A"), batch_norm=True)
    model = tvvgg.VGG(features, num_classes=CLASSES, init_weights=False)
    model.avgpool = nn.Identity()
    model.classifier = nn.Sequential(
        nn.Linear(narrow_cfg("A")[-2], HIDDEN), nn.ReLU(True), nn.Dropout(0.0),
        nn.Linear(HIDDEN, HIDDEN), nn.ReLU(True), nn.Dropout(0.0), nn.Linear(HIDDEN, CLASSES))
    model.load_state_dict(tensors, strict=True)
    model.eval()
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                        "vgg-core/src/test/resources/goldens/vgg11_bn_narrow_io.safetensors")
    io, _ = read_safetensors(here)
    with torch.no_grad():
        logits = model(io["input"])
    err = (logits - io["logits"]).abs().max().item()
    print(f"{path}: load_state_dict(strict=True) OK, metadata {meta}, max |logit difference| {err:.3g}")
    if err > 1e-5:
        sys.exit("logits differ")


def param_counts(out_dir):
    """Trained-parameter counts of torchvision's full-size models (1000 classes, its own VGG class)."""
    counts = {}
    for letter, name in (("A", "vgg11"), ("B", "vgg13"), ("D", "vgg16"), ("E", "vgg19")):
        for bn in (False, True):
            m = tvvgg.VGG(tvvgg.make_layers(tvvgg.cfgs[letter], batch_norm=bn), num_classes=1000, init_weights=False)
            counts[name + ("_bn" if bn else "")] = sum(p.numel() for p in m.parameters())
            del m
    path = os.path.join(out_dir, "torchvision_param_counts.json")
    with open(path, "w") as f:
        json.dump(counts, f, indent=1, sort_keys=True)
        f.write("\n")
    print(path, counts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "vgg-core/src/test/resources/goldens"))
    ap.add_argument("--check-java", metavar="FILE")
    a = ap.parse_args()
    if a.check_java:
        check_java(a.check_java)
        return
    os.makedirs(a.out, exist_ok=True)
    golden_case(a.out, "D_narrow", "D", False, False, seed=16)
    golden_case(a.out, "D_bn_narrow", "D", True, False, seed=17)
    golden_case(a.out, "A_LRN_narrow", "A", False, True, seed=11)
    interop_vgg11_bn(a.out)
    param_counts(a.out)


if __name__ == "__main__":
    main()
