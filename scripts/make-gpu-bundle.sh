#!/usr/bin/env bash
# make-gpu-bundle.sh -- builds the self-contained bundle that scripts/gpu-check.sh runs on a GPU machine (which has
# no JDK, no Maven and no network, and takes at most 64 MiB of files in all, the repository included).
#
#   scripts/make-gpu-bundle.sh [OUT_DIR]        (default vgg-cuda/target/gpu-bundle: an ignored path, so a device run
#                                                names it in its carry list; see docs/cuda.md)
#
# Contents:
#   runtime/   a jlinked Java 17 runtime with only the modules the jars need
#   lib/       the test class path exactly as Maven resolved it for vgg-cuda (-Pgpu-bundle writes it), less what the
#              GPU check never touches: ND4J and its natives (~100 MB; parity runs against the pure-Java 'reference'
#              backend), JavaCPP's natives, OpenBLAS, oneDNN, OpenCL, JNA and ND4J's helper libraries. JCuda's
#              natives are cut to the driver-API library (its 24 MB PTX-compiler binding is never used). JavaCPP's
#              and the CUDA presets' classes stay: Nccl touches them.
#   lib/native/libvggcudaemu-test.so   the emulator with the test kernels (--emulated, and the negative tests)
#   cuda-src/  the kernel sources (~60 KB), only for a rebuild where the bundle lacks the card's cubin
#   kernels.txt the kernel images in vgg-cuda's jar; scripts/ the scripts gpu-check.sh runs
# and OUT_DIR.tar.gz, the same compressed: what a device run carries (gpu-check.sh --bundle takes either).
# Needs: JDK 17 (jlink, jdeps, jar), Maven (offline once ~/.m2 is filled; online otherwise), g++. nvcc for the GPU
# kernels: without it the bundle is made for --emulated only, and says so (gpu-check.sh refuses it on a GPU).
# Prints the sizes and fails above LIMIT_MB (default 48) for the folder or TGZ_LIMIT_MB (default 32) for the archive:
# a device run carries the repository (~6 MiB) and the archive within its 64 MiB.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/vgg-cuda/target/gpu-bundle}
limit_mb=${LIMIT_MB:-48}
tgz_limit_mb=${TGZ_LIMIT_MB:-32}
die() { echo "make-gpu-bundle: $*" >&2; exit 1; }

for tool in mvn jlink jdeps jar; do command -v "$tool" >/dev/null || die "$tool not found (a JDK 17 and Maven are needed)"; done
command -v nvcc >/dev/null || echo "make-gpu-bundle: nvcc not found: the bundle will hold no GPU kernels (good for gpu-check.sh --emulated only)" >&2

cd "$root"
echo "== building vgg-core and vgg-cuda (tests compiled, not run)"
mvn -B -ntp -o -q -pl vgg-core,vgg-cuda package -DskipTests -Pgpu-bundle \
    || mvn -B -ntp -q -pl vgg-core,vgg-cuda package -DskipTests -Pgpu-bundle
ver=$(sed -n 's:.*<version>\(.*-SNAPSHOT\)</version>.*:\1:p' pom.xml | head -1)
cuda_jar=vgg-cuda/target/vgg-cuda-$ver.jar
classpath_file=vgg-cuda/target/bundle-classpath.txt
[ -f "$classpath_file" ] || die "$classpath_file missing (vgg-cuda's -Pgpu-bundle profile writes it)"

rm -rf "$out" "$out.tar.gz"
mkdir -p "$out/lib/native" "$out/scripts" "$out/cuda-src"
jar cf "$out/lib/vgg-cuda-$ver-tests.jar" -C vgg-cuda/target/test-classes .
cp vgg-cuda/target/test-classes/libvggcudaemu-test.so "$out/lib/native/" 2>/dev/null \
    || die "vgg-cuda/target/test-classes/libvggcudaemu-test.so missing (the emulator needs g++)"
