#!/usr/bin/env bash
# gpu-check.sh -- vgg-cuda on a real GPU in ONE command (issue 12): every kernel against the CPU reference backend,
# compute-sanitizer, parity with PyTorch, per-layer and per-step timings against cuDNN/cuBLAS, and two replicas
# through the ring all-reduce. Run from the repository root:
#
#   scripts/gpu-check.sh --bundle BUNDLE --out OUT_DIR [--emulated] [--budget SECONDS] [--max-batch N] [--stages LIST]
#                         [--maths LIST]
#
#   BUNDLE    the folder or .tar.gz that scripts/make-gpu-bundle.sh made (vgg-cuda/target/gpu-bundle[.tar.gz]): a
#             jlinked Java runtime, our jars with the PTX and cubins, the check programs; no JDK, Maven or network is
#             needed here. PyTorch + torchvision with CUDA (stages d, e, f) and compute-sanitizer (c) where present.
#   OUT_DIR   where the results go, as flat files, one per stage that ran, each written as its stage runs and closed
#             with a "RESULT: ..." line, so a later failure or timeout loses nothing earlier:
#               a-env.txt  b-suite.txt  c-sanitizer.txt  d-parity.txt  e-layers.md  f-steps.md  g-replicas.txt
#               h-tensorcores.md  summary.md (one row per stage, rewritten as each finishes)
#             A device run returns at most 8 files: all eight stages write 9 (and take longer than one device command
#             may run), so a device session runs a selection (--stages), e.g. a,b,h,e.
#   --emulated   the same script against the emulated device (CI runs it so: scripts/ci-gpu-check-emulated.sh).
#                Stages that need a GPU or PyTorch on one say "not run: emulated"; a, b, c (without the sanitizer)
#                and g run; e and f run our side at toy size to prove the tools, and report no figures.
#   --budget S   seconds for the whole run (default 450: a device command may last 10 minutes); each stage's
#                timeout is its own cap or what is left of the budget, whichever is less.
#   --max-batch N  the largest batch stage f tries (default 512; it doubles from 64 until a batch does not fit;
#                below 128 there is no probe).
#   --maths LIST  the math modes stages e and f time, ours and the peer's, in this order (default bf16,tf32,fp32: the
#                peer's fp32 autotuning is its slowest, so it comes last).
#   --stages LIST  the stages to run, in this order, comma-separated (default a,b,c,g,d,e,f,h: the cheap checks first,
#                the long timings last). Stage a runs first in any case: the others need what it finds (the GPU, the
#                kernels, PyTorch, compute-sanitizer).
#
# Stages:
#   a  environment: nvidia-smi, driver, which cubin/PTX each module loaded, JCuda's native load, tool versions;
#      the bundle's sm_XX cubins are used as they are; nvcc rebuilds kernels only when the card's cubin is missing
#   b  the vgg-cuda suite on the device, each test class in a JVM of its own (a fault that loses the GPU context
#      fails one class, not the rest): on a GPU the classes not tagged "emulator" (every kernel against the CPU
#      reference backend), with --emulated all of them
#   c  org.vgg4j.cuda.check.KernelSweep (every kernel once, small odd shapes) under compute-sanitizer memcheck and
#      racecheck
#   d  VGG-16 logits and one step's gradients from torchvision-format weights vs PyTorch on the same card (fp32:
#      max error <= 1e-4 of each tensor's largest element, same top-5)
#   e  per layer, batch 64: VGG-16's 13 convs (fwd, bwd-data, bwd-filter) and fc6-fc8, ours in fp32/tf32/bf16 vs
#      PyTorch's best of NCHW and channels_last, as a table of times and ratios
#   f  the VGG-16 training step, img/s at batch 64 and at the largest batch that fits, with peak device memory:
#      ours vs torchvision (fp32, TF32, bf16 autocast; default and channels_last: the peer's best)
#   g  two replicas on the one GPU through RingAllReduce: same batch bit for bit equal to one replica; halves
#      equal to each other bit for bit and to the whole batch to float32 rounding
#   h  tensor-core kernels (conv_tc.cu): their test classes on the device (TensorCore*Test, ConvTc*Test, Bf16*Test;
#      stage b leaves them to h when both are selected; --emulated leaves the 100-step Bf16TrainingTest to Maven's
#      suite), then the raw kernels on NHWC bf16 per layer at batch 64 (GpuBenchmark tc-layers: the 13 convs, and
#      fc6-fc8 as 1x1 convolutions) next to the peer's bf16 convs and matmuls (torch_vgg16_bench.py layers
#      --precisions bf16), as a table with ours-tc columns; ~150 s on an H200
# Exit status: 0 every stage that ran passed, 1 a stage failed or timed out, 2 cannot run (the message says why).
set -uo pipefail

