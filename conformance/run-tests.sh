#!/bin/sh
# Runs every check CI runs: formatting, lints, build, unit tests and the conformance tests
# (real containers: needs root). Installs what it needs on a Debian/Ubuntu machine.
# Usage: conformance/run-tests.sh            (CI runs exactly this, via .ci/run)
set -eu
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "run-tests.sh: the conformance tests create real containers: run as root" >&2
    exit 1
fi

# System packages: a static busybox for the test rootfs, runc as the reference runtime,
# useradd/userdel (passwd) for the rootless tests' throwaway user and newuidmap/newgidmap (uidmap).
missing=""
dpkg -s busybox-static >/dev/null 2>&1 || missing="$missing busybox-static"
command -v runc >/dev/null 2>&1 || missing="$missing runc"
command -v useradd >/dev/null 2>&1 || missing="$missing passwd"
command -v newuidmap >/dev/null 2>&1 || missing="$missing uidmap"
if [ -n "$missing" ]; then
    say "installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi

# Rust components.
if ! cargo fmt --version >/dev/null 2>&1; then rustup component add rustfmt; fi
if ! cargo clippy --version >/dev/null 2>&1; then rustup component add clippy; fi

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

say "cargo build"
cargo build --workspace

say "cargo test (unit + conformance)"
cargo test --workspace --no-fail-fast

# Every fuzz target for a bounded time (FUZZ_SECONDS each, default 60); CORACLE_SKIP_FUZZ=1 skips.
if [ "${CORACLE_SKIP_FUZZ:-0}" = 1 ]; then
    say "SKIPPED: fuzzing (CORACLE_SKIP_FUZZ=1)"
else
    say "fuzzing: every target in fuzz/ for ${FUZZ_SECONDS:-60} s"
    conformance/fuzz.sh
fi

# The cgroup tests again on a pure cgroup v2 host: a small VM (this machine is v1/hybrid).
vm=${CGROUP2_VM_SCRIPT:-$PWD/../shared/vm/run-in-cgroup2-vm.sh}
[ -x "$vm" ] || vm=/work/shared/vm/run-in-cgroup2-vm.sh
if [ -x "$vm" ]; then
    say "cgroup v2 tests in the cgroup2 VM"
    CGROUP2_VM_SCRIPT=$vm conformance/cgroup2-vm.sh
else
    say "SKIPPED: cgroup v2 VM tests (no run-in-cgroup2-vm.sh on this machine)"
fi

say "engines: containerd, Docker and Podman on coracle"
conformance/engines/run.sh

say "all checks passed"
