#!/bin/sh
# Runs the cgroup tests on a pure cgroup v2 host: builds on this machine, boots the cgroup2 VM
# once (../shared/vm/run-in-cgroup2-vm.sh, or $CGROUP2_VM_SCRIPT) and runs there the cgroups
# unit tests of the coracle crate and the conformance tests of cgroups_resources.rs.
# Usage: conformance/cgroup2-vm.sh   (as root; CI runs it from .ci/run)
set -eu
cd "$(dirname "$0")/.."
ws=$(pwd)
vm=${CGROUP2_VM_SCRIPT:-$ws/../shared/vm/run-in-cgroup2-vm.sh}
[ -x "$vm" ] || vm=/work/shared/vm/run-in-cgroup2-vm.sh

exe() { # the test executable cargo builds for "$@"
    cargo test --no-run --message-format=json "$@" 2>/dev/null |
        grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4
}
cargo build --workspace
unit=$(exe -p coracle --lib)
conf=$(exe -p coracle-conformance --test cgroups_resources)
[ -n "$unit" ] && [ -n "$conf" ] || { echo "cgroup2-vm: test executables not found" >&2; exit 1; }

export CGROUP2_VM_ENV="RUST_BACKTRACE CORACLE_TEST_TIMEOUT"
export RUST_BACKTRACE=${RUST_BACKTRACE:-0} CORACLE_TEST_TIMEOUT=${CORACLE_TEST_TIMEOUT:-120}
exec "$vm" "$ws" sh -c "
    echo \"cgroup2 VM: \$(uname -r), controllers: \$(cat /sys/fs/cgroup/cgroup.controllers)\"
    [ -f /sys/fs/cgroup/cgroup.controllers ] || { echo 'not a cgroup v2 host' >&2; exit 1; }
    rc=0
    $unit cgroups --test-threads=2 || rc=1
    $conf --test-threads=2 || rc=1
    exit \$rc"
