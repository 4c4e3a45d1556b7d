#!/bin/bash
# Runs the test binaries that `make tests-build` produced and prints one
# closing line "N passed, N failed" over every test case.
#   tests/run.sh unit|integration|all|bench   (ONLY=it_x or ONLY=bench_x: that binary)
# Integration tests run inside a throw-away PostgreSQL cluster (pg_virtualenv);
# each test binary creates its own database in it and starts its own cardd,
# pcscd and emulators, so binaries do not depend on one another.
set -u
BUILD=${BUILD:-build}
export BUILD
mode=${1:-all}
cd "$(dirname "$0")/.."
export CARDD_ROOT=$PWD
logdir=$BUILD/test-logs
mkdir -p "$logdir"
passed=0
failed=0
failed_names=()

vg=()
if [ "${VALGRIND:-0}" = 1 ]; then
    vg=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
        --suppressions=tests/valgrind.supp)
fi
tsan_log=""
case "$BUILD" in
    # Every process of a test (the test, cardd, cardctl, the emulators) writes its
    # ThreadSanitizer reports to $logdir/tsan.<pid>, but for one under umockdev's
    # preload, which writes them to its stderr; a report fails the test binary.
    *tsan*) tsan_log=$PWD/$logdir/tsan
            rm -f "$tsan_log".*
            export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$PWD/tests/tsan.supp:second_deadlock_stack=1:log_path=$tsan_log} ;;
    *san*) export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:verify_asan_link_order=0}
           export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp}
           export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} ;;
esac

# A PostgreSQL port nobody uses, so that runs side by side do not collide.
free_pg_port() {
    local p
    for p in $(seq 5433 5533); do
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && [ ! -e /var/run/postgresql/.s.PGSQL.$p ]; then
            echo "$p"; return
        fi
    done
    echo 5433
}

run_binary() {
    local bin=$1 name log rc p f start secs
    name=$(basename "$bin")
    log=$logdir/$name.log
    start=$SECONDS
    "${vg[@]}" "$bin" >"$log" 2>&1
    rc=$?
    secs=$((SECONDS - start))
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ -n "$tsan_log" ] && compgen -G "$tsan_log.*" >/dev/null; then
        for r in "$tsan_log".*; do
            cat "$r" >>"$log"
            rm -f "$r"
        done
        echo "ThreadSanitizer reported (see above)" >>"$log"
        if [ "$f" -eq 0 ]; then f=1; fi
    elif [ -n "$tsan_log" ] && grep -Eq '(WARNING|ERROR): ThreadSanitizer' "$log"; then
        # A process under umockdev's preload reports on its stderr, which the
        # test's output holds (tests/integration/lib/usb_env.c says why).
        echo "ThreadSanitizer reported (see above)" >>"$log"
        if [ "$f" -eq 0 ]; then f=1; fi
    fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failed_names+=("$name")
        printf '  FAIL %-28s (%s passed, %s failed, %s s) — log: %s\n' "$name" "$p" "$f" "$secs" "$log"
        tail -n 40 "$log" | sed 's/^/      /'
    else
        printf '  ok   %-28s %s tests (%s s)\n' "$name" "$p" "$secs"
    fi
}

# A check of the source tree, counted as one test.
run_check() {
    local name=$1 log
    log=$logdir/$name.log
    if "tests/$name.sh" >"$log" 2>&1; then
        passed=$((passed + 1))
        printf '  ok   %-28s %s\n' "$name" "$(tail -n 1 "$log")"
    else
        failed=$((failed + 1)); failed_names+=("$name")
        printf '  FAIL %-28s — log: %s\n' "$name" "$log"
        sed 's/^/      /' "$log"
    fi
}

run_unit() {
    echo "unit tests ($BUILD)"
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] && run_binary "$t"
    done
    run_check check_ownership
    run_check check_function_length
}

run_integration() {
    echo "integration tests ($BUILD)"
    for t in "$BUILD"/tests/it_*; do
        # ONLY=it_x runs that one binary (make screenshots).
        [ -n "${ONLY:-}" ] && [ "$(basename "$t")" != "$ONLY" ] && continue
        [ -x "$t" ] && run_binary "$t"
    done
}

case "$mode" in
    unit) run_unit
        if [ "${VALGRIND:-0}" = 1 ] && [ -x "$BUILD/tests/it_printer" ]; then
            # The printer driver through the real libusb, under valgrind: the
            # preload is set here so that the test does not re-execute itself
            # outside valgrind.
            echo "driver under valgrind"
            LD_PRELOAD=libumockdev-preload.so.0 run_binary "$BUILD/tests/it_printer"
        fi ;;
    integration|all)
        [ "$mode" = all ] && run_unit
        if [ -z "${PGHOST:-}" ]; then
            # Re-enter inside a throw-away cluster; the inner run prints the totals.
            inner=$(mktemp)
            pg_virtualenv -t -c "-p $(free_pg_port)" -o 'max_connections=300' -o 'fsync=off' \
                env BUILD="$BUILD" VALGRIND="${VALGRIND:-0}" tests/run.sh integration-inner "$inner"
            read -r ip if_ < "$inner" || { ip=0; if_=1; }
            rm -f "$inner"
            passed=$((passed + ip)); failed=$((failed + if_))
        else
            run_integration
        fi ;;
    integration-inner)
        run_integration
        echo "$passed $failed" > "$2"
        exit 0 ;;
    bench)
        for b in "$BUILD"/tests/bench_*; do
            # ONLY=bench_x runs that one bench.
            [ -n "${ONLY:-}" ] && [ "$(basename "$b")" != "$ONLY" ] && continue
            [ -x "$b" ] || continue
            echo "== $(basename "$b")"
            if [ -z "${PGHOST:-}" ]; then
                pg_virtualenv -t -c "-p $(free_pg_port)" -o 'max_connections=300' "$b" || failed=$((failed + 1))
            else
                "$b" || failed=$((failed + 1))
            fi
        done
        exit $((failed != 0)) ;;
    *) echo "usage: $0 unit|integration|all|bench" >&2; exit 2 ;;
esac

echo
if [ ${#failed_names[@]} -gt 0 ]; then echo "failed binaries: ${failed_names[*]}"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
