#!/usr/bin/env bash
# ci-gpu-check-emulated.sh -- proves scripts/gpu-check.sh before any GPU time is spent (run by .ci/run): builds the
# bundle exactly as for a GPU (scripts/make-gpu-bundle.sh), runs `gpu-check.sh --emulated` on its archive, and
# checks the output folder: one file per stage and the summary (9); stages a, b, c, g and h passed; d, e and f "not
# run: emulated" (e and f having run our tools at toy size, h its tc-layers tool). A device run returns at most 8 files:
# a device session runs a selection of stages (--stages), which this run also proves with a,b,h,e. Exit 1, naming the stage, otherwise. A few minutes on 2 cores.
#
#   scripts/ci-gpu-check-emulated.sh [OUT_DIR]     (default target/gpu-check-emulated)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/target/gpu-check-emulated}
cd "$root"
fail() { echo "ci-gpu-check-emulated: $*" >&2; exit 1; }

bash scripts/make-gpu-bundle.sh || fail "the bundle could not be built"
rm -rf "$out"
bash scripts/gpu-check.sh --bundle vgg-cuda/target/gpu-bundle.tar.gz --out "$out" --emulated --budget 600
rc=$?
files=$(ls "$out" | wc -l)
[ "$files" -eq 9 ] || fail "gpu-check.sh wrote $files files into $out; expected 9 (8 stages and the summary)"
check() { # check FILE EXPECTED-RESULT-PREFIX
    local last
    last=$(grep '^RESULT: ' "$out/$1" 2>/dev/null | tail -1)
    case "$last" in
        "RESULT: $2"*) echo "ok   $1: $last" ;;
        *) fail "$1 should say 'RESULT: $2...', says '${last:-nothing}' (see $out/$1)" ;;
    esac
}
check a-env.txt passed
check b-suite.txt passed
check c-sanitizer.txt passed
check g-replicas.txt passed
check h-tensorcores.md passed
check d-parity.txt "not run: emulated"
check e-layers.md "not run: emulated"
check f-steps.md "not run: emulated"
grep -q '^LAYER impl=ours' "$out/e-layers.md" || fail "e-layers.md has no line of our layer tool"
grep -q '^| fp32 | conv1_1 | fwd |' "$out/e-layers.md" || fail "e-layers.md has no table row for conv1_1"
grep -q '^STEP impl=ours' "$out/f-steps.md" || fail "f-steps.md has no line of our step tool"
grep -q '^LAYER impl=ours-tc' "$out/h-tensorcores.md" || fail "h-tensorcores.md has no line of tc-layers"
grep -q '| ours-tc ms |' "$out/h-tensorcores.md" || fail "h-tensorcores.md has no table with ours-tc columns"
grep -Eq '^[0-9]+ passed, 0 failed' "$out/b-suite.txt" || fail "b-suite.txt shows no passing class"
[ $rc -eq 0 ] || fail "gpu-check.sh --emulated exited $rc"
# the selection a device session runs: at most 8 files, in the order asked, the tensor-core classes in h only
sel=$out-selection
rm -rf "$sel"
bash scripts/gpu-check.sh --bundle vgg-cuda/target/gpu-bundle.tar.gz --out "$sel" --emulated --stages a,b,h,e \
    --budget 600 >/dev/null
rc=$?
[ "$(ls "$sel" | wc -l)" -eq 5 ] || fail "--stages a,b,h,e wrote $(ls "$sel" | tr '\n' ' ') into $sel; expected 5 files"
[ "$(grep -o '^| [a-h] |' "$sel/summary.md" | tr -d '| \n')" = abhe ] || fail "--stages a,b,h,e ran out of order: $sel/summary.md"
grep -q 'left to stage h' "$sel/b-suite.txt" || fail "stage b ran the tensor-core classes although h was selected"
[ $rc -eq 0 ] || fail "gpu-check.sh --emulated --stages a,b,h,e exited $rc"
echo "gpu-check.sh --emulated: every stage that runs without a GPU passed ($out)"