usage() { echo "usage: $0 --bundle BUNDLE_DIR|BUNDLE.tar.gz --out OUT_DIR [--emulated] [--budget S] [--max-batch N] [--stages a,b,...] [--maths bf16,...]" >&2; exit 2; }
bundle="" out="" emulated=0 budget=450 max_batch=512 stages=a,b,c,g,d,e,f,h maths=bf16,tf32,fp32
while [ $# -gt 0 ]; do
    case "$1" in
        --bundle) bundle=${2:-}; shift 2 ;;
        --out) out=${2:-}; shift 2 ;;
        --emulated) emulated=1; shift ;;
        --budget) budget=${2:-}; shift 2 ;;
        --max-batch) max_batch=${2:-}; shift 2 ;;
        --maths) maths=${2:-}; shift 2 ;;
        --stages) stages=${2:-}; shift 2 ;;
        *) usage ;;
    esac
done
[ -n "$bundle" ] && [ -n "$out" ] || usage
selected=(a)  # stage a first in any case, then the list in its order, each once
for s in ${stages//,/ }; do
    case "$s" in
        a) ;;
        b|c|d|e|f|g|h) [[ " ${selected[*]} " == *" $s "* ]] || selected+=("$s") ;;
        *) echo "gpu-check: --stages '$stages': '$s' is not a stage (a b c d e f g h)" >&2; exit 2 ;;
    esac
done
is_selected() { [[ " ${selected[*]} " == *" $1 "* ]]; }
cannot() { echo "gpu-check: cannot run: $*" >&2; [ -d "${out:-}" ] && echo "cannot run: $*" >> "$out/summary.md"; exit 2; }
mkdir -p "$out" || cannot "cannot create $out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

