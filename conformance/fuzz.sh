#!/bin/sh
# Fuzzes every target in fuzz/ for a bounded time (CI runs it from conformance/run-tests.sh).
#
# - Builds all targets once, on the stable toolchain, with libFuzzer's coverage instrumentation
#   (sancov; no sanitizer) and fuzz/Cargo.toml's quick-to-build `fuzz` profile (debug assertions
#   and overflow checks on). An explicit --target keeps RUSTFLAGS off build scripts; RUSTFLAGS
#   overrides any rustflags of a .cargo/config.toml.
# - Replays fuzz/regressions/<target>/ (inputs that once crashed: they must pass now).
# - Fuzzes each target for FUZZ_SECONDS (default 60), FUZZ_JOBS (default 2) at a time, from the
#   seeds in fuzz/corpus/<target>/ (read only; what the fuzzer finds goes to the target dir).
#   A panic, an input running longer than FUZZ_TIMEOUT s (default 10) or the process growing
#   past FUZZ_RSS_MB (default 1024; also the largest single allocation) is a failure: the input
#   is copied to fuzz/regressions/<target>/ (commit it with the fix) and the script exits 1.
#
# Usage: conformance/fuzz.sh [TARGET...]      (default: every fuzz/fuzz_targets/*.rs)
# Env: FUZZ_SECONDS, FUZZ_JOBS, FUZZ_TIMEOUT, FUZZ_RSS_MB, FUZZ_TARGET_DIR (default fuzz/target/ci)
set -eu
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$self")/../fuzz"
fuzz=$(pwd)

: "${FUZZ_SECONDS:=60}" "${FUZZ_JOBS:=2}" "${FUZZ_TIMEOUT:=10}" "${FUZZ_RSS_MB:=1024}"
: "${FUZZ_TARGET_DIR:=$fuzz/target/ci}"
export FUZZ_SECONDS FUZZ_JOBS FUZZ_TIMEOUT FUZZ_RSS_MB FUZZ_TARGET_DIR
out=$FUZZ_TARGET_DIR/run

# One target, in a job of the fuzzing phase: fuzz.sh --one TARGET BINARY.
if [ "${1:-}" = --one ]; then
    name=$2 bin=$3
    work=$out/corpus/$name art=$out/artifacts/$name log=$out/logs/$name.log
    rm -rf "$art" && mkdir -p "$work" "$art" "corpus/$name" "regressions/$name"
    rc=0
    # Belt and braces around libFuzzer's own limits: kill it if it outlives its time by far.
    timeout -k 10 $((FUZZ_SECONDS * 2 + 60)) "$bin" "$work" "corpus/$name" "regressions/$name" \
        -max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" -rss_limit_mb="$FUZZ_RSS_MB" \
        -malloc_limit_mb="$FUZZ_RSS_MB" -artifact_prefix="$art/" -print_final_stats=1 \
        >"$log" 2>&1 || rc=$?
    stats=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed 's/^#\([0-9]*\)[[:space:]]*[A-Z]*/\1 execs,/')
    if [ "$rc" = 0 ]; then
        echo "fuzz: $name: ok ($stats)"
        exit 0
    fi
    kept=""
    for f in "$art"/crash-* "$art"/timeout-* "$art"/oom-* "$art"/leak-*; do
        [ -f "$f" ] || continue
        cp "$f" "regressions/$name/"
        kept="$kept fuzz/regressions/$name/$(basename "$f")"
    done
    echo "fuzz: $name: FAILED (exit $rc)" >&2
    tail -n 40 "$log" >&2
    echo "fuzz: $name: the input is kept as${kept:- (none written: see $log)}" >&2
    exit 1
fi

# A C++ compiler for libfuzzer-sys (it builds libFuzzer from source).
if ! command -v c++ >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "fuzz: installing g++"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q && apt-get install -y -q --no-install-recommends g++
    else
        echo "fuzz: a C++ compiler (c++) is needed to build libFuzzer" >&2
        exit 1
    fi
fi

if [ $# -gt 0 ]; then
    targets=$*
else
    targets=$(for f in fuzz_targets/*.rs; do basename "$f" .rs; done)
fi

# The build: every target in one cargo invocation.
triple=$(rustc -vV | sed -n 's/^host: //p')
unset CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
mkdir -p "$out/logs"
start=$(date +%s)
cargo build --profile fuzz --target "$triple" --target-dir "$FUZZ_TARGET_DIR" --bins \
    --message-format=json-render-diagnostics >"$out/build.json"
echo "fuzz: built in $(($(date +%s) - start)) s"
exe() { # the executable cargo built for target $1
    grep -o '"executable":"[^"]*/'"$1"'"' "$out/build.json" | tail -1 | cut -d'"' -f4
}

# Regressions first: every input that once failed must pass.
failed=""
jobs=""
for t in $targets; do
    bin=$(exe "$t")
    [ -n "$bin" ] && [ -x "$bin" ] || { echo "fuzz: no executable for target $t" >&2; exit 1; }
    jobs="$jobs $t $bin"
    set -- regressions/"$t"/*
    [ -f "$1" ] || continue
    if "$bin" -timeout="$FUZZ_TIMEOUT" -rss_limit_mb="$FUZZ_RSS_MB" \
        -malloc_limit_mb="$FUZZ_RSS_MB" "$@" >"$out/logs/$t.replay.log" 2>&1; then
        echo "fuzz: $t: $# regression input(s) pass"
    else
        tail -n 40 "$out/logs/$t.replay.log" >&2
        echo "fuzz: $t: a regression input fails (log: $out/logs/$t.replay.log)" >&2
        failed="$failed $t"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: regressions failed:$failed" >&2
    exit 1
fi

# Fuzzing: FUZZ_JOBS targets at a time; xargs exits non-zero if any of them failed.
start=$(date +%s)
# shellcheck disable=SC2086
if printf '%s %s\n' $jobs | xargs -n 2 -P "$FUZZ_JOBS" sh "$self" --one; then
    echo "fuzz: every target ran ${FUZZ_SECONDS} s without a failure ($(($(date +%s) - start)) s)"
else
    echo "fuzz: FAILED: commit the inputs under fuzz/regressions/ with the fix" >&2
    exit 1
fi
