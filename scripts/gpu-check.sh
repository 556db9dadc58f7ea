#!/usr/bin/env bash
# gpu-check.sh -- on a machine with an NVIDIA GPU: builds the kernels for the card (if nvcc is here), runs vgg-cuda's
# test suite on the real device, then benchmarks
# VGG-16 training (224x224, batch 64; FP32, TF32, BF16) against torchvision's vgg16 with cuDNN on the same card,
# printing img/s, the ratio, and each kernel's TFLOP/s beside the card's GEMM rate measured with PyTorch (cuBLAS).
#
#   scripts/gpu-check.sh [BUNDLE_DIR]      BUNDLE_DIR defaults to the bundle this script sits in
#
# The bundle comes from scripts/make-gpu-bundle.sh (a jlinked JRE, our jars, JCuda): no JDK, Maven or network is
# needed here. PyTorch + torchvision with CUDA are needed only for the peer numbers (skipped, with a note, if absent).
# Results go to BUNDLE_DIR/results/<timestamp>/ (junit reports, raw benchmark lines, summary.md).
# Exit status: 0 suite passed, 1 suite failed, 2 cannot run here (the message says why).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bundle=$(cd "${1:-$here/..}" && pwd)
fail() { echo "gpu-check: cannot run: $*" >&2; exit 2; }
[ $# -le 1 ] || { echo "usage: $0 [BUNDLE_DIR]" >&2; exit 2; }

command -v nvidia-smi >/dev/null 2>&1 || fail "nvidia-smi not found: no NVIDIA driver on this machine (needs an NVIDIA GPU and driver >= 580)"
gpus=$(nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader 2>/dev/null) || fail "nvidia-smi failed: no usable NVIDIA GPU"
[ -n "$gpus" ] || fail "nvidia-smi lists no GPU"
echo "GPU(s): $gpus"
drv=$(echo "$gpus" | head -1 | cut -d, -f2 | tr -d ' ')
cc=$(echo "$gpus" | head -1 | cut -d, -f3 | tr -d ' .')

java=$bundle/runtime/bin/java
[ -x "$java" ] || fail "bundle incomplete: $java missing (make the bundle with scripts/make-gpu-bundle.sh on a build machine)"
for j in vgg-core vgg-cuda jcuda slf4j-api junit-platform-console-standalone; do
    ls "$bundle"/lib/$j-*.jar >/dev/null 2>&1 || fail "bundle incomplete: lib/$j-*.jar missing"
done
out=$bundle/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"

# Build: where this machine has nvcc, compile cubins for exactly this card (sm_$cc) with the local toolkit; they
# come first on the class path, so JCudaDriver loads them instead of the bundle's nvcc-13 cubins/PTX -- which also
# lifts the r580 driver requirement when the local toolkit is older.
local_kernels=""
if command -v nvcc >/dev/null 2>&1 && [ -d "$bundle/cuda-src" ]; then
    kdir="$out/kernels-local/org/vgg4j/cuda/kernels"
    mkdir -p "$kdir"
    echo "== 0. building kernels for sm_$cc with $(nvcc --version | tail -1)"
    ok=1
    for f in "$bundle"/cuda-src/*.cu; do
        nvcc -std=c++17 -O3 -gencode "arch=compute_$cc,code=sm_$cc" -cubin -I"$bundle/cuda-src" "$f" \
            -o "$kdir/$(basename "$f" .cu).sm_$cc.cubin" || ok=0
    done
    if [ $ok = 1 ]; then local_kernels="$out/kernels-local"; else echo "local kernel build failed: using the bundle's"; fi
fi
if [ -z "$local_kernels" ]; then
    [ "${drv%%.*}" -ge 580 ] 2>/dev/null || fail "driver $drv is older than r580: the bundle's kernels were built by nvcc 13 and need a CUDA 13 driver (or put an nvcc on the PATH to build them here)"
fi
cp=${local_kernels:+$local_kernels:}$(ls "$bundle"/lib/*.jar | tr '\n' ':')

echo "== 1. vgg-cuda suite on the GPU (parity with the reference backend)"
# the negative tests still run on the emulated device (skipped with a reason where this machine's libc cannot load it)
emu="$bundle/lib/native/libvggcudaemu-test.so"
"$java" -Xmx8g -Dvgg4j.cuda.test.driver=jcuda -Dvgg4j.cuda.emulator.library="$emu" -cp "$cp" \
    org.junit.platform.console.ConsoleLauncher execute --class-path "$cp" --select-package org.vgg4j.cuda \
    --details=tree --reports-dir="$out/junit" 2>&1 | tee "$out/suite.txt"
suite=${PIPESTATUS[0]}

echo "== 2. VGG-16 training, batch 64, 224x224: ours"
: > "$out/bench.txt"
for m in fp32 tf32 bf16; do
    extra=""
    [ "$m" != bf16 ] && extra="--kernels"
    "$java" -Xmx8g -cp "$cp" org.vgg4j.cuda.tools.GpuBenchmark --math "$m" --batch 64 --size 224 --steps 10 $extra \
        2>&1 | tee -a "$out/bench.txt"
done

echo "== 3. the peer: torchvision vgg16 + cuDNN"
if python3 -c "import torch, torchvision, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    python3 "$bundle/scripts/torch_vgg16_bench.py" --batch 64 --steps 10 2>&1 | tee "$out/torch.txt"
else
    echo "PyTorch with CUDA not importable: peer skipped" | tee "$out/torch.txt"
fi

{
    echo "# gpu-check $(date -u +%Y-%m-%dT%H:%MZ)"
    echo; echo "GPU: $gpus"; echo
    echo "| precision | VGG4J img/s | torchvision+cuDNN img/s | ratio |"
    echo "|---|---|---|---|"
    for m in FP32 TF32 BF16; do
        ours=$(grep "^RESULT vgg16_train math=$m " "$out/bench.txt" | sed 's/.*img_per_s=\([0-9.]*\).*/\1/')
        peer=$(grep "^RESULT torch_vgg16_train precision=$(echo $m | tr A-Z a-z) " "$out/torch.txt" | sed 's/.*img_per_s=\([0-9.]*\).*/\1/')
        ratio=$(awk -v a="${ours:-0}" -v b="${peer:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }')
        echo "| $m | ${ours:--} | ${peer:--} | $ratio |"
    done
    echo; echo "Card GEMM rate (PyTorch/cuBLAS):"; grep "^GEMM" "$out/torch.txt" | sed 's/^/    /'
    echo; echo "Our kernels:"; grep "^KERNEL" "$out/bench.txt" | sed 's/^/    /'
    echo; echo "Suite exit status: $suite"
} > "$out/summary.md"
cat "$out/summary.md"
[ "$suite" -eq 0 ] && exit 0 || exit 1