# ------------------------------------------------------------------ the bundle
if [ -f "$bundle" ]; then
    tar xzf "$bundle" -C "$work" || cannot "cannot unpack $bundle"
    bundle=$(ls -d "$work"/*/ | head -1)
fi
[ -d "$bundle" ] || cannot "no bundle at $bundle (make it with scripts/make-gpu-bundle.sh on a build machine)"
bundle=$(cd "$bundle" && pwd)
java=$bundle/runtime/bin/java
[ -x "$java" ] || cannot "bundle incomplete: $java missing"
for j in vgg-core vgg-cuda jcuda slf4j-api junit-platform-launcher javacpp; do
    ls "$bundle"/lib/$j-*.jar >/dev/null 2>&1 || cannot "bundle incomplete: lib/$j-*.jar missing"
done
cp=$(ls "$bundle"/lib/*.jar | tr '\n' ':')
emu_lib=$bundle/lib/native/libvggcudaemu-test.so
mode=$([ $emulated = 1 ] && echo emulated || echo gpu)

# ------------------------------------------------------------------ bookkeeping
summary=$out/summary.md
{
    echo "# gpu-check $(date -u +%Y-%m-%dT%H:%MZ) ($mode)"
    echo
    echo "bundle: $(head -1 "$bundle/README.txt" 2>/dev/null)"
    echo
    echo "stages: ${selected[*]}"
    echo
    echo "| stage | result | detail | file |"
    echo "|---|---|---|---|"
} > "$summary"
elapsed() { echo $(( $(date +%s) - start )); }
# limit CAP: the stage's cap, or what is left of the budget (less 5 s to close the files), whichever is less
limit() { local left=$(( budget - $(elapsed) - 5 )); [ "$left" -lt "$1" ] && echo "$left" || echo "$1"; }
begin() { # begin LETTER FILE TITLE
    stage=$1 stage_file=$out/$2
    { echo "# stage $1: $3"; echo "($mode run, started $(date -u +%H:%M:%SZ), $(elapsed) s into it)"; } > "$stage_file"
    echo "== stage $1: $3"
}
finish() { # finish STATUS [DETAIL]: the stage file's last line and the summary's row
    echo "RESULT: $1${2:+ ($2)}" >> "$stage_file"
    echo "| $stage | $1 | ${2:-} | $(basename "$stage_file") |" >> "$summary"
    echo "   stage $stage: $1${2:+ ($2)}"
    [ "$1" = passed ] || [ "${1#not run}" != "$1" ] || failures=$((failures + 1))
}
failures=0
# run_t SECONDS CMD...: runs CMD with a timeout, its output appended to the stage file; returns its status
run_t() {
    local t=$1; shift
    if [ "$t" -le 5 ]; then echo "not started: the run's budget of $budget s is spent" >> "$stage_file"; return 124; fi
    timeout -k 10 "$t" "$@" >> "$stage_file" 2>&1
    local rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo "TIMED OUT after $t s: $*" >> "$stage_file"; fi
    return $rc
}
jopts=(-Xss4m -XX:+UseParallelGC "-Dvgg4j.cuda.emulator.library=$emu_lib")
if [ $emulated = 1 ]; then jopts+=(-Xmx2g); emu_flag=(--emulated); else jopts+=(-Xmx24g); emu_flag=(); fi
jrun() { local t=$1; shift; run_t "$t" "$java" "${jopts[@]}" -cp "$cp" "$@"; }
have_torch=0
have_sanitizer=0

# ------------------------------------------------------------------ a. environment
stage_a() {
begin a a-env.txt "environment"
stage_ok=1
if [ $emulated = 1 ]; then
    { echo "emulated device: no GPU needed"; uname -srm; echo "cores: $(nproc)"; } >> "$stage_file"
else
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        echo "nvidia-smi not found: no NVIDIA driver on this machine (use --emulated to check the script here)" >> "$stage_file"
        finish FAILED "no NVIDIA driver"; cannot "nvidia-smi not found (no NVIDIA driver); --emulated runs without one"
    fi
    run_t 30 nvidia-smi
    gpu=$(nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader 2>/dev/null | head -1)
    echo "GPU: $gpu" >> "$stage_file"
    cc=$(echo "$gpu" | cut -d, -f3 | tr -d ' .')
    drv=$(echo "$gpu" | cut -d, -f2 | tr -d ' ')
    if grep -q "sm_$cc.cubin" "$bundle/kernels.txt" 2>/dev/null; then
        echo "kernels: the bundle's sm_$cc cubins (no rebuild)" >> "$stage_file"
    elif grep -q '\.ptx$' "$bundle/kernels.txt" 2>/dev/null && ! command -v nvcc >/dev/null 2>&1; then
        echo "kernels: no sm_$cc cubin in the bundle and no nvcc here: the driver JIT-compiles the PTX" >> "$stage_file"
    elif command -v nvcc >/dev/null 2>&1; then
        kdir=$work/kernels-local/org/vgg4j/cuda/kernels
        mkdir -p "$kdir"
        echo "kernels: no sm_$cc cubin in the bundle: building them with $(nvcc --version | tail -1)" >> "$stage_file"
        ok=1
        for f in "$bundle"/cuda-src/*.cu; do
            run_t 120 nvcc -std=c++17 -O3 -fmad=false -gencode "arch=compute_$cc,code=sm_$cc" -cubin \
                -I"$bundle/cuda-src" "$f" -o "$kdir/$(basename "$f" .cu).sm_$cc.cubin" || ok=0
        done
        [ $ok = 1 ] && cp="$work/kernels-local:$cp" || { echo "kernel build failed" >> "$stage_file"; stage_ok=0; }
    else
        echo "the bundle holds no GPU kernels (made without nvcc) and there is no nvcc here" >> "$stage_file"
        finish FAILED "no GPU kernels"; cannot "the bundle holds no GPU kernels: make it where nvcc exists"
    fi
    [ "${drv%%.*}" -ge 580 ] 2>/dev/null || echo "WARNING: driver $drv is older than r580; kernels built by nvcc 13 need it" >> "$stage_file"
    if python3 -c "import torch, torchvision, sys; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuDNN', torch.backends.cudnn.version(), 'CUDA', torch.cuda.is_available()); sys.exit(0 if torch.cuda.is_available() else 1)" >> "$stage_file" 2>&1; then
        have_torch=1
    else
        echo "PyTorch with CUDA not importable: stages d, e, f have no peer" >> "$stage_file"
    fi
    if command -v compute-sanitizer >/dev/null 2>&1; then
        have_sanitizer=1; compute-sanitizer --version 2>&1 | tail -1 >> "$stage_file"
    else
        echo "compute-sanitizer not found" >> "$stage_file"
    fi
fi
jrun "$(limit 60)" org.vgg4j.cuda.check.Env "${emu_flag[@]}" || stage_ok=0
[ $stage_ok = 1 ] && finish passed || finish FAILED "see a-env.txt"
}

# ------------------------------------------------------------------ b. the suite
# the test classes of the tensor-core kernels, which stage h runs (stage b too when h is not selected)
tc_classes='\.(TensorCore[A-Za-z]*|Bf16[A-Za-z]*|ConvTc[A-Za-z]*)Test$'
suite_classes() { # the suite's classes for this device (on a GPU, those not tagged emulator)
    if [ $emulated = 1 ]; then select=(); else select=(--exclude-tag emulator); fi
    "$java" "${jopts[@]}" -cp "$cp" org.vgg4j.cuda.check.SuiteRunner "${select[@]}" --list 2>>"$stage_file"
}
run_classes() { # run_classes CLASS...: each in a JVM of its own; sets passed failed skipped bad_classes n_classes
    local props=() c before counts
    [ $emulated = 1 ] || props=(-Dvgg4j.cuda.test.driver=jcuda)
    passed=0 failed=0 skipped=0 bad_classes="" n_classes=$#
    for c in "$@"; do
        echo "-- $c" >> "$stage_file"
        before=$(wc -l < "$stage_file")
        jrun "$(limit 150)" "${props[@]}" org.vgg4j.cuda.check.SuiteRunner --class "$c" || bad_classes="$bad_classes ${c##*.}"
        counts=$(tail -n +"$before" "$stage_file" | grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' | tail -1)
        set -- $counts
        passed=$((passed + ${1:-0})); failed=$((failed + ${3:-0})); skipped=$((skipped + ${5:-0}))
    done
}
stage_b() {
begin b b-suite.txt "the vgg-cuda suite on the $mode device, one JVM per test class"
classes=$(suite_classes)
if is_selected h; then
    echo "(the tensor-core classes are left to stage h: $(echo "$classes" | grep -E "$tc_classes" | sed 's/.*\.//' | tr '\n' ' '))" >> "$stage_file"
    classes=$(echo "$classes" | grep -vE "$tc_classes")
fi
run_classes $classes
detail="$passed passed, $failed failed, $skipped skipped in $n_classes classes"
if [ -z "$classes" ]; then finish FAILED "no test classes found"
elif [ -z "$bad_classes" ]; then finish passed "$detail"
else finish FAILED "$detail; failing:$bad_classes"; fi
}

# ------------------------------------------------------------------ c. every kernel once, under compute-sanitizer
stage_c() {
begin c c-sanitizer.txt "every kernel once on small odd shapes, under compute-sanitizer memcheck and racecheck"
if [ $emulated = 1 ]; then
    echo "compute-sanitizer: not run: emulated (the sweep itself runs on the emulated device)" >> "$stage_file"
    jrun "$(limit 120)" org.vgg4j.cuda.check.KernelSweep --emulated \
        && finish passed "every kernel launched on the emulated device; compute-sanitizer not run: emulated" \
        || finish FAILED "the sweep failed"
elif [ $have_sanitizer = 0 ]; then
    jrun "$(limit 120)" org.vgg4j.cuda.check.KernelSweep
    finish FAILED "compute-sanitizer not found; the sweep alone exited $?"
else
    ok=1
    for tool in memcheck racecheck; do
        echo "-- compute-sanitizer --tool $tool" >> "$stage_file"
        run_t "$(limit 150)" compute-sanitizer --tool "$tool" --error-exitcode 3 --target-processes all \
            "$java" "${jopts[@]}" -cp "$cp" org.vgg4j.cuda.check.KernelSweep || ok=0
    done
    [ $ok = 1 ] && finish passed "memcheck and racecheck: no errors" || finish FAILED "see c-sanitizer.txt"
fi
}

# ------------------------------------------------------------------ g. two replicas through the ring
stage_g() {
begin g g-replicas.txt "two replicas through RingAllReduce (streams, events, pinned staging)"
jrun "$(limit 120)" org.vgg4j.cuda.check.TwoReplicas "${emu_flag[@]}" \
    && finish passed "$(grep -c 'bit for bit equal' "$stage_file") bitwise checks held" || finish FAILED "see g-replicas.txt"
}

# ------------------------------------------------------------------ d. parity with PyTorch
stage_d() {
begin d d-parity.txt "VGG-16 logits and gradients vs PyTorch on the same card (fp32)"
if [ $emulated = 1 ]; then
    finish "not run: emulated" "needs PyTorch on a GPU"
elif [ $have_torch = 0 ]; then
    finish FAILED "PyTorch with CUDA not importable"
else
    if run_t "$(limit 120)" python3 "$bundle/scripts/torch_parity.py" --out "$work/parity.safetensors" --batch 4; then
        jrun "$(limit 150)" org.vgg4j.cuda.check.TorchParity --in "$work/parity.safetensors" --tol 1e-4 \
            && finish passed "$(grep -c '^ok ' "$stage_file") tensors within 1e-4; $(grep 'top-5' "$stage_file")" \
            || finish FAILED "see d-parity.txt"
    else
        finish FAILED "torch_parity.py failed"
    fi
    rm -f "$work/parity.safetensors"
fi
}

# ------------------------------------------------------------------ tables for e and f
layer_table() { # LAYER lines of the stage file -> markdown: ours (impl=ours, and impl=ours-tc: the raw tensor-core
    # kernels) vs the peer's best format, per math/layer/pass; an implementation's columns only where it has rows
    awk '
    /^LAYER / {
        split("", f); for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        k = f["math"] SUBSEP f["layer"] SUBSEP f["pass"]
        if (!(k in seen)) { order[++n] = k; seen[k] = 1 }
        if (f["impl"] == "ours") { om[k] = f["ms"]; ot[k] = f["tflops"]; has_o = 1 }
        else if (f["impl"] == "ours-tc") { tm[k] = f["ms"]; tt[k] = f["tflops"]; has_t = 1 }
        else if (!(k in pm) || f["ms"] + 0 < pm[k] + 0) { pm[k] = f["ms"]; pt[k] = f["tflops"]; pf[k] = f["fmt"] }
    }
    function cell(a, k) { return (k in a) ? a[k] : "-" }
    function ratio(a, k) { return ((k in a) && (k in pm) && pm[k] > 0) ? sprintf("%.2f", a[k] / pm[k]) : "-" }
    END {
        if (!has_o && !has_t) has_o = 1
        h = "| math | layer | pass |"; d = "|---|---|---|"
        if (has_o) { h = h " ours ms | ours TFLOP/s |"; d = d "---|---|" }
        if (has_t) { h = h " ours-tc ms | ours-tc TFLOP/s |"; d = d "---|---|" }
        h = h " peer ms | peer TFLOP/s | peer format |"; d = d "---|---|---|"
        if (has_o) { h = h " ours / peer time |"; d = d "---|" }
        if (has_t) { h = h " ours-tc / peer time |"; d = d "---|" }
        print h; print d
        for (i = 1; i <= n; i++) {
            k = order[i]; split(k, p, SUBSEP)
            row = sprintf("| %s | %s | %s |", p[1], p[2], p[3])
            if (has_o) row = row sprintf(" %s | %s |", cell(om, k), cell(ot, k))
            if (has_t) row = row sprintf(" %s | %s |", cell(tm, k), cell(tt, k))
            row = row sprintf(" %s | %s | %s |", cell(pm, k), cell(pt, k), cell(pf, k))
            if (has_o) row = row " " ratio(om, k) " |"
            if (has_t) row = row " " ratio(tm, k) " |"
            print row
            if ((k in pm) && pm[k] > 0) {
                if (k in om) { so[p[1]] += om[k]; sp[p[1]] += pm[k] }
                if (k in tm) { st[p[1]] += tm[k]; spt[p[1]] += pm[k]; lg[p[1]] += log(tm[k] / pm[k]); nt[p[1]]++ }
            }
        }
        for (m in so) printf "\nAll layers, %s: ours %.2f ms, peer %.2f ms, ratio %.2f\n", m, so[m], sp[m], so[m] / sp[m]
        for (m in st) printf "\nThe %d tensor-core rows, %s: ours-tc %.2f ms, peer %.2f ms on the same rows, ratio %.2f; geometric mean of the per-row time ratios %.2f\n", nt[m], m, st[m], spt[m], st[m] / spt[m], exp(lg[m] / nt[m])
    }' "$1"
}
step_table() { # STEP lines -> markdown: every run, then ours vs the peer's best format at the first and largest batch
    awk '
    /^STEP / && !/does_not_fit/ {
        split("", f); for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        fmt = (f["impl"] == "ours") ? "nchw" : f["fmt"]
        rows[++n] = sprintf("| %s | %s | %s | %s | %s | %s |", f["impl"], f["math"], fmt, f["batch"], f["img_per_s"], f["peak_MiB"])
        m = f["math"]; b = f["batch"] + 0
        if (f["impl"] == "ours") {
            if (!(m in ofirst)) { ofirst[m] = b; oimg[m] = f["img_per_s"] }
            if (b > olarge[m]) { olarge[m] = b; olimg[m] = f["img_per_s"] }
        } else {
            key = m SUBSEP b
            if (f["img_per_s"] + 0 > pbest[key] + 0) { pbest[key] = f["img_per_s"]; pfmt[key] = fmt }
            if (b > plarge[m]) plarge[m] = b
        }
    }
    END {
        print "| impl | math | format | batch | img/s | peak MiB |"; print "|---|---|---|---|---|---|"
        for (i = 1; i <= n; i++) print rows[i]
        print ""; print "| math | batch | ours img/s | peer best img/s (format) | ours / peer | largest batch that fit: ours, peer |"
        print "|---|---|---|---|---|---|"
        for (m in ofirst) {
            key = m SUBSEP ofirst[m]
            r = (key in pbest) && pbest[key] > 0 ? sprintf("%.2f", oimg[m] / pbest[key]) : "-"
            printf "| %s | %d | %s | %s (%s) | %s | %d (%s img/s), %s |\n", m, ofirst[m], oimg[m],
                (key in pbest) ? pbest[key] : "-", (key in pfmt) ? pfmt[key] : "-", r, olarge[m], olimg[m],
                (m in plarge) ? plarge[m] : "-"
        }
    }' "$1"
}

# ------------------------------------------------------------------ e. per-layer timing
stage_e() {
begin e e-layers.md "per layer, batch 64: VGG-16's convs and fc6-fc8, ours vs cuDNN/cuBLAS"
echo '```' >> "$stage_file"
if [ $emulated = 1 ]; then
    jrun "$(limit 90)" org.vgg4j.cuda.check.GpuBenchmark layers --emulated --batch 2 --size 32 --width 0.0625 \
        --reps 1 --maths fp32; rc=$?
    echo '```' >> "$stage_file"; layer_table "$stage_file" >> "$stage_file"
    [ $rc = 0 ] && finish "not run: emulated" "no figures; our tool ran at toy size" || finish FAILED "our tool failed on the emulated device"
else
    jrun "$(limit 150)" org.vgg4j.cuda.check.GpuBenchmark layers --batch 64 --maths "$maths"; rc=$?
    prc=1
    # the peer's fp32 autotuning is the slowest (over 120 s on an H200 on 2026-12-04): --maths puts it last
    [ $have_torch = 1 ] && { run_t "$(limit 200)" python3 "$bundle/scripts/torch_vgg16_bench.py" layers --batch 64 \
        --precisions "$maths"; prc=$?; }
    echo '```' >> "$stage_file"; layer_table "$stage_file" >> "$stage_file"
    [ $rc = 0 ] && [ $prc = 0 ] && finish passed "table in e-layers.md" || finish FAILED "ours exited $rc, the peer $prc"
fi
}

# ------------------------------------------------------------------ f. the training step
stage_f() {
begin f f-steps.md "VGG-16 training step: img/s at batch 64 and the largest batch that fits, peak memory"
echo '```' >> "$stage_file"
if [ $emulated = 1 ]; then
    jrun "$(limit 90)" org.vgg4j.cuda.check.GpuBenchmark steps --emulated --batch 2 --max-batch 2 --size 32 \
        --width 0.0625 --steps 1 --warmup 1 --maths fp32; rc=$?
    echo '```' >> "$stage_file"; step_table "$stage_file" >> "$stage_file"
    [ $rc = 0 ] && finish "not run: emulated" "no figures; our tool ran at toy size" || finish FAILED "our tool failed on the emulated device"
else
    # batch 64 for both first, so the comparison lands even if the budget ends while probing larger batches
    jrun "$(limit 100)" org.vgg4j.cuda.check.GpuBenchmark steps --batch 64 --max-batch 64 --maths "$maths"; rc=$?
    prc=1
    [ $have_torch = 1 ] && { run_t "$(limit 120)" python3 "$bundle/scripts/torch_vgg16_bench.py" steps --batch 64 \
        --max-batch 64 --precisions "$maths"; prc=$?; }
    if [ "$max_batch" -ge 128 ]; then
    echo "-- the largest batch that fits: doubling from 128 up to $max_batch (3 timed steps each)" >> "$stage_file"
    # ours stores fp32 in every math mode (its peak memory is the same for all three): one probe is enough
    jrun "$(limit 120)" org.vgg4j.cuda.check.GpuBenchmark steps --batch 128 --max-batch "$max_batch" --probe --maths fp32 \
        || echo "(our probe ended early: the table shows what fitted before)" >> "$stage_file"
    [ $have_torch = 1 ] && { run_t "$(limit 100)" python3 "$bundle/scripts/torch_vgg16_bench.py" steps --batch 128 \
        --max-batch "$max_batch" --probe --precisions bf16,fp32 || echo "(the peer's probe ended early)" >> "$stage_file"; }
    fi
    echo '```' >> "$stage_file"; step_table "$stage_file" >> "$stage_file"
    [ $rc = 0 ] && [ $prc = 0 ] && finish passed "table in f-steps.md" || finish FAILED "ours exited $rc, the peer $prc"
fi
}

# ------------------------------------------------------------------ h. the tensor-core kernels
stage_h() {
begin h h-tensorcores.md "tensor-core kernels (conv_tc.cu): their tests on the $mode device, per layer vs cuDNN in bf16"
classes=$(suite_classes | grep -E "$tc_classes")
if [ $emulated = 1 ]; then
    # 100 training steps take half a minute or more on the emulated device: Maven's suite runs that class (CI does)
    echo "(Bf16TrainingTest left to the Maven suite on the emulated device)" >> "$stage_file"
    classes=$(echo "$classes" | grep -v '\.Bf16TrainingTest$')
fi
run_classes $classes
tests="$passed passed, $failed failed, $skipped skipped in $n_classes classes"
echo '```' >> "$stage_file"
prc=0
if [ $emulated = 1 ]; then
    jrun "$(limit 90)" org.vgg4j.cuda.check.GpuBenchmark tc-layers --emulated --batch 2 --size 32 --width 0.125 \
        --reps 1; rc=$?
else
    jrun "$(limit 90)" org.vgg4j.cuda.check.GpuBenchmark tc-layers --batch 64; rc=$?
    prc=1
    [ $have_torch = 1 ] && { run_t "$(limit 90)" python3 "$bundle/scripts/torch_vgg16_bench.py" layers --batch 64 \
        --precisions bf16; prc=$?; }
fi
echo '```' >> "$stage_file"; layer_table "$stage_file" >> "$stage_file"
bench=$([ $emulated = 1 ] && echo "tc-layers ran at toy size (no figures: emulated)" || echo "table in h-tensorcores.md")
if [ -z "$classes" ]; then finish FAILED "no tensor-core test classes found"
elif [ -n "$bad_classes" ]; then finish FAILED "$tests; failing:$bad_classes"
elif [ $rc != 0 ] || [ $prc != 0 ]; then finish FAILED "$tests; tc-layers exited $rc, the peer $prc"
else finish passed "$tests; $bench"; fi
}

for s in "${selected[@]}"; do "stage_$s"; done

{ echo; echo "$failures stage(s) failed; $(elapsed) s of the $budget s budget used."; } >> "$summary"
cat "$summary"
if [ $emulated = 1 ]; then
    cat <<'TXT'

On a GPU session (the device tool's `run`: a bash command at the repository root, at most 8 carried ignored paths,
files written under $OUT come back, at most 8) -- first `scripts/make-gpu-bundle.sh` here, then ONE call with a
selection of stages that fits the session's device time, e.g.:
  run(command='bash scripts/gpu-check.sh --bundle vgg-cuda/target/gpu-bundle.tar.gz --out "$OUT" --stages a,b,h,e --budget 300',
      carry=["vgg-cuda/target/gpu-bundle.tar.gz"], timeout_s=400)
TXT
fi
[ $failures -eq 0 ] && exit 0 || exit 1
