#!/usr/bin/env bash
# The data pipeline benchmark (not a test): single-thread images/s of decode + augment, vgg-data against
# torchvision + PIL on the same real photographs, interleaved run by run so machine load hits both alike.
#   scripts/bench-data.sh [WORK_DIR] [REPEATS] [SECONDS]     (defaults /tmp/vgg4j-bench, 3, 8)
# Inputs are made here, outside git: 300 JPEGs (500x375 / 375x500, quality 90) cut from the colour photographs
# of Debian's python3-skimage (taken from the installed package, or from the .deb without installing it), and
# shards packed from them. Results: one line per run, then medians and ratios (copy into docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/vgg4j-bench}
REPEATS=${2:-3}
SECONDS_PER_RUN=${3:-8}
PY=/usr/bin/python3
mkdir -p "$WORK"

SK=/usr/lib/python3/dist-packages/skimage/data
if [ ! -f "$SK/coffee.png" ]; then
  SK="$WORK/skimage-deb/usr/lib/python3/dist-packages/skimage/data"
  if [ ! -f "$SK/coffee.png" ]; then
    (cd "$WORK" && apt-get download python3-skimage >/dev/null && dpkg -x python3-skimage_*.deb "$WORK/skimage-deb")
  fi
fi
[ -d "$WORK/jpg" ] || $PY scripts/make_bench_images.py "$SK" "$WORK/jpg" 300

# offline first (the usual case); online once on a fresh machine, where the dependency plugin is not yet local
# (one reactor build: vgg-data's class path then names vgg-core/target/classes, nothing needs installing; each module
# writes the file in turn, vgg-data last)
mvn -o -q -pl vgg-data -am compile dependency:build-classpath -Dmdep.outputFile="$WORK/cp.txt" >/dev/null \
  || mvn -q -pl vgg-data -am compile dependency:build-classpath -Dmdep.outputFile="$WORK/cp.txt" >/dev/null
CP="vgg-data/target/classes:$(cat "$WORK/cp.txt")"
TOOL="java -Xmx1g -cp $CP org.vgg4j.data.DataTool"
if [ ! -d "$WORK/jpg-folder" ]; then  # pack needs class folders: one class, linked files
  mkdir -p "$WORK/jpg-folder/all" && ln -sf "$WORK"/jpg/*.jpg "$WORK/jpg-folder/all/"
fi
[ -f "$WORK/shards-jpg/train-000000.tar" ] || $TOOL pack "$WORK/jpg-folder" "$WORK/shards-jpg" --format jpg --max-side 512
[ -f "$WORK/shards-ppm/train-000000.tar" ] || $TOOL pack "$WORK/jpg-folder" "$WORK/shards-ppm" --format ppm --max-side 512
[ -f "$WORK/shards-jpg256/train-000000.tar" ] || $TOOL pack "$WORK/jpg-folder" "$WORK/shards-jpg256" --format jpg --max-side 256

OUT="$WORK/results.txt"
: > "$OUT"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); cores: $(nproc)" | tee -a "$OUT"
echo "java: $(java -version 2>&1 | head -1); $($PY -c 'import torch, torchvision, PIL; print("torch", torch.__version__, "torchvision", torchvision.__version__, "Pillow", PIL.__version__)')" | tee -a "$OUT"
ERR="$WORK/stderr.log"
: > "$ERR"
run() { # label, command...  (stderr, i.e. logging, goes to $ERR; a failed run stops the script loudly)
  local label=$1; shift
  if ! "$@" --seconds "$SECONDS_PER_RUN" --repeat 1 2>>"$ERR" | sed "s/^/$label | /" | tee -a "$OUT"; then
    echo "bench-data.sh: '$label' failed; the end of $ERR:" >&2
    tail -n 20 "$ERR" >&2
    exit 1
  fi
}
for rep in $(seq 1 "$REPEATS"); do
  echo "--- repeat $rep, $(uptime | sed 's/.*load/load/')" | tee -a "$OUT"
  run "peer  S256   jpg-folder " $PY scripts/bench_data_peer_torch.py "$WORK/jpg" --s 256
  run "java  S256   jpg-folder " $TOOL bench "$WORK/jpg" --s 256
  run "java  S256   shards-jpg " $TOOL bench "$WORK/shards-jpg" --shards --s 256
  run "java  S256   shards-jpg256" $TOOL bench "$WORK/shards-jpg256" --shards --s 256
  run "java  S256   shards-ppm " $TOOL bench "$WORK/shards-ppm" --shards --s 256
  run "peer  S256-512 jpg-folder" $PY scripts/bench_data_peer_torch.py "$WORK/jpg" --smin 256 --smax 512
  run "java  S256-512 jpg-folder" $TOOL bench "$WORK/jpg" --smin 256 --smax 512
  run "java  S256-512 shards-ppm" $TOOL bench "$WORK/shards-ppm" --shards --smin 256 --smax 512
  run "peer  decode-only        " $PY scripts/bench_data_peer_torch.py "$WORK/jpg" --decode-only
  run "java  decode-only        " $TOOL bench "$WORK/jpg" --decode-only
done
$PY - "$OUT" <<'PYEOF'
import re, statistics, sys
rates = {}
for line in open(sys.argv[1]):
    m = re.match(r"(.+?) \| .*?: ([0-9.]+) img/cpu-s", line)
    if m:
        rates.setdefault(m.group(1).strip(), []).append(float(m.group(2)))
med = {k: statistics.median(v) for k, v in rates.items()}
print("\nmedians (images per CPU-second = per core, one thread):")
for k, v in med.items():
    print(f"  {k:28s} {v:8.1f}   runs: {', '.join('%.0f' % x for x in rates[k])}")
def ratio(a, b):
    if a in med and b in med:
        print(f"  {a:28s} / {b:28s} = {med[a] / med[b]:.2f}x")
print("ratios:")
for j in ["java  S256   jpg-folder", "java  S256   shards-jpg", "java  S256   shards-jpg256", "java  S256   shards-ppm"]:
    ratio(j, "peer  S256   jpg-folder")
for j in ["java  S256-512 jpg-folder", "java  S256-512 shards-ppm"]:
    ratio(j, "peer  S256-512 jpg-folder")
ratio("java  decode-only", "peer  decode-only")
PYEOF
