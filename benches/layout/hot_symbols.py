"""Resolves perf samples of a static-pie binary to its function symbols, hottest first.

Usage: hot_symbols.py BINARY PERF_SCRIPT_OUTPUT  (perf script -F pid,ip,dso --show-mmap-events
--show-task-events): prints one mangled symbol name per line. Cloned processes (no mmap events
of their own) are resolved through their parent's mapping.
"""
import bisect
import collections
import re
import subprocess
import sys

binary, trace = sys.argv[1], sys.argv[2]
name = binary.rsplit("/", 1)[-1]
maps, samples = {}, []
fork = re.compile(r"FORK\((\d+):\d+\):\((\d+):\d+\)")
mmap = re.compile(r"(\d+)/\d+: \[0x([0-9a-f]+)\(0x([0-9a-f]+)\) @ 0x([0-9a-f]+) .*\]: (\S+) (\S+)")
for line in open(trace):
    if "PERF_RECORD_FORK" in line:
        m = fork.search(line)
        if m and int(m.group(2)) in maps:
            maps[int(m.group(1))] = maps[int(m.group(2))]
        continue
    if "PERF_RECORD_MMAP" in line:
        m = mmap.search(line)
        if m and m.group(6).endswith("/" + name) and "x" in m.group(5):
            maps[int(m.group(1))] = (int(m.group(2), 16), int(m.group(3), 16), int(m.group(4), 16))
        continue
    f = line.split()
    if len(f) >= 3 and f[-1] == f"({binary})":
        samples.append((int(f[0]), int(f[1], 16)))

loads = []
for line in subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True).stdout.splitlines():
    if line.strip().startswith("LOAD"):
        f = line.split()
        loads.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))
syms = []
for line in subprocess.run(["nm", "-S", binary], capture_output=True, text=True).stdout.splitlines():
    f = line.split()
    if len(f) == 4 and f[2] in "tTwW":
        syms.append((int(f[0], 16), int(f[1], 16), f[3]))
syms.sort()
starts = [s[0] for s in syms]
count = collections.Counter()
for pid, ip in samples:
    if pid not in maps:
        continue
    start, length, pgoff = maps[pid]
    if not start <= ip < start + length:
        continue
    off = ip - start + pgoff
    va = next((v + off - o for o, v, size in loads if o <= off < o + size), None)
    i = bisect.bisect_right(starts, va) - 1 if va is not None else -1
    if i >= 0 and syms[i][0] <= va < syms[i][0] + max(syms[i][1], 1):
        count[syms[i][2]] += 1
for sym, _ in count.most_common():
    print(sym)
