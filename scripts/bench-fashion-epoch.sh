#!/usr/bin/env bash
# The Fashion-MNIST acceptance recipe's training epoch, ours against PyTorch, SIDE BY SIDE in one run (NOT a test).
#
# Ours: `vgg train --data fashion-mnist` with the acceptance recipe (A_bn at width 1/4, 32x32, batch 128, FC 256,
# no dropout, --pad 2) for one epoch over the first IMAGES training images (default all 60,000: a shorter run
# weighs the JIT's warm-up of our Java loops, ~50 steps, more than training does); its img/s is what metrics.csv records
# (data pipeline included, validation excluded). The peer: scripts/bench_fashion_epoch_torch.py, the same network,
# data, augmentation and optimiser in PyTorch with its data pipeline at its best, run as installed, with tcmalloc
# preloaded, and with tcmalloc and the channels_last memory format (PEERS). REPEATS rounds, alternated, one process at a time; prints the medians and the ratio
# against the fastest peer configuration. Needs Debian's dataset-fashion-mnist (installed when missing, as root).
#
#   scripts/bench-fashion-epoch.sh                     # REPEATS=3 IMAGES=60000 DEVICES=1 PEERS="installed tcmalloc tcmalloc-cl"
#   DEVICES=2 scripts/bench-fashion-epoch.sh           # ours as two replicas of one core each (OMP_NUM_THREADS=1)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${REPEATS:-3}
IMAGES=${IMAGES:-60000}
DEVICES=${DEVICES:-1}
PEERS=${PEERS:-"installed tcmalloc tcmalloc-cl"}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=$(realpath -m "${OUT:-bench-out/fashion-epoch}")
DATA=/usr/share/datasets/fashion-mnist
libdir=/usr/lib/$(uname -m)-linux-gnu
need() { # package file
  [ -e "$2" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q "$1" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$1" >/dev/null; }
  fi
  [ -e "$2" ] || { echo "bench-fashion-epoch: $2 missing and $1 could not be installed (run as root with apt)" >&2; exit 2; }
}
need dataset-fashion-mnist "$DATA/train-images-idx3-ubyte.gz"
for c in $PEERS; do
  case "$c" in
    installed) ;;
    tcmalloc|tcmalloc-cl) need libtcmalloc-minimal4 "$libdir/libtcmalloc_minimal.so.4" ;;
    *) echo "bench-fashion-epoch: PEERS has '$c'; expected installed, tcmalloc or tcmalloc-cl" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
: > "$OUT/raw.txt"

# offline first (the usual case); online once on a fresh machine. One reactor build, so that the classpath names
# the reactor's modules (written last by vgg-train) without needing them in the local repository
mvn -o -q -DskipTests -pl vgg-train -am package dependency:build-classpath -Dmdep.outputFile="$OUT/cp.txt" > /dev/null \
  || mvn -q -DskipTests -pl vgg-train -am package dependency:build-classpath -Dmdep.outputFile="$OUT/cp.txt" > /dev/null
# the reactor's own modules from their class folders, never from the local repository
CP="vgg-train/target/classes:vgg-core/target/classes:vgg-data/target/classes:$(tr ':' '\n' < "$OUT/cp.txt" \
  | grep -v '/org/vgg4j/' | paste -sd:)"

echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ours:    vgg train, $DEVICES replica(s); peer: $($PYTHON -c 'import torch; print("torch", torch.__version__)'), $PEERS"
omp=$([ "$DEVICES" -gt 1 ] && echo "OMP_NUM_THREADS=1" || echo "")
for r in $(seq 1 "$REPEATS"); do
  rm -rf "$OUT/run"
  env $omp java -Xmx1g -cp "$CP" org.vgg4j.train.cli.VggCli train --data fashion-mnist --backend cpu \
    --devices "$DEVICES" --epochs 1 --limit "$IMAGES" --batch 128 --lr 0.05 --schedule cosine:100 --width 0.25 \
    --hidden 256 --dropout 0 --pad 2 --seed "$r" --out "$OUT/run" --no-progress > "$OUT/ours.log" 2>&1 \
    || { cat "$OUT/ours.log" >&2; exit 1; }
  awk -F, -v r="$r" -v n="$IMAGES" 'NR == 2 { printf "RESULT side=ours round=%s images=%s seconds=%s img_s=%s\n", r, n, $7, $8 }' \
    "$OUT/run/metrics.csv" | tee -a "$OUT/raw.txt"
  for c in $PEERS; do
    lib=$(case "$c" in tcmalloc*) echo "$libdir/libtcmalloc_minimal.so.4" ;; esac)
    fmt=$(case "$c" in *-cl) echo channels_last ;; *) echo nchw ;; esac)
    env ${lib:+LD_PRELOAD=$lib} $PYTHON scripts/bench_fashion_epoch_torch.py "$IMAGES" 2 "$DATA" "$fmt" \
      | grep '^RESULT' | sed "s/^RESULT side=peer/RESULT side=peer config=$c round=$r/" | tee -a "$OUT/raw.txt"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
$PYTHON - "$OUT/raw.txt" <<'PY'
import statistics, sys
rows = [dict(t.split("=", 1) for t in l.split()[1:] if "=" in t) for l in open(sys.argv[1])]
ours = statistics.median(float(r["img_s"]) for r in rows if r["side"] == "ours")
peers = {}
for r in rows:
    if r["side"] == "peer":
        peers.setdefault(r["config"], []).append(float(r["img_s"]))
best = max(peers, key=lambda c: statistics.median(peers[c]))
p = statistics.median(peers[best])
print("| ours img/s | best peer img/s (configuration) | ratio | every peer configuration img/s | rounds |")
print("|---|---|---|---|---|")
print("| %.1f | %.1f (%s) | **%.2f** | %s | %d |" % (ours, p, best, ours / p,
      ", ".join("%s %.1f" % (c, statistics.median(v)) for c, v in peers.items()), len(peers[best])))
PY
