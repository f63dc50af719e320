#!/usr/bin/python3
"""A tiny CRI (runtime.v1) client for the engines tests: runs one host-network pod sandbox and a
container in it through containerd's CRI plugin, step by step, printing `step=ok ...` or
`step=FAIL ...` lines; always cleans up what it made.

Messages are encoded by hand (a few protobuf fields) and sent as raw bytes with grpcio (Debian
python3-grpcio), so no generated code is needed.

Usage: cri_client.py SOCKET IMAGE CGROUP_PARENT LOG_DIR
"""

import sys
import time

import grpc

# --- protobuf wire format -------------------------------------------------------------------


def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


def f_int(num, n):
    return varint(num << 3) + varint(n)


def msg(*parts):
    return b"".join(p for p in parts if p)


def f_map(num, mapping):
    return b"".join(f_bytes(num, f_bytes(1, k) + f_bytes(2, v)) for k, v in mapping.items())


def decode(data):
    """Field number -> list of values (int for varints, bytes for length-delimited)."""
    fields = {}
    i = 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = read_varint(data, i)
        elif wire == 2:
            ln, i = read_varint(data, i)
            val = data[i:i + ln]
            i += ln
        elif wire == 1:
            val = data[i:i + 8]
            i += 8
        elif wire == 5:
            val = data[i:i + 4]
            i += 4
        else:
            raise ValueError("wire type %d" % wire)
        fields.setdefault(num, []).append(val)
    return fields


def read_varint(data, i):
    shift = 0
    n = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def first(fields, num, default=None):
    vals = fields.get(num)
    return vals[0] if vals else default


# --- the RPCs --------------------------------------------------------------------------------


class Cri:
    def __init__(self, sock):
        self.channel = grpc.insecure_channel("unix://" + sock)

    def call(self, method, body, timeout=60):
        rpc = self.channel.unary_unary("/runtime.v1.RuntimeService/" + method)
        return decode(rpc(body, timeout=timeout))


def check_cgroup(parent, ctr, want):
    """The v1 cgroup files of the container (cgroupsPath PARENT/ID) hold the wanted values."""
    got = {}
    for rel, val in want.items():
        ctrl, name = rel.split("/")
        path = "/sys/fs/cgroup/%s/%s/%s/%s" % (ctrl, parent.strip("/"), ctr, name)
        try:
            with open(path) as f:
                got[rel] = f.read().strip()
        except OSError as e:
            got[rel] = "(%s)" % e.strerror
    if got != want:
        raise RuntimeError("cgroup files %r, want %r" % (got, want))
    return " ".join("%s=%s" % kv for kv in sorted(got.items()))


NODE = 2
CONTAINER = 1
POD = 0


