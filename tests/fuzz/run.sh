#!/bin/bash
# Runs every libFuzzer harness that `make fuzz` built, FUZZ_SECONDS each,
# on its committed seed corpus (tests/fuzz/corpus/NAME, read only) and a
# work corpus under $BUILD/fuzz/work/NAME (new inputs), with its dictionary
# (tests/fuzz/NAME.dict) when there is one. A crash, a leak, a sanitizer
# report or a time-out fails the run; the input is kept in
# $BUILD/fuzz/artifacts/. Prints each harness's executions and a total.
#   tests/fuzz/run.sh [NAME...]
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-fuzz}
secs=${FUZZ_SECONDS:-20}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for b in "$BUILD"/fuzz/fuzz_*; do [ -x "$b" ] && names+=("$(basename "$b")"); done
fi
mkdir -p "$BUILD/fuzz/artifacts" "$BUILD/fuzz/logs"
failed=()
start=$(date +%s)
for name in "${names[@]}"; do
    bin=$BUILD/fuzz/$name
    short=${name#fuzz_}
    work=$BUILD/fuzz/work/$short
    seeds=tests/fuzz/corpus/$short
    mkdir -p "$work"
    args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix="$BUILD/fuzz/artifacts/$short-")
    [ -f "tests/fuzz/$short.dict" ] && args+=(-dict="tests/fuzz/$short.dict")
    dirs=("$work")
    [ -d "$seeds" ] && dirs+=("$seeds")
    log=$BUILD/fuzz/logs/$short.log
    "$bin" "${args[@]}" "${dirs[@]}" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ "$rc" -ne 0 ]; then
        failed+=("$short")
        printf '  FAIL %-10s (exit %d) — log: %s\n' "$short" "$rc" "$log"
        grep -E 'ERROR|SUMMARY|property failed|Test unit written' "$log" | head -n 8 | sed 's/^/      /'
    else
        printf '  ok   %-10s %10s runs in %ss, %s\n' "$short" "${execs:-?}" "$secs" "${cov:-}"
    fi
done
echo "fuzz: ${#names[@]} harnesses in $(( $(date +%s) - start )) s; ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
