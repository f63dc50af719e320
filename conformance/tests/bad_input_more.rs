//! More bad input (extends bad_input.rs, no case repeated): malformed configs (wrong types, huge
//! values, relative paths, impossible limits, namespaces and mappings that do not fit) and bad
//! command lines (ids with control characters, unusable --root or --bundle, bad flags, commands
//! on containers in the wrong state). Each must exit non-zero, name what is wrong on stderr, and
//! leave nothing behind.

use std::fs;

use coracle_conformance::{
    existing_cgroup_dirs, host_mounts_mentioning, is_runc, unique, Bundle, Output, Runtime,
};
use serde_json::{json, Value};

/// One malformed config: `prepare` breaks the bundle; stderr must mention one of `keywords`
/// (case-insensitive).
struct Case {
    name: &'static str,
    prepare: fn(&mut Bundle),
    keywords: &'static [&'static str],
}

/// Removes the namespace of type `kind` from the config.
fn drop_namespace(b: &mut Bundle, kind: &str) {
    if let Some(list) = b.config["linux"]["namespaces"].as_array_mut() {
        list.retain(|n| n["type"] != kind);
    }
}

/// The current value of a host sysctl (so a runtime that wrongly accepted the sysctl would
/// write the value it already has: harmless).
fn host_sysctl(path: &str) -> String {
    fs::read_to_string(format!("/proc/sys/{path}"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

const CASES: &[Case] = &[
    Case {
        name: "process.args is a string",
        prepare: |b| b.config["process"]["args"] = json!("sh"),
        keywords: &["args"],
    },
    Case {
        name: "process.args holds a NUL byte",
        prepare: |b| {
            b.args(&["sh", "-c", "true\u{0}false"]);
        },
        keywords: &["args", "nul"],
    },
    Case {
        name: "process.env is a string",
        prepare: |b| b.config["process"]["env"] = json!("PATH=/bin"),
        keywords: &["env"],
    },
    Case {
        name: "process.env entry holds a NUL byte",
        prepare: |b| {
            b.env(&["PATH=/bin", "A=b\u{0}c"]);
        },
        keywords: &["env", "nul"],
    },
    Case {
        name: "process.user.uid is a string",
        prepare: |b| b.config["process"]["user"]["uid"] = json!("root"),
        keywords: &["uid"],
    },
    Case {
        name: "process.user.uid is negative",
        prepare: |b| b.config["process"]["user"]["uid"] = json!(-1),
        keywords: &["uid"],
    },
    Case {
        name: "process.user.uid does not fit 32 bits",
        prepare: |b| b.config["process"]["user"]["uid"] = json!(1u64 << 40),
        keywords: &["uid"],
    },
    Case {
        name: "process.user.additionalGids are strings",
        prepare: |b| b.config["process"]["user"]["additionalGids"] = json!(["wheel"]),
        keywords: &["additionalGids"],
    },
    Case {
        name: "process.capabilities.bounding is a string",
        prepare: |b| b.config["process"]["capabilities"]["bounding"] = json!("CAP_KILL"),
        keywords: &["bounding", "capabilities"],
    },
    Case {
        name: "rlimit soft is a string",
        prepare: |b| {
            b.config["process"]["rlimits"] =
                json!([{"type": "RLIMIT_NOFILE", "soft": "many", "hard": 1024}]);
        },
        keywords: &["rlimits", "soft"],
    },
    Case {
        name: "rlimit soft above hard",
        prepare: |b| {
            b.rlimit("RLIMIT_NOFILE", 4096, 1024);
        },
        keywords: &["RLIMIT_NOFILE"],
    },
    Case {
        name: "rlimit NOFILE above the kernel's nr_open",
        prepare: |b| {
            b.rlimit("RLIMIT_NOFILE", 1 << 40, 1 << 40);
        },
        keywords: &["RLIMIT_NOFILE"],
    },
    Case {
        name: "the same rlimit twice",
        prepare: |b| {
            b.config["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
                {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}
            ]);
        },
        keywords: &["RLIMIT_NOFILE"],
    },
    Case {
        name: "process.oomScoreAdj out of range",
        prepare: |b| b.config["process"]["oomScoreAdj"] = json!(5000),
        keywords: &["oom"],
    },
    Case {
        name: "process is missing",
        prepare: |b| {
            b.config
                .as_object_mut()
                .expect("test setup")
                .remove("process");
        },
        keywords: &["process"],
    },
    Case {
        name: "root is missing",
        prepare: |b| {
            b.config.as_object_mut().expect("test setup").remove("root");
        },
        keywords: &["root"],
    },
    Case {
        name: "root.path is a file",
        prepare: |b| {
            fs::write(b.path().join("rootfile"), "x").expect("test setup");
            b.config["root"]["path"] = json!("rootfile");
        },
        keywords: &["rootfile", "directory"],
    },
    Case {
        name: "ociVersion 2.0.0",
        prepare: |b| b.config["ociVersion"] = json!("2.0.0"),
        keywords: &["2.0.0"],
    },
    Case {
        name: "ociVersion missing",
        prepare: |b| {
            b.config
                .as_object_mut()
                .expect("test setup")
                .remove("ociVersion");
        },
        keywords: &["ociVersion", "version"],
    },
    Case {
        name: "hostname without a uts namespace",
        prepare: |b| drop_namespace(b, "uts"),
        keywords: &["hostname", "uts"],
    },
    Case {
        name: "mount destination relative",
        prepare: |b| {
            b.mount("mnt", "tmpfs", "tmpfs", &[]);
        },
        keywords: &["mnt", "destination"],
    },
    Case {
        name: "mount destination empty",
        prepare: |b| {
            b.mount("", "tmpfs", "tmpfs", &[]);
        },
        keywords: &["destination", "mount"],
    },
    Case {
        name: "mount of an unknown filesystem type",
        prepare: |b| {
            b.mount("/mnt", "nosuchfs", "none", &[]);
        },
        keywords: &["nosuchfs"],
    },
    Case {
        name: "tmpfs mount with an option tmpfs rejects",
        prepare: |b| {
            b.mount("/mnt", "tmpfs", "tmpfs", &["bogusopt=1"]);
        },
        keywords: &["/mnt", "bogusopt"],
    },
    Case {
        name: "bind mount of a missing source",
        prepare: |b| {
            b.mount("/mnt", "bind", "/nonexistent-coracle-src", &["bind"]);
        },
        keywords: &["/nonexistent-coracle-src"],
    },
    Case {
        name: "maskedPaths entry relative",
        prepare: |b| {
            b.masked_paths(&["proc/keys"]);
        },
        keywords: &["maskedPaths", "proc/keys"],
    },
    Case {
        name: "readonlyPaths entry relative",
        prepare: |b| {
            b.readonly_paths(&["proc/sys"]);
        },
        keywords: &["readonlyPaths", "proc/sys"],
    },
    Case {
        name: "the same namespace type twice",
        prepare: |b| {
            if let Some(list) = b.config["linux"]["namespaces"].as_array_mut() {
                list.push(json!({"type": "network"}));
            }
        },
        keywords: &["network", "namespace"],
    },
    Case {
        name: "namespace path that does not exist",
        prepare: |b| {
            b.add_namespace("network", Some("/nonexistent-coracle-ns"));
        },
        keywords: &["/nonexistent-coracle-ns"],
    },
    Case {
        name: "namespace path of the wrong type",
        prepare: |b| {
            b.add_namespace("network", Some("/proc/self/ns/ipc"));
        },
        keywords: &["network", "namespace", "/proc/self/ns/ipc"],
    },
    Case {
        name: "namespace path that is not a namespace",
        prepare: |b| {
            b.add_namespace("network", Some("/etc/hostname"));
        },
        keywords: &["/etc/hostname", "namespace"],
    },
    Case {
        name: "namespace path relative",
        prepare: |b| {
            b.add_namespace("network", Some("proc/self/ns/net"));
        },
        keywords: &["proc/self/ns/net", "path"],
    },
    Case {
        name: "user namespace without mappings",
        prepare: |b| {
            b.add_namespace("user", None);
        },
        keywords: &["mapping", "uidMappings"],
    },
    Case {
        name: "uidMappings without a user namespace",
        prepare: |b| {
            b.config["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            b.config["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        },
        keywords: &["mapping", "user namespace"],
    },
    Case {
        name: "uid mapping of size 0",
        prepare: |b| {
            b.add_namespace("user", None);
            b.config["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 200000, "size": 0}]);
            b.config["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        },
        keywords: &["mapping", "size"],
    },
    Case {
        name: "timeOffsets without a time namespace",
        prepare: |b| {
            b.config["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 3600, "nanosecs": 0}});
        },
        keywords: &["time"],
    },
    Case {
        name: "device of an unknown type",
        prepare: |b| {
            b.device("/dev/weird", "x", 1, 3, 0o666);
        },
        keywords: &["type", "device"],
    },
    Case {
        name: "device path relative",
        prepare: |b| {
            b.device("dev/weird", "c", 1, 3, 0o666);
        },
        keywords: &["dev/weird"],
    },
    Case {
        name: "sysctl that is not namespaced",
        prepare: |b| {
            let v = host_sysctl("vm/overcommit_ratio");
            b.config["linux"]["sysctl"] = json!({"vm.overcommit_ratio": v});
        },
        keywords: &["vm.overcommit_ratio"],
    },
    Case {
        name: "net sysctl without a network namespace",
        prepare: |b| {
            drop_namespace(b, "network");
            let v = host_sysctl("net/ipv4/ip_forward");
            b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": v});
        },
        keywords: &["net.ipv4.ip_forward"],
    },
    Case {
        name: "sysctl name with ..",
        prepare: |b| {
            b.config["linux"]["sysctl"] = json!({"kernel..hostname": "x"});
        },
        keywords: &["sysctl"],
    },
    Case {
        name: "cgroupsPath with ..",
        prepare: |b| {
            b.cgroups_path(Some("/../../coracle-escape"));
        },
        keywords: &["cgroupsPath"],
    },
    Case {
        name: "pids limit is a string",
        prepare: |b| b.config["linux"]["resources"]["pids"] = json!({"limit": "lots"}),
        keywords: &["pids", "limit"],
    },
    Case {
        name: "hook path relative",
        prepare: |b| b.config["hooks"] = json!({"prestart": [{"path": "bin/true"}]}),
        keywords: &["hook", "bin/true"],
    },
    Case {
        name: "createRuntime hook that does not exist",
        prepare: |b| {
            b.config["hooks"] = json!({"createRuntime": [{"path": "/nonexistent-coracle-hook"}]});
        },
        keywords: &["/nonexistent-coracle-hook"],
    },
    Case {
        name: "terminal without a console socket",
        prepare: |b| b.config["process"]["terminal"] = json!(true),
        keywords: &["console", "terminal", "tty"],
    },
];

/// Asserts a failed command left nothing for `id` and `bundle`.
#[track_caller]
fn assert_nothing_left(rt: &Runtime, id: &str, bundle: &Bundle, out: &Output) {
    assert!(!rt.state_dir_exists(id), "state dir left after:\n{out}");
    let cg = existing_cgroup_dirs(bundle.cgroup_path());
    assert!(cg.is_empty(), "cgroup dirs left: {cg:?} after:\n{out}");
    let m = host_mounts_mentioning(bundle.path());
    assert!(
        m.is_empty(),
        "mounts left:\n{}\nafter:\n{out}",
        m.join("\n")
    );
    let list = rt.exec(&["list", "-q"]);
    assert!(
        !list.stdout.lines().any(|l| l == id),
        "{id} still listed:\n{out}"
    );
}

/// Runs one case through `create`; returns a failure description instead of panicking, so the
/// table reports every bad row at once.
fn check_case(case: &Case) -> Option<String> {
    let rt = Runtime::with_json_log();
    let mut b = Bundle::new();
    b.sh("echo SHOULD-NOT-RUN; sleep 1000");
    (case.prepare)(&mut b);
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        out.fails().stderr_mentions(case.keywords);
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "one error line:\n{out}"
        );
        let log = rt.log_text();
        assert!(
            log.lines()
                .any(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["level"] == "error")),
            "no JSON error logged:\n{log}\n{out}"
        );
        assert_nothing_left(&rt, &id, &b, &out);
    }));
    result.err().map(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("case {:?}: {msg}", case.name)
    })
}

/// Cases the runtime does not reject yet (run with --ignored). What is missing:
/// - a relative mount destination is accepted (runc 1.2 resolves it against `/`; the runtime-spec
///   says it MUST be absolute): reject it in `RootfsPlan::from_spec`, naming `mounts[i].destination`;
/// - sysctls are not checked against the namespaces the container gets: accept only the
///   namespaced ones (as runc's `validate.sysctl`: `kernel.msg*`, `kernel.sem`, `kernel.shm*`,
///   `fs.mqueue.*` with an ipc namespace; `net.*` with a new network namespace;
///   `kernel.hostname`/`kernel.domainname` with a uts namespace), naming `linux.sysctl[KEY]`.
///   Today a config can change host-wide sysctls (vm.*, and net.* of the host's network
///   namespace) from inside the container.
const PENDING: &[&str] = &[
    "mount destination relative",
    "sysctl that is not namespaced",
    "net sysctl without a network namespace",
];

#[test]
fn more_bad_configs_fail_create_cleanly() {
    assert!(CASES.len() >= 40, "{} cases", CASES.len());
    let failures: Vec<String> = CASES
        .iter()
        .filter(|c| !PENDING.contains(&c.name))
        .filter_map(check_case)
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

#[test]
fn pending_bad_configs_fail_create_cleanly() {
    let failures: Vec<String> = CASES
        .iter()
        .filter(|c| PENDING.contains(&c.name))
        .filter_map(check_case)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Bad ids: control characters, spaces, overlong. Never a state entry, a cgroup or a file
/// outside the root.
#[test]
fn ids_with_control_characters_or_too_long_are_rejected() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    b.write();
    let long = "a".repeat(2000);
    for id in [
        "a\nb",
        "a\tb",
        "a b",
        "a\u{1}b",
        "a\u{7f}b",
        "a:b",
        "é",
        long.as_str(),
    ] {
        let out = rt.exec(&["create", "--bundle", b.path_str(), id]);
        out.fails().stderr_mentions(&["id"]);
        assert!(
            existing_cgroup_dirs(b.cgroup_path()).is_empty(),
            "{id:?}\n{out}"
        );
        let entries: Vec<_> = fs::read_dir(rt.root())
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(entries.is_empty(), "{id:?}: entries {entries:?}\n{out}");
    }
}

/// A bundle that is missing or is a file.
#[test]
fn bundle_missing_or_a_file() {
    let rt = Runtime::new();
    let file = std::env::temp_dir().join(unique("coracle-test-bundlefile"));
    fs::write(&file, "x").unwrap();
    let missing = format!("/nonexistent-{}", unique("coracle-bundle"));
    for bundle in [missing.as_str(), file.to_str().unwrap()] {
        let id = rt.new_id();
        let out = rt.exec(&["create", "--bundle", bundle, &id]);
        out.fails().stderr_mentions(&[bundle]);
        assert!(!rt.state_dir_exists(&id), "\n{out}");
    }
    let _ = fs::remove_file(&file);
}

/// A --root that cannot hold state: a file, or a path on a read-only filesystem.
#[test]
fn state_root_unusable() {
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    b.write();
    let file = std::env::temp_dir().join(unique("coracle-test-rootfile"));
    fs::write(&file, "x").unwrap();
    let ro = format!("/proc/{}", unique("coracle-root"));
    for root in [file.to_str().unwrap(), ro.as_str()] {
        let rt = Runtime::new();
        let id = rt.new_id();
        let mut cmd = std::process::Command::new(rt.bin());
        cmd.args(["--root", root, "create", "--bundle", b.path_str(), &id])
            .stdin(std::process::Stdio::null());
        let work = std::env::temp_dir().join(unique("coracle-test-rootwork"));
        fs::create_dir_all(&work).unwrap();
        let out = coracle_conformance::spawn_to_files(&mut cmd, &work, "c", "create");
        let _ = fs::remove_dir_all(&work);
        out.fails().stderr_mentions(&[root]);
        assert!(existing_cgroup_dirs(b.cgroup_path()).is_empty(), "\n{out}");
        assert!(host_mounts_mentioning(b.path()).is_empty(), "\n{out}");
    }
    assert_eq!(fs::read_to_string(&file).unwrap(), "x");
    let _ = fs::remove_file(&file);
}

/// A --pid-file that cannot be written: create fails and leaves nothing.
#[test]
fn pid_file_in_a_missing_directory() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    let id = rt.new_id();
    let pid_file = format!("/nonexistent-{}/pid", unique("coracle"));
    let out = rt.create_with(&id, &b, &["--pid-file", &pid_file]);
    out.fails().stderr_mentions(&["pid"]);
    assert_nothing_left(&rt, &id, &b, &out);
}

/// A terminal with a console socket that does not exist.
#[test]
fn console_socket_that_does_not_exist() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    b.config["process"]["terminal"] = json!(true);
    let id = rt.new_id();
    let sock = format!("/nonexistent-{}.sock", unique("coracle"));
    let out = rt.create_with(&id, &b, &["--console-socket", &sock]);
    out.fails().stderr_mentions(&["console", &sock]);
    assert_nothing_left(&rt, &id, &b, &out);
}

