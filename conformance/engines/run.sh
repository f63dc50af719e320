#!/bin/sh
# The engines stage: containerd (ctr + runc v2 shim), Docker 20.10 and Podman 4.3 running their
# containers on coracle. Installs the engines from Debian packages when missing, starts each with
# all its state in a temp dir and networking off, and stops exactly what it started.
# Usage: conformance/engines/run.sh [ENGINES]   (ENGINES: all (default), or e.g. containerd,docker)
# Needs root. CORACLE_BIN selects the runtime binary (default: the workspace's debug build).
set -eu
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
    echo "engines/run.sh: the engines run as root" >&2
    exit 1
fi
cargo build -p coracle-cli
RUST_BACKTRACE=0 CORACLE_ENGINES="${1:-${CORACLE_ENGINES:-all}}" \
    exec cargo test -p coracle-conformance --test engines -- --test-threads=2
