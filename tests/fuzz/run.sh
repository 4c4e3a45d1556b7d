#!/bin/bash
# Runs every libFuzzer harness that `make fuzz` built, FUZZ_SECONDS each,
# FUZZ_JOBS at a time (default 2), on its committed seed corpus
# (tests/fuzz/corpus/NAME, read only) and a work corpus under
# $BUILD/fuzz/work/NAME (new inputs), with its dictionary
# (tests/fuzz/NAME.dict) when there is one. A crash, a leak, a sanitizer
# report, a failed property or a time-out fails the run; the input is kept
# in $BUILD/fuzz/artifacts/. Prints each harness's executions and a total.
#   tests/fuzz/run.sh [NAME...]
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-fuzz}
secs=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-2}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for b in "$BUILD"/fuzz/fuzz_*; do [ -x "$b" ] && names+=("$(basename "$b")"); done
fi
mkdir -p "$BUILD/fuzz/artifacts" "$BUILD/fuzz/logs"

# One harness; its verdict goes to logs/NAME.result.
run_one() {
    local name=$1 short=${1#fuzz_} rc execs cov log work seeds
    work=$BUILD/fuzz/work/$short
    seeds=tests/fuzz/corpus/$short
    log=$BUILD/fuzz/logs/$short.log
    mkdir -p "$work"
    local args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
                -artifact_prefix="$BUILD/fuzz/artifacts/$short-")
    [ -f "tests/fuzz/$short.dict" ] && args+=(-dict="tests/fuzz/$short.dict")
    local dirs=("$work")
    [ -d "$seeds" ] && dirs+=("$seeds")
    "$BUILD/fuzz/$name" "${args[@]}" "${dirs[@]}" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ "$rc" -ne 0 ]; then
        {
            printf '  FAIL %-10s (exit %d) — log: %s\n' "$short" "$rc" "$log"
            grep -E 'ERROR|SUMMARY|property failed|Test unit written' "$log" | head -n 8 | sed 's/^/      /'
        } > "$BUILD/fuzz/logs/$short.result"
    else
        printf '  ok   %-10s %10s runs in %ss, %s\n' "$short" "${execs:-?}" "$secs" "${cov:-}" \
            > "$BUILD/fuzz/logs/$short.result"
    fi
}

start=$(date +%s)
for name in "${names[@]}"; do
    rm -f "$BUILD/fuzz/logs/${name#fuzz_}.result"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    run_one "$name" &
done
wait
failed=()
for name in "${names[@]}"; do
    short=${name#fuzz_}
    cat "$BUILD/fuzz/logs/$short.result" 2>/dev/null || echo "  FAIL $short (no verdict)"
    grep -q '^  ok' "$BUILD/fuzz/logs/$short.result" 2>/dev/null || failed+=("$short")
done
echo "fuzz: ${#names[@]} harnesses, $jobs at a time, in $(( $(date +%s) - start )) s; ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
