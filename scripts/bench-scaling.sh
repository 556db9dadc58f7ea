#!/usr/bin/env bash
# bench-scaling.sh -- the 1 -> N GPU speed-up of synchronous data-parallel training (NOT a test), measured with
# `vgg bench --backend cuda --devices N` on a machine with several NVIDIA GPUs, and the model's prediction for it.
#
#   scripts/bench-scaling.sh [N ...]        measure N = 1 and each N given (default: 1 2 4 8, up to the GPU count)
#   scripts/bench-scaling.sh --dry-run [N ...]   print the commands it would run and check its own output parser
#   scripts/bench-scaling.sh --model        print the model's table (org.vgg4j.core.bench.ScalingModel), no GPU needed
#
# Weak scaling, as the paper's 4 GPUs: every GPU gets BATCH_PER_GPU images (default 32), so N GPUs train on
# N * BATCH_PER_GPU images per step; speed-up = img/s with N GPUs / img/s with 1, efficiency = speed-up / N.
# Settings (environment): CONFIG (D), BATCH_PER_GPU (32), STEPS (5), WARMUP (2), GRAD_PRECISION (fp32|bf16|fp16),
# MATH (fp32|tf32|bf16, -Dvgg4j.cuda.math), BUCKET (elements per all-reduce bucket), OVERLAP (true|false), and
# VGG: the command that runs the command line (default: java on the classpath of the built examples module, made
# with Maven; on a GPU machine without Maven, point VGG at e.g. "java -cp 'lib/*' org.vgg4j.train.cli.VggCli").
# Results: a Markdown table on stdout, raw lines in $OUT/raw.txt (OUT defaults to bench-scaling-out).
# Exit status: 0 done, 1 a run failed, 2 cannot run here (the message says why).
set -uo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-D}
BATCH_PER_GPU=${BATCH_PER_GPU:-32}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-2}
GRAD_PRECISION=${GRAD_PRECISION:-fp32}
MATH=${MATH:-fp32}
OUT=$(realpath -m "${OUT:-bench-scaling-out}")
fail() { echo "bench-scaling: cannot run: $*" >&2; exit 2; }

dry=0
model=0
counts=()
for a in "$@"; do
    case "$a" in
        --dry-run) dry=1 ;;
        --model) model=1 ;;
        ''|*[!0-9]*) echo "usage: $0 [--dry-run | --model] [N ...]" >&2; exit 2 ;;
        *) counts+=("$a") ;;
    esac
done

classpath() { # the built examples module's runtime classpath (vgg-train + vgg-cuda + their dependencies)
    # one invocation: the reactor resolves the sibling modules to their freshly built jars (nothing is installed);
    # every module writes the file, examples (last in the reactor) wins
    # (offline first; online once on a fresh machine, where the dependency plugin is not yet local)
    mvn -o -q -DskipTests -pl examples -am package dependency:build-classpath -Dmdep.outputFile="$OUT/cp.txt" \
        >/dev/null || mvn -q -DskipTests -pl examples -am package dependency:build-classpath \
        -Dmdep.outputFile="$OUT/cp.txt" >/dev/null || return 1
    echo "examples/target/classes:$(cat "$OUT/cp.txt")"
}

# img/s out of BenchCommand's line: "VGG D, input 224x224, batch 64, backend cuda x 2: 0.412 s/step, 155.34 img/s, ..."
parse_ips() { sed -n 's/.* s\/step, \([0-9.]*\) img\/s.*/\1/p' | tail -1; }

mkdir -p "$OUT"
if [ $model = 1 ]; then
    # the model lives in vgg-core's test sources (it ships in no jar)
    mvn -o -q -pl vgg-core -am test-compile >/dev/null || mvn -q -pl vgg-core -am test-compile >/dev/null \
        || fail "vgg-core does not build"
    mvn -o -q -pl vgg-core dependency:build-classpath -Dmdep.outputFile="$OUT/core-cp.txt" >/dev/null \
        || mvn -q -pl vgg-core dependency:build-classpath -Dmdep.outputFile="$OUT/core-cp.txt" >/dev/null
    exec java -cp "vgg-core/target/test-classes:vgg-core/target/classes:$(cat "$OUT/core-cp.txt")" \
        org.vgg4j.core.bench.ScalingModel