dropped=()
IFS=: read -r -a entries < "$classpath_file"
for e in "${entries[@]}"; do
    case "$e" in
        */target/classes) cp "$cuda_jar" "$out/lib/" ;;   # vgg-cuda's own classes: its jar (with the kernels)
        */target/test-classes) ;;                          # packed above as vgg-cuda-tests.jar
        */jcuda-natives-*.jar)
            # the driver-API library only
            tmp=$(mktemp -d)
            (cd "$tmp" && jar xf "$e" $(jar tf "$e" | grep '^lib/.*libJCudaDriver-'))
            jar cf "$out/lib/$(basename "$e" .jar)-driver-only.jar" -C "$tmp" lib
            rm -rf "$tmp" ;;
        */nd4j-*|*/openblas-*|*/dnnl-*|*/opencl-*|*/jna-*|*/oshi-*|*/commons-*|*/guava-*|*/protobuf-*|*/flatbuffers-*|\
        */jackson-*|*/byteunits-*|*/threetenbp-*|*/neoitertools-*|*/javacpp-*-linux-*|*/javacpp-*-windows-*|*/javacpp-*-macosx-*)
            dropped+=("$(basename "$e")") ;;
        *.jar) cp "$e" "$out/lib/" ;;
        *) die "unexpected class path entry $e" ;;
    esac
done
echo "== left out (the GPU check does not load them): ${dropped[*]}"

jar tf "$cuda_jar" | sed -n 's:^org/vgg4j/cuda/kernels/\(..*\)$:\1:p' > "$out/kernels.txt"
if grep -q 'sm_90.cubin' "$out/kernels.txt"; then
    echo "== kernels: $(grep -c cubin "$out/kernels.txt") cubins and $(grep -c '\.ptx$' "$out/kernels.txt") PTX modules"
else
    echo "== kernels: none in $cuda_jar (built without nvcc): this bundle runs gpu-check.sh --emulated only"
fi

echo "== jlinking a Java runtime"
# The bundle runs on the class path. jdeps cannot resolve our own modular jars here (org.vgg4j.core requires ND4J's
# openblas/dnnl presets, which the bundle leaves out), so it reads the other jars, and our modules' JDK requirements
# come from their descriptors. No silent default: a failing jdeps stops the build.
ours=("$out"/lib/vgg-core-*[0-9T].jar "$out"/lib/vgg-cuda-*[0-9T].jar)
others=()
for j in "$out"/lib/*.jar; do
    case " ${ours[*]} " in *" $j "*) ;; *) others+=("$j") ;; esac
done
modules=$(jdeps --ignore-missing-deps --print-module-deps --multi-release 17 "${others[@]}") \
    || die "jdeps could not list the JDK modules the bundle's jars need"
for j in "${ours[@]}"; do
    own=$(jar --describe-module --file "$j" | awk '$1 == "requires" && $2 ~ /^(java|jdk)\./ {print $2}' | paste -sd, -)
    modules="$modules${own:+,$own}"
done
echo "   JDK modules: $modules"
jlink --add-modules "$modules,jdk.unsupported,java.management,jdk.zipfs" --strip-debug --no-man-pages \
      --no-header-files --compress=2 --output "$out/runtime"

cp scripts/gpu-check.sh scripts/torch_vgg16_bench.py scripts/torch_parity.py "$out/scripts/"
cp vgg-cuda/src/main/cuda/*.cu vgg-cuda/src/main/cuda/*.cuh "$out/cuda-src/"
cat > "$out/README.txt" <<TXT
VGG4J GPU bundle, built $(date -u +%Y-%m-%dT%H:%MZ) from $(git rev-parse --short HEAD 2>/dev/null || echo unknown).
From the repository root (the bundle is vgg-cuda/target/gpu-bundle unless made elsewhere):
    scripts/gpu-check.sh --bundle vgg-cuda/target/gpu-bundle --out OUT_DIR [--emulated]
Java modules in runtime/: $modules,jdk.unsupported,java.management,jdk.zipfs
TXT
tar czf "$out.tar.gz" -C "$(dirname "$out")" "$(basename "$out")"
size_kb=$(du -sk "$out" | cut -f1)
size_mb=$(( (size_kb + 1023) / 1024 ))
tgz_mb=$(( ($(stat -c %s "$out.tar.gz") + 1048575) / 1048576 ))
echo "== bundle $out: ${size_mb} MiB ($(du -sk "$out/runtime" | cut -f1) KiB runtime, $(du -sk "$out/lib" | cut -f1) KiB lib);" \
     "$out.tar.gz: ${tgz_mb} MiB (what a device run carries); limits ${limit_mb} and ${tgz_limit_mb} MiB"
[ "$size_mb" -le "$limit_mb" ] || die "bundle is ${size_mb} MiB, over the ${limit_mb} MiB that leave room for the repository in a 64 MiB device run"
[ "$tgz_mb" -le "$tgz_limit_mb" ] || die "$out.tar.gz is ${tgz_mb} MiB, over ${tgz_limit_mb} MiB"
