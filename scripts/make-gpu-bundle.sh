#!/usr/bin/env bash
# make-gpu-bundle.sh -- builds, in one command, the self-contained bundle that scripts/gpu-check.sh runs on a GPU
# machine (which may have no JDK, no Maven and no network, and takes at most ~60 MB of files).
#
#   scripts/make-gpu-bundle.sh [OUT_DIR]        (default target/gpu-bundle; also writes OUT_DIR.tar.gz)
#
# Contents: runtime/ (a jlinked Java 17 runtime with only the modules the jars need), lib/ (vgg-core, its test
# helpers, vgg-cuda with its PTX + cubins, vgg-cuda's test classes, JCuda with ONLY its driver-API native library,
# SLF4J, the JUnit console launcher), scripts/ (gpu-check.sh, torch_vgg16_bench.py), cuda-src/ (the kernel sources,
# ~60 KB, for a local rebuild on the GPU machine). ND4J and its ~90 MB of natives
# stay behind: parity runs against the pure-Java 'reference' backend.
# Needs: JDK 17 (jlink, jdeps, jar), Maven (offline is enough once ~/.m2 is filled), nvcc (the GPU kernels must be in
# the jar; without nvcc this script stops and says so). Fails if the bundle exceeds 60 MB.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/target/gpu-bundle}
m2=${M2_REPO:-$HOME/.m2/repository}
limit_mb=60
die() { echo "make-gpu-bundle: $*" >&2; exit 1; }

for tool in mvn jlink jdeps jar; do command -v "$tool" >/dev/null || die "$tool not found (a JDK 17 and Maven are needed)"; done
command -v nvcc >/dev/null || die "nvcc not found: the GPU kernels (PTX + cubins) cannot be built, and a bundle without them is useless"

cd "$root"
echo "== building vgg-core and vgg-cuda (tests compiled, not run)"
mvn -o -q -pl vgg-core,vgg-cuda package -DskipTests || mvn -q -pl vgg-core,vgg-cuda package -DskipTests
ver=$(sed -n 's:.*<version>\(.*-SNAPSHOT\)</version>.*:\1:p' pom.xml | head -1)
cuda_jar=vgg-cuda/target/vgg-cuda-$ver.jar
unzip -l "$cuda_jar" | grep -c org/vgg4j/cuda/kernels/MANIFEST >/dev/null || die "$cuda_jar holds no GPU kernels (was nvcc on the PATH?)"

rm -rf "$out" "$out.tar.gz"
mkdir -p "$out/lib" "$out/scripts"
cp vgg-core/target/vgg-core-$ver.jar vgg-core/target/vgg-core-$ver-tests.jar "$cuda_jar" "$out/lib/"
jar cf "$out/lib/vgg-cuda-$ver-tests.jar" -C vgg-cuda/target/test-classes .
# the emulator build with the deliberately broken kernels, for the negative tests (a plain file: System.load needs one)
if [ -f vgg-cuda/target/test-classes/libvggcudaemu-test.so ]; then
    mkdir -p "$out/lib/native" && cp vgg-cuda/target/test-classes/libvggcudaemu-test.so "$out/lib/native/"
fi

jcuda_ver=$(sed -n 's:.*<jcuda.version>\(.*\)</jcuda.version>.*:\1:p' pom.xml)
slf4j_ver=$(sed -n 's:.*<slf4j.version>\(.*\)</slf4j.version>.*:\1:p' pom.xml)
junit_ver=$(sed -n 's:.*<junit.version>\(.*\)</junit.version>.*:\1:p' pom.xml)
console_ver=1.${junit_ver#5.}
need() { [ -f "$1" ] || die "missing $1 (fetch it once with: mvn dependency:get -Dartifact=$2)"; cp "$1" "$out/lib/"; }
need "$m2/org/jcuda/jcuda/$jcuda_ver/jcuda-$jcuda_ver.jar" "org.jcuda:jcuda:$jcuda_ver"
need "$m2/org/slf4j/slf4j-api/$slf4j_ver/slf4j-api-$slf4j_ver.jar" "org.slf4j:slf4j-api:$slf4j_ver"
need "$m2/org/slf4j/slf4j-simple/$slf4j_ver/slf4j-simple-$slf4j_ver.jar" "org.slf4j:slf4j-simple:$slf4j_ver"
need "$m2/org/junit/platform/junit-platform-console-standalone/$console_ver/junit-platform-console-standalone-$console_ver.jar" \
     "org.junit.platform:junit-platform-console-standalone:$console_ver"

# JCuda's natives jar is 26 MB, 24 of them the PTX compiler binding we never use: keep the driver API library only.
natives="$m2/org/jcuda/jcuda-natives/$jcuda_ver/jcuda-natives-$jcuda_ver-linux-x86_64.jar"
[ -f "$natives" ] || die "missing $natives"
tmp=$(mktemp -d)
(cd "$tmp" && unzip -q "$natives" "lib/libJCudaDriver-*")
jar cf "$out/lib/jcuda-natives-$jcuda_ver-linux-x86_64-driver-only.jar" -C "$tmp" lib
rm -rf "$tmp"

echo "== jlinking a Java runtime"
modules=$(jdeps --ignore-missing-deps --print-module-deps --multi-release 17 "$out"/lib/*.jar 2>/dev/null || true)
modules=${modules:-java.base}
jlink --add-modules "$modules,jdk.unsupported,java.management,jdk.zipfs" --strip-debug --no-man-pages --no-header-files \
      --compress=2 --output "$out/runtime"

cp scripts/gpu-check.sh scripts/torch_vgg16_bench.py "$out/scripts/"
# the kernel sources, so gpu-check.sh can build cubins for the card with the GPU machine's own nvcc when it has one
mkdir -p "$out/cuda-src" && cp vgg-cuda/src/main/cuda/*.cu vgg-cuda/src/main/cuda/*.cuh "$out/cuda-src/"
cat > "$out/README.txt" <<TXT
VGG4J GPU bundle, built $(date -u +%Y-%m-%dT%H:%MZ) from $(git rev-parse --short HEAD 2>/dev/null || echo unknown).
Run on a machine with an NVIDIA GPU (driver >= 580, for kernels built by nvcc 13):
    scripts/gpu-check.sh            # suite on the GPU + VGG-16 training benchmark vs torchvision/cuDNN
Java modules in runtime/: $modules,jdk.unsupported,java.management,jdk.zipfs
TXT
size_mb=$(du -sm "$out" | cut -f1)
tar czf "$out.tar.gz" -C "$(dirname "$out")" "$(basename "$out")"
echo "== bundle $out: ${size_mb} MB ($(du -sm "$out.tar.gz" | cut -f1) MB as $out.tar.gz)"
[ "$size_mb" -le "$limit_mb" ] || die "bundle is ${size_mb} MB, over the ${limit_mb} MB a GPU run accepts"
