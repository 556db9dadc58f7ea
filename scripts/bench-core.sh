#!/usr/bin/env bash
# Training-step benchmark of the cpu backend against PyTorch, SIDE BY SIDE in one run (NOT a test).
#
# Builds vgg-core with its test classes, where the benchmarks live (test-compile only; never installs), measures sgemm 2048^3 through the backend (oneDNN's where present, else OpenBLAS; the floor's
# denominator), then for REPEATS rounds runs, for each workload, our TrainStepBench and then the PyTorch peer
# (scripts/bench_peer_torch.py), one process each, alternating, never concurrently. Prints a table of medians over
# the rounds: img/s, ratio, floor, peak RSS. Raw lines go to $OUT/raw.txt.
#
#   scripts/bench-core.sh                       # REPEATS=3 WARMUP=2 STEPS=5 WORKLOADS="W1 W2 W3"
#   REPEATS=1 WORKLOADS=W3 scripts/bench-core.sh
#   PRECISIONS="fp32 bf16" scripts/bench-core.sh   # both sides in each precision (bf16 needs AVX512-BF16)
#   WORKLOADS="D224 D384" scripts/bench-core.sh     # dense evaluation (inference), see below
#   WORKLOADS=F scripts/bench-core.sh               # the Fashion-MNIST acceptance network's step (A_bn x1/4, 32x32,
#                                                   # batch 128, FC 256): TrainStepBench.fashionSpec on both sides,
#                                                   # F_WARMUP=30 F_STEPS=20 (its steps are short: the JIT warms up
#                                                   # over the first ~30; an epoch has 469)
#
# Inference workloads D224 and D384: the paper's dense evaluation of VGG-16 (FC layers as convolutions over the whole
# image, score map averaged), eval mode, batch 4 of 224x224 / 384x384 images on both sides: ours
# org.vgg4j.core.bench.DenseInferenceBench, the peer scripts/bench_dense_peer_torch.py (the same fully convolutional
# network in PyTorch under no_grad). Before the rounds, both sides' "check" runs once (nothing timed): ours writes a
# narrow VGG-16's parameters, input and scores, the peer loads them into its network and must give the same scores
# and classes, else the script stops. Their floor is forward only: GEMM rate / (forward MACs x 2).
#
# Precision (PRECISIONS, default "fp32"): for each one, ours runs the cpu backend in it (TrainStepBench's backend
# cpu-fp32 / cpu-bf16: bf16 operands, f32 accumulation, master weights and update) and the peer the same
# (bench_peer_torch.py's bf16: torch.autocast("cpu", dtype=torch.bfloat16)); the GEMM rate of the floor is measured
# per precision too (the bf16 one through oneDNN's bf16 matmul). Every ratio compares the same precision; the last
# column rates ours against the fastest FP32 peer configuration (what BF16 is for).
#
# floor img/s = measured GEMM GFLOP/s (of the row's precision) / step FLOPs per image, with step FLOPs = 3 x forward MACs x 2 (forward,
# backward-data and backward-filter each cost about the forward's MACs; 2 FLOPs per MAC).
# CPU-s/img = median process CPU seconds (all threads) per step / batch; CPU ratio = peer's / ours (> 1: we use
# less CPU). On a loaded machine it moves less than wall time, but threads that spin-wait count in it.
# The machine is shared: the load average before and after is printed; compare only figures of one run.
#
# The peer at its best: PyTorch on CPUs is normally run with a caching allocator preloaded (glibc's malloc costs it
# hundreds of thousands of page faults per VGG step). PEERS (default "installed tcmalloc jemalloc") lists the peer's
# configurations: as installed, with Debian's libtcmalloc-minimal4 and with libjemalloc2 preloaded (LD_PRELOAD);
# the script installs the two packages when they are missing (apt-get, as root) and stops with the reason when it
# cannot. Each round runs ours, then every peer configuration, one process at a time; every ratio is against the
# FASTEST peer configuration of that workload (the median of its rounds), which the table names. tcmalloc-cl is
# tcmalloc with the model and input in channels_last (NHWC) memory format.
#
# Environment of each side: OURS_ENV (default GLIBC_TUNABLES=glibc.malloc.hugetlb=1) and PEER_ENV (default empty,
# added to every peer configuration).
# The tunable makes glibc (>= 2.35) madvise its large mmaps as transparent huge pages (where THP is 'madvise' or
# 'always'): oneDNN's per-call scratchpads and reorder buffers then fault in 2 MiB pages instead of 4 KiB ones
# (W1: ~450k -> ~55k page faults per step, 0.2-0.5 s less kernel CPU per step; the net gain in wall time was
# within the noise of the loaded machine, see docs/benchmarks.md). It must be set before the JVM starts, which is why it
# is here and not in the library. PyTorch measured slower with it (docs/benchmarks.md), so the peer runs as
# installed; PEER_ENV=GLIBC_TUNABLES=glibc.malloc.hugetlb=1 gives it the same, OURS_ENV= runs ours without.
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${REPEATS:-3}
WARMUP=${WARMUP:-2}
STEPS=${STEPS:-5}
# F's steps are short (~60 ms): the JIT is still compiling during the first few, so F warms up longer and times more
F_WARMUP=${F_WARMUP:-30}
F_STEPS=${F_STEPS:-20}
WORKLOADS=${WORKLOADS:-"W1 W2 W3"}
PRECISIONS=${PRECISIONS:-fp32}
OUT=$(realpath -m "${OUT:-bench-out}")
JAVA_OPTS=${JAVA_OPTS:-"-Xmx128m -XX:+UseSerialGC"}
PYTHON=${PYTHON:-/usr/bin/python3}
OURS_ENV=${OURS_ENV-GLIBC_TUNABLES=glibc.malloc.hugetlb=1}
PEER_ENV=${PEER_ENV-}
PEERS=${PEERS:-"installed tcmalloc jemalloc"}
for p in $PRECISIONS; do
  case "$p" in
    fp32) ;;
    bf16) grep -qw avx512_bf16 /proc/cpuinfo || { echo "bench-core: PRECISIONS has bf16 but this CPU lacks AVX512-BF16 (no avx512_bf16 in /proc/cpuinfo)" >&2; exit 2; } ;;
    *) echo "bench-core: PRECISIONS has '$p'; expected fp32 and/or bf16" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