fi

if [ $dry = 1 ]; then
    sample="VGG D, input 224x224, batch 64, backend cuda x 2: 0.412 s/step, 155.34 img/s, 14.4 GFLOP/s (3 x forward FLOPs)"
    got=$(echo "$sample" | parse_ips)
    [ "$got" = "155.34" ] || { echo "bench-scaling: parser self-check failed: '$got'" >&2; exit 1; }
    gpus=${#counts[@]}
    [ "$gpus" -gt 0 ] || counts=(1 2 4 8)
else
    command -v nvidia-smi >/dev/null 2>&1 || fail "nvidia-smi not found: no NVIDIA driver here (this measures several NVIDIA GPUs; see --model for the prediction)"
    gpus=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | grep -c .) || gpus=0
    [ "$gpus" -ge 2 ] || fail "$gpus NVIDIA GPU(s) visible: a scaling measurement needs at least 2"
    if [ ${#counts[@]} -eq 0 ]; then
        for n in 2 4 8; do [ "$n" -le "$gpus" ] && counts+=("$n"); done
    fi
    for n in "${counts[@]}"; do
        [ "$n" -le "$gpus" ] || fail "--devices $n asked for, but only $gpus GPU(s) are visible"
    done
    echo "GPUs: $(nvidia-smi --query-gpu=name --format=csv,noheader | sort | uniq -c | sed 's/^ *//' | paste -sd';')"
    nvidia-smi topo -m > "$OUT/topology.txt" 2>&1 || true
fi

if [ -z "${VGG:-}" ]; then
    if [ $dry = 1 ]; then
        VGG="java -cp <examples classpath> org.vgg4j.train.cli.VggCli"
    else
        cp=$(classpath) || fail "cannot build the command line with Maven (set VGG to a command that runs org.vgg4j.train.cli.VggCli)"
        VGG="java -cp $cp org.vgg4j.train.cli.VggCli"
    fi
fi
props="-Dvgg4j.cuda.math=$MATH${BUCKET:+ -Dvgg4j.allreduce.bucket=$BUCKET}${OVERLAP:+ -Dvgg4j.allreduce.overlap=$OVERLAP}"
# the system properties go right after "java"
run_cmd() { local n=$1; echo "${VGG/java /java $props } bench --backend cuda --config $CONFIG --devices $n --batch $((n * BATCH_PER_GPU)) --steps $STEPS --warmup $WARMUP --grad-precision $GRAD_PRECISION"; }

all=(1)
for n in "${counts[@]}"; do [ "$n" = 1 ] || all+=("$n"); done
if [ $dry = 1 ]; then
    for n in "${all[@]}"; do run_cmd "$n"; done
    echo "bench-scaling: dry run ok (parser checked; nothing was run)"
    exit 0
fi

: > "$OUT/raw.txt"
declare -A ips
for n in "${all[@]}"; do
    cmd=$(run_cmd "$n")
    echo "== $cmd" | tee -a "$OUT/raw.txt"
    line=$(eval "$cmd" 2>&1 | tee -a "$OUT/raw.txt" | parse_ips)
    [ -n "$line" ] || { echo "bench-scaling: the run with $n GPU(s) printed no img/s (see $OUT/raw.txt)" >&2; exit 1; }
    ips[$n]=$line
done
echo
echo "VGG-$CONFIG, $BATCH_PER_GPU images per GPU, $MATH math, gradients $GRAD_PRECISION, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| GPUs | batch | img/s | speed-up | efficiency |"
echo "|---|---|---|---|---|"
for n in "${all[@]}"; do
    awk -v n="$n" -v b="$((n * BATCH_PER_GPU))" -v x="${ips[$n]}" -v one="${ips[1]}" \
        'BEGIN { printf "| %d | %d | %.2f | %.2f | %.1f %% |\n", n, b, x, x / one, 100 * x / one / n }'
done
