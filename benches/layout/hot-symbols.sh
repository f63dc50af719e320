#!/bin/sh
# Regenerates runtime-bin/hot-symbols.txt: the functions a release `coracle` runs in a typical
# lifecycle (run, create/start/delete, exec, state, list, kill), hottest first, sampled with
# perf. runtime-bin/build.rs hands the file to the linker (--symbol-ordering-file), which puts
# those functions together at the start of .text: a short-lived process then maps far fewer
# pages of its binary (the kernel maps 64 KiB around each page fault), which lowers its peak
# RSS and its page faults. Rust symbol names do not change with code edits (only with the
# toolchain or dependency versions), so the file stays valid; a function missing from it only
# lands elsewhere. Rerun after a toolchain or dependency update.
# Usage (root; needs perf (linux-perf) and busybox-static): benches/layout/hot-symbols.sh
set -eu
cd "$(dirname "$0")/../.."
ws=$PWD
cargo build --release -p coracle-cli
bin=$ws/target/x86_64-unknown-linux-gnu/release/coracle
work=$(mktemp -d /run/coracle-hot.XXXXXX)
copy=$work/coracle
cp "$bin" "$copy"
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$work/b/rootfs/bin" "$work/b/rootfs/proc" "$work/b/rootfs/sys" "$work/b/rootfs/dev" "$work/b/rootfs/tmp"
cp /bin/busybox "$work/b/rootfs/bin/busybox"
for a in sh true sleep; do ln -s busybox "$work/b/rootfs/bin/$a"; done
(cd "$work/b" && "$copy" spec)
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
c = json.load(open(f"{w}/b/config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["cgroupsPath"] = "/coracle-hot/t"
json.dump(c, open(f"{w}/b/config.json", "w"))
c["process"]["args"] = ["sleep", "1000"]
c["linux"]["cgroupsPath"] = "/coracle-hot/s"
import os
os.makedirs(f"{w}/s", exist_ok=True)
os.symlink(f"{w}/b/rootfs", f"{w}/s/rootfs")
json.dump(c, open(f"{w}/s/config.json", "w"))
PY
cat > "$work/load.sh" <<LOAD
#!/bin/sh
R=$work/root
$copy --root \$R run -d --bundle $work/s sl
for i in \$(seq 1 200); do
  $copy --root \$R run --bundle $work/b r\$i
  $copy --root \$R create --bundle $work/b c\$i
  $copy --root \$R start c\$i
  sleep 0.005
  $copy --root \$R delete c\$i
  $copy --root \$R exec sl /bin/true
  $copy --root \$R state sl >/dev/null
  $copy --root \$R list >/dev/null
  $copy --root \$R kill sl CONT
done
$copy --root \$R delete -f sl
LOAD
chmod +x "$work/load.sh"
perf record -q -o "$work/perf.data" -F 30000 -- "$work/load.sh" >/dev/null
perf script -i "$work/perf.data" -F pid,ip,dso --show-mmap-events --show-task-events \
    >"$work/perf.txt" 2>/dev/null
python3 benches/layout/hot_symbols.py "$copy" "$work/perf.txt" >runtime-bin/hot-symbols.txt
rmdir /sys/fs/cgroup/*/coracle-hot /sys/fs/cgroup/coracle-hot 2>/dev/null || true
echo "runtime-bin/hot-symbols.txt: $(wc -l <runtime-bin/hot-symbols.txt) functions"