def main():
    sock, image, cgroup_parent, log_dir = sys.argv[1:5]
    cri = Cri(sock)
    failed = []
    suffix = str(int(time.time() * 1000))

    def step(name, fn):
        try:
            res = fn()
            print("%s=ok%s" % (name, (" " + res) if res else ""), flush=True)
            return True
        except grpc.RpcError as e:
            print("%s=FAIL %s: %s" % (name, e.code(), e.details()), flush=True)
        except Exception as e:  # noqa: BLE001 - report anything
            print("%s=FAIL %r" % (name, e), flush=True)
        failed.append(name)
        return False

    state = {}
    ns_opts = msg(f_int(1, NODE), f_int(2, CONTAINER), f_int(3, POD))
    sandbox_config = msg(
        f_bytes(1, msg(f_bytes(1, "coracle-pod"), f_bytes(2, "uid-" + suffix),
                       f_bytes(3, "coracle"))),
        f_bytes(3, log_dir),
        f_bytes(8, msg(f_bytes(1, cgroup_parent),
                       f_bytes(2, msg(f_bytes(1, ns_opts))))),
    )

    def run_sandbox():
        r = cri.call("RunPodSandbox", msg(f_bytes(1, sandbox_config)))
        state["pod"] = first(r, 1).decode()
        return "pod=" + state["pod"]

    def create():
        resources = msg(f_int(4, 64 * 1024 * 1024))
        config = msg(
            f_bytes(1, msg(f_bytes(1, "coracle-ctr"))),
            f_bytes(2, msg(f_bytes(1, image))),
            f_bytes(3, "sh"),
            f_bytes(3, "-c"),
            f_bytes(3, "echo started; trap 'exit 0' TERM; while :; do sleep 0.2; done"),
            f_bytes(5, "/tmp"),
            f_bytes(6, msg(f_bytes(1, "FOO"), f_bytes(2, "bar"))),
            f_bytes(11, "coracle-ctr.log"),
            f_bytes(15, msg(f_bytes(1, resources))),
        )
        r = cri.call("CreateContainer",
                     msg(f_bytes(1, state["pod"]), f_bytes(2, config), f_bytes(3, sandbox_config)))
        state["ctr"] = first(r, 1).decode()
        return "container=" + state["ctr"]

    def start():
        cri.call("StartContainer", f_bytes(1, state["ctr"]))

    def status():
        r = cri.call("ContainerStatus", f_bytes(1, state["ctr"]))
        st = decode(first(r, 1, b""))
        return first(st, 3, 0), first(st, 7, 0)

    def running():
        deadline = time.time() + 20
        while time.time() < deadline:
            s, _ = status()
            if s == 1:
                return "state=RUNNING"
            time.sleep(0.1)
        raise RuntimeError("container state %r, want RUNNING (1)" % (status(),))

    def exec_sync():
        r = cri.call("ExecSync", msg(
            f_bytes(1, state["ctr"]),
            f_bytes(2, "sh"), f_bytes(2, "-c"),
            f_bytes(2, "echo exec-ok foo=$FOO cwd=$(pwd); echo to-stderr >&2; exit 3"),
            f_int(3, 20)))
        out = first(r, 1, b"").decode()
        err = first(r, 2, b"").decode()
        code = first(r, 3, 0)
        if "exec-ok foo=bar cwd=/tmp" not in out or "to-stderr" not in err or code != 3:
            raise RuntimeError("stdout %r stderr %r exit %r" % (out, err, code))
        return "exit=3"

    def update():
        resources = msg(f_int(1, 100000), f_int(2, 50000), f_int(4, 96 * 1024 * 1024))
        cri.call("UpdateContainerResources",
                 msg(f_bytes(1, state["ctr"]), f_bytes(2, resources)))

    def stop():
        cri.call("StopContainer", msg(f_bytes(1, state["ctr"]), f_int(2, 10)))
        s, code = status()
        if s != 2 or code != 0:
            raise RuntimeError("after stop: state %r exit %r, want EXITED (2) and 0" % (s, code))
        return "state=EXITED exit=0"

    def remove():
        cri.call("RemoveContainer", f_bytes(1, state["ctr"]))

    ok = step("run_pod_sandbox", run_sandbox)
    ok = ok and step("create_container", create)
    ok = ok and step("start_container", start)
    ok = ok and step("container_running", running)
    if ok:
        # CRI makes the task (runtime create) at StartContainer.
        step("cgroup_limits_at_start", lambda: check_cgroup(
            cgroup_parent, state["ctr"], {"memory/memory.limit_in_bytes": "67108864"}))
        step("exec_sync", exec_sync)
        step("update_resources", update)
        step("cgroup_limits_updated", lambda: check_cgroup(
            cgroup_parent, state["ctr"],
            {"memory/memory.limit_in_bytes": "100663296", "cpu/cpu.cfs_quota_us": "50000"}))
        step("stop_container", stop)
    if "ctr" in state:
        step("remove_container", remove)
    if "pod" in state:
        step("stop_pod_sandbox", lambda: cri.call("StopPodSandbox", f_bytes(1, state["pod"])))
        step("remove_pod_sandbox", lambda: cri.call("RemovePodSandbox", f_bytes(1, state["pod"])))
    print("failed=%s" % ",".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