: > "$OUT/raw.txt"

# the peer's configurations: name -> the library it preloads (none for "installed")
libdir=/usr/lib/$(uname -m)-linux-gnu
peer_lib() {
  case "$1" in
    installed) echo "" ;;
    tcmalloc|tcmalloc-cl) echo "$libdir/libtcmalloc_minimal.so.4" ;;
    jemalloc) echo "$libdir/libjemalloc.so.2" ;;
    *) echo "bench-core: PEERS has '$1'; expected installed, tcmalloc, tcmalloc-cl or jemalloc" >&2; exit 2 ;;
  esac
}
for c in $PEERS; do
  lib=$(peer_lib "$c")
  [ -z "$lib" ] || [ -f "$lib" ] && continue
  pkg=$(case "$c" in tcmalloc*) echo libtcmalloc-minimal4 ;; *) echo libjemalloc2 ;; esac)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $pkg (the peer's $c configuration)" >&2
    apt-get install -y -q "$pkg" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$pkg" >/dev/null; }
  fi
  [ -f "$lib" ] || { echo "bench-core: $lib missing and $pkg could not be installed (run as root with apt, or drop $c from PEERS)" >&2; exit 2; }
done

# offline first (the usual case); online once on a fresh machine, where the dependency plugin is not yet local
mvn -o -q -pl vgg-core -am test-compile || mvn -q -pl vgg-core -am test-compile
mvn -o -q -pl vgg-core dependency:build-classpath -Dmdep.outputFile="$OUT/cp.txt" > /dev/null \
  || mvn -q -pl vgg-core dependency:build-classpath -Dmdep.outputFile="$OUT/cp.txt" > /dev/null
CP="vgg-core/target/test-classes:vgg-core/target/classes:$(cat "$OUT/cp.txt")"

# which program runs a workload on each side: training steps (W*) or dense inference (D*)
ours_main() { case "$1" in D*) echo org.vgg4j.core.bench.DenseInferenceBench ;; *) echo org.vgg4j.core.bench.TrainStepBench ;; esac; }
peer_script() { case "$1" in D*) echo scripts/bench_dense_peer_torch.py ;; *) echo scripts/bench_peer_torch.py ;; esac; }
case " $WORKLOADS " in
  *" D"*)
    rm -rf "$OUT/dense-check"
    java $JAVA_OPTS -cp "$CP" org.vgg4j.core.bench.DenseInferenceBench check "$OUT/dense-check" 2>/dev/null | grep '^CHECK'
    $PYTHON scripts/bench_dense_peer_torch.py check "$OUT/dense-check" \
      || { echo "bench-core: the peer's dense network does not compute what ours does (see above)" >&2; exit 1; } ;;
esac

echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "java:    $(java -version 2>&1 | head -1)  opts: $JAVA_OPTS"
echo "peer:    $($PYTHON -c 'import torch; print("torch", torch.__version__)')"
echo "env:     ours: ${OURS_ENV:-(none)}  peer: ${PEER_ENV:-(none)}, configurations: $PEERS  THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
echo "precisions: $PRECISIONS"

for p in $PRECISIONS; do
  java $JAVA_OPTS -cp "$CP" org.vgg4j.core.bench.TrainStepBench sgemm 0 0 "cpu-$p" 2>/dev/null | grep '^RESULT' \
    | tee -a "$OUT/raw.txt"
done
for r in $(seq 1 "$REPEATS"); do
  for w in $WORKLOADS; do
    wu=$([ "$w" = F ] && echo "$F_WARMUP" || echo "$WARMUP")
    st=$([ "$w" = F ] && echo "$F_STEPS" || echo "$STEPS")
    for p in $PRECISIONS; do
      env $OURS_ENV java $JAVA_OPTS -cp "$CP" "$(ours_main "$w")" "$w" "$wu" "$st" "cpu-$p" \
        2>/dev/null | grep '^RESULT' | sed "s/^RESULT/RESULT side=ours round=$r/" | tee -a "$OUT/raw.txt"
      for c in $PEERS; do
        lib=$(peer_lib "$c")
        fmt=$(case "$c" in *-cl) echo channels_last ;; *) echo nchw ;; esac)
        env $PEER_ENV ${lib:+LD_PRELOAD=$lib} $PYTHON "$(peer_script "$w")" "$w" "$wu" "$st" "$p" "$fmt" \
          | grep '^RESULT' | sed "s/^RESULT/RESULT side=peer config=$c round=$r/" | tee -a "$OUT/raw.txt"
      done
    done
  done
done
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"

$PYTHON - "$OUT/raw.txt" <<'PY'
import statistics, sys
rows = []
for line in open(sys.argv[1]):
    kv = {}
    for t in line.split()[1:]:
        if "=" in t:  # the first of a repeated key wins: "side=ours" comes before a dense workload's "side=224"
            kv.setdefault(*t.split("=", 1))
    rows.append(kv)
prec = lambda r: r.get("precision", "fp32")
sgemm = {prec(r): float(r["gflops"]) for r in rows if r.get("workload") == "sgemm"}
med = lambda rs, k: statistics.median(float(r.get(k, "nan")) for r in rs)
print()
for pr, g in sgemm.items():
    print("GEMM 2048^3 through the backend, %s: %.1f GFLOP/s" % (pr, g))
print("| workload | precision | ours img/s | best peer img/s (configuration) | ratio | every peer configuration img/s "
      "| ours CPU-s/img | best peer CPU-s/img | CPU ratio | floor img/s | our peak RSS MiB | best peer's peak RSS MiB "
      "| ours faults/step | best peer's faults/step | rounds | ratio vs best fp32 peer |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for w in ["W1", "W2", "W3", "F", "D224", "D384"]:
    best_fp32 = None  # img/s of the fastest fp32 peer configuration of this workload
    for pr in ["fp32", "bf16"]:
        ours = [r for r in rows if r.get("side") == "ours" and r["workload"] == w and prec(r) == pr]
        peers = {}
        for r in rows:
            if r.get("side") == "peer" and r["workload"] == w and prec(r) == pr:
                peers.setdefault(r.get("config", "installed"), []).append(r)
        if not ours or not peers:
            continue
        best = max(peers, key=lambda c: med(peers[c], "img_s"))
        peer = peers[best]
        o = med(ours, "img_s")
        p = med(peer, "img_s")
        best_fp32 = p if pr == "fp32" else best_fp32
        macs = float(ours[0]["fwd_macs_per_img"])
        passes = 1 if w.startswith("D") else 3  # inference: the forward only
        floor = sgemm.get(pr, float("nan")) * 1e9 / (passes * macs * 2)
        every = ", ".join("%s %.3f" % (c, med(peers[c], "img_s")) for c in peers)
        vs_fp32 = "%.2f" % (o / best_fp32) if best_fp32 else "-"
        print("| %s | %s | %.3f | %.3f (%s) | %.2f | %s | %.3f | %.3f | %.2f | %.2f | %d | %d | %.0f | %.0f | %d | %s |"
              % (w, pr, o, p, best, o / p, every, med(ours, "cpu_s_per_img"), med(peer, "cpu_s_per_img"),
                 med(peer, "cpu_s_per_img") / med(ours, "cpu_s_per_img"), floor, med(ours, "peak_rss_mib"),
                 med(peer, "peak_rss_mib"), med(ours, "minflt_per_step"), med(peer, "minflt_per_step"), len(ours),
                 vs_fp32))
PY
