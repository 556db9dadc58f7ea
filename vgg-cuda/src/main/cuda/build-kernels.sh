#!/usr/bin/env bash
# build-kernels.sh -- builds vgg-cuda's native parts; run by Maven (exec-maven-plugin, see vgg-cuda/pom.xml).
#
#   build-kernels.sh main <cuda-src-dir> <classes-dir> <java-home>
#       1. the emulated device: every ../*.cu + emu/*.cpp compiled by g++ into
#          <classes-dir>/org/vgg4j/cuda/native/libvggcudaemu.so          (only where g++ exists, on Linux)
#       2. the GPU kernels: each *.cu compiled by nvcc into PTX (compute_80) and cubins for sm_80 sm_86 sm_89 sm_90,
#          <classes-dir>/org/vgg4j/cuda/kernels/<file>.{ptx,sm_XX.cubin}, plus kernels/MANIFEST (only where nvcc
#          exists; without it the 'cuda' backend reports that its kernels were not built)
#   build-kernels.sh test <test-cuda-dir> <test-classes-dir> <java-home> <cuda-src-dir>
#       the emulator again, with the test-only kernels of <test-cuda-dir> (deliberately broken ones for the negative
#       tests) added, as <test-classes-dir>/libvggcudaemu-test.so
#
# Is: incremental (an output newer than every input is kept) and never fails the build for a missing compiler:
# it says what it skipped. Is not: a general build system. Override compilers with CXX=... NVCC=...
set -euo pipefail
mode=$1; src=$2; out=$3; jhome=$4
CXX=${CXX:-g++}
NVCC=${NVCC:-nvcc}
ARCHS=${VGG_CUDA_ARCHS:-"80 86 89 90"}
# -fmad=false: nvcc would otherwise contract a*b+c into one FMA wherever it likes, while the emulator is compiled with
# -ffp-contract=off; the kernels write fmaf() explicitly where they want a fused product (the GEMM core), so both
# devices round every other expression the same way (docs/cuda.md, "Rounding"). -prec-div/-prec-sqrt are nvcc's
# defaults (IEEE division and square root), spelled out because the emulator relies on them too.
NVCC_FLAGS=(-std=c++17 -O3 -fmad=false -prec-div=true -prec-sqrt=true)

newer_than_all() {  # newer_than_all OUT INPUT... : true when OUT exists and is newer than every INPUT
    local o=$1; shift
    [ -f "$o" ] || return 1
    local f
    for f in "$@"; do [ "$f" -nt "$o" ] && return 1; done
    return 0
}

build_emulator() {  # build_emulator OUT_SO CU_FILES...
    local so=$1; shift
    if [ "$(uname -s)" != Linux ]; then
        echo "[vgg-cuda] not Linux: emulated device not built (its tests will be skipped)"; return 0
    fi
    if ! command -v "$CXX" >/dev/null 2>&1; then
        echo "[vgg-cuda] $CXX not found: emulated device not built (its tests will be skipped)"; return 0
    fi
    local cudadir=$1  # first argument after the .so is the main cuda dir (for headers and emu/*.cpp)
    shift
    local inputs=("$@" "$cudadir"/emu/*.cpp "$cudadir"/emu/*.h "$cudadir"/*.cuh)
    if newer_than_all "$so" "${inputs[@]}"; then
        echo "[vgg-cuda] emulator up to date: $so"; return 0
    fi
    local obj; obj=$(mktemp -d)
    local flags=(-std=c++17 -O2 -fPIC -fno-strict-aliasing -ffp-contract=off -I"$cudadir" -I"$jhome/include" -I"$jhome/include/linux")
    # extra flags, e.g. EMU_CXXFLAGS=-DVGG_EMU_UCONTEXT for the portable fiber switch (a change needs a clean build)
    if [ -n "${EMU_CXXFLAGS:-}" ]; then read -r -a extra <<< "$EMU_CXXFLAGS"; flags+=("${extra[@]}"); fi
    local pids=() objs=() f o
    for f in "$@" "$cudadir"/emu/*.cpp; do
        o="$obj/$(basename "$f").o"
        objs+=("$o")
        "$CXX" "${flags[@]}" -x c++ -c "$f" -o "$o" &
        pids+=($!)
        if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
    done
    for p in "${pids[@]}"; do wait "$p"; done
    mkdir -p "$(dirname "$so")"
    "$CXX" -shared -o "$so" "${objs[@]}" -lpthread
    rm -rf "$obj"
    echo "[vgg-cuda] built emulated device $so"
}

build_gpu() {  # build_gpu CUDA_DIR CLASSES_DIR
    local cudadir=$1 dst=$2/org/vgg4j/cuda/kernels
    if ! command -v "$NVCC" >/dev/null 2>&1; then
        echo "[vgg-cuda] nvcc not found: GPU kernels not built (the 'cuda' backend will say so; the emulator is unaffected)"
        return 0
    fi
    mkdir -p "$dst"
    local f name a manifest="$dst/MANIFEST.tmp"
    : > "$manifest"
    echo "# built by build-kernels.sh with $("$NVCC" --version | tail -1)" >> "$manifest"
    echo "# nvcc flags: ${NVCC_FLAGS[*]}" >> "$manifest"
    for f in "$cudadir"/*.cu; do
        name=$(basename "$f" .cu)
        local deps=("$f" "$cudadir"/*.cuh "${BASH_SOURCE[0]}")
        if ! newer_than_all "$dst/$name.ptx" "${deps[@]}"; then
            "$NVCC" "${NVCC_FLAGS[@]}" -arch=compute_80 -ptx -I"$cudadir" "$f" -o "$dst/$name.ptx"
        fi
        echo "$name.ptx" >> "$manifest"
        for a in $ARCHS; do
            if ! newer_than_all "$dst/$name.sm_$a.cubin" "${deps[@]}"; then
                "$NVCC" "${NVCC_FLAGS[@]}" -gencode "arch=compute_$a,code=sm_$a" -cubin -I"$cudadir" "$f" -o "$dst/$name.sm_$a.cubin"
            fi
            echo "$name.sm_$a.cubin" >> "$manifest"
        done
    done
    mv "$manifest" "$dst/MANIFEST"
    echo "[vgg-cuda] built GPU kernels (PTX + sm_${ARCHS// /, sm_}) into $dst"
}

case "$mode" in
    main)
        build_emulator "$out/org/vgg4j/cuda/native/libvggcudaemu.so" "$src" "$src"/*.cu
        build_gpu "$src" "$out"
        ;;
    test)
        cudadir=$5
        build_emulator "$out/libvggcudaemu-test.so" "$cudadir" "$cudadir"/*.cu "$src"/*.cu
        ;;
    *)
        echo "usage: $0 main|test ..." >&2; exit 2
        ;;
esac