/// Flags with values of the wrong kind.
#[test]
fn bad_flag_values() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("true");
    b.write();
    let id = rt.new_id();
    let cases: [(&[&str], &[&str]); 3] = [
        (
            &[
                "create",
                "--preserve-fds",
                "-1",
                "--bundle",
                b.path_str(),
                &id,
            ],
            &["preserve-fds", "-1"],
        ),
        (
            &[
                "create",
                "--preserve-fds",
                "many",
                "--bundle",
                b.path_str(),
                &id,
            ],
            &["preserve-fds"],
        ),
        (&["list", "--format", "xml"], &["format", "xml"]),
    ];
    for (args, keywords) in cases {
        let out = rt.exec(args);
        out.fails().stderr_mentions(keywords);
        assert!(!rt.state_dir_exists(&id), "\n{out}");
    }
}

/// `exec` with bad arguments against a running container: each fails, the container keeps
/// running untouched.
#[test]
fn bad_exec_invocations() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    rt.start(&id).ok();
    let pid = rt.state(&id)["pid"].clone();
    let work = std::env::temp_dir().join(unique("coracle-test-badexec"));
    fs::create_dir_all(&work).unwrap();
    let bad_json = work.join("process.json");
    fs::write(&bad_json, "{ \"args\": [").unwrap();
    let wrong_type = work.join("process-type.json");
    fs::write(&wrong_type, "{ \"args\": \"sh\", \"cwd\": \"/\" }").unwrap();
    let missing = work.join("missing.json");
    let nosuch = unique("nosuch");
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (vec!["exec", &nosuch, "true"], &["not exist", "not found"]),
        (vec!["exec", &id], &["command", "args", "argument"]),
        (
            vec!["exec", "--process", missing.to_str().unwrap(), &id],
            &["missing.json"],
        ),
        (
            vec!["exec", "--process", bad_json.to_str().unwrap(), &id],
            &["process.json"],
        ),
        (
            vec!["exec", "--process", wrong_type.to_str().unwrap(), &id],
            &["args"],
        ),
        (vec!["exec", "--cwd", "relative/dir", &id, "true"], &["cwd"]),
        (
            vec!["exec", "--user", "nobody-name", &id, "true"],
            &["user"],
        ),
        (
            vec!["exec", "--user", "0:abc", &id, "true"],
            &["user", "gid"],
        ),
        (vec!["exec", &id, "/no/such/program"], &["/no/such/program"]),
        (
            vec!["exec", "--env", "NOEQUALS", &id, "true"],
            &["env", "NOEQUALS"],
        ),
    ];
    for (args, keywords) in &cases {
        let out = rt.exec(args);
        out.fails().stderr_mentions(keywords);
        let st = rt.state(&id);
        assert_eq!(st["status"], "running", "after {args:?}: {st:#}");
        assert_eq!(st["pid"], pid, "after {args:?}");
    }
    let _ = fs::remove_dir_all(&work);
    rt.delete_force(&id).ok();
}

