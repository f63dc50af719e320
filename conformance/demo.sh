#!/bin/sh
# Builds coracle and runs one container from a busybox bundle made here, then cleans up.
# Usage: conformance/demo.sh        (as root; CORACLE_BIN=/path/to/runtime to demo another one)
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "demo.sh: creating containers needs root" >&2
    exit 1
fi

if ! dpkg -s busybox-static >/dev/null 2>&1; then
    echo "==> installing busybox-static"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends busybox-static
fi

if [ -z "${CORACLE_BIN:-}" ]; then
    echo "==> cargo build --release"
    cargo build --release -p coracle-cli
    CORACLE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-gnu/release/coracle"
fi

tmp=$(mktemp -d /tmp/coracle-demo.XXXXXX)
id="coracle-demo-$$"
cleanup() {
    "$CORACLE_BIN" --root "$tmp/state" delete --force "$id" >/dev/null 2>&1 || true
    if grep -q " $tmp" /proc/self/mountinfo; then
        echo "demo.sh: something is still mounted under $tmp; leaving it" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT INT TERM

echo "==> making a busybox bundle in $tmp/bundle"
rootfs="$tmp/bundle/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/etc" "$rootfs/root" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$rootfs/etc/passwd"
echo "root:x:0:" > "$rootfs/etc/group"

cat > "$tmp/bundle/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh", "-c", "echo hello from a coracle container; uname -a; id; hostname; echo pid \$\$; cat /proc/self/status | grep -E '^(CapEff|NoNewPrivs)'"],
    "env": ["PATH=/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "coracle-demo",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
  ],
  "linux": {
    "cgroupsPath": "/$id",
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
    "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
    "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
  }
}
JSON

echo "==> $CORACLE_BIN run $id"
status=0
"$CORACLE_BIN" --root "$tmp/state" run --bundle "$tmp/bundle" "$id" </dev/null || status=$?
echo "==> container exited with status $status"
exit "$status"