/// Commands on a stopped container: exec and start fail, the status stays stopped.
#[test]
fn commands_on_a_stopped_container() {
    let rt = Runtime::new();
    let mut stopped = Bundle::new();
    stopped.sh("sleep 0.3");
    let sid = rt.new_id();
    rt.create(&sid, &stopped).ok();
    rt.start(&sid).ok();
    rt.wait_status(&sid, "stopped", std::time::Duration::from_secs(10));
    for args in [
        vec!["exec", sid.as_str(), "true"],
        vec!["start", sid.as_str()],
    ] {
        let out = rt.exec(&args);
        out.fails().stderr_mentions(&["stopped", "not running"]);
        assert_eq!(rt.state(&sid)["status"], "stopped", "after {args:?}");
    }
    rt.delete(&sid).ok();
}

/// pause/resume in the wrong state: pause of a stopped or created container, resume of a
/// created or running one.
#[test]
fn pause_and_resume_in_the_wrong_state() {
    if is_runc() {
        eprintln!("runc's messages differ; checked for coracle only");
    }
    let rt = Runtime::new();
    let mut stopped = Bundle::new();
    stopped.sh("true");
    let sid = rt.new_id();
    rt.create(&sid, &stopped).ok();
    rt.start(&sid).ok();
    rt.wait_status(&sid, "stopped", std::time::Duration::from_secs(10));
    for cmd in ["pause", "resume"] {
        let out = rt.exec(&[cmd, &sid]);
        out.fails()
            .stderr_mentions(&["stopped", "not running", "not paused"]);
        assert_eq!(rt.state(&sid)["status"], "stopped", "after {cmd}");
    }
    let mut created = Bundle::new();
    created.sh("sleep 1000");
    let cid = rt.new_id();
    rt.create(&cid, &created).ok();
    for cmd in ["pause", "resume"] {
        let out = rt.exec(&[cmd, &cid]);
        out.fails()
            .stderr_mentions(&["created", "not running", "not paused"]);
        assert_eq!(rt.state(&cid)["status"], "created", "after {cmd}");
    }
    rt.start(&cid).ok();
    let out = rt.exec(&["resume", &cid]);
    out.fails().stderr_mentions(&["not paused", "running"]);
    assert_eq!(rt.state(&cid)["status"], "running");
    rt.delete_force(&cid).ok();
    rt.delete(&sid).ok();
}
