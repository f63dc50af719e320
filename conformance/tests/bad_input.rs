//! The bad-input table: each bad bundle or command must exit non-zero, say on stderr what is
//! wrong (a keyword), log a JSON error line with `--log-format json`, and leave nothing behind:
//! no state dir entry for the id, no cgroup dir, no mount of the bundle.

use std::fs;
use std::path::Path;

use coracle_conformance::{
    existing_cgroup_dirs, host_mounts_mentioning, is_runc, Bundle, Output, Runtime,
};
use serde_json::{json, Value};

/// One row of the table: a bundle change that makes `create` fail.
struct Case {
    name: &'static str,
    prepare: fn(&mut Bundle),
    /// stderr must mention one of these (case-insensitive).
    keywords: &'static [&'static str],
    /// Checked only for coracle (runc's message is vaguer): stderr must mention one of these.
    strict: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "broken JSON",
        prepare: |b| {
            b.set_raw_config("{ \"ociVersion\": \"1.0.2\", \"process\": {");
        },
        keywords: &["json", "config", "eof", "parse", "syntax"],
        strict: &["config.json"],
    },
    Case {
        name: "config.json is not an object",
        prepare: |b| {
            b.set_raw_config("[1, 2, 3]");
        },
        keywords: &["json", "config", "array", "unmarshal", "invalid type"],
        strict: &["config.json"],
    },
    Case {
        name: "missing config.json",
        prepare: |b| {
            b.set_raw_config("");
        },
        keywords: &["config.json"],
        strict: &[],
    },
    Case {
        name: "missing rootfs",
        prepare: |b| {
            b.config["root"]["path"] = json!("no-such-rootfs");
        },
        keywords: &["rootfs", "no-such-rootfs"],
        strict: &["no-such-rootfs"],
    },
    Case {
        name: "relative process.cwd",
        prepare: |b| {
            b.cwd("tmp");
        },
        keywords: &["cwd"],
        strict: &["absolute"],
    },
    Case {
        name: "unknown namespace type",
        prepare: |b| {
            b.add_namespace("bogusns", None);
        },
        keywords: &["bogusns"],
        strict: &[],
    },
    Case {
        name: "empty process.args",
        prepare: |b| {
            b.args(&[]);
        },
        keywords: &["args"],
        strict: &[],
    },
    Case {
        name: "unknown rlimit",
        prepare: |b| {
            b.rlimit("RLIMIT_BOGUS", 1, 1);
        },
        keywords: &["RLIMIT_BOGUS"],
        strict: &[],
    },
];

/// Asserts the failed command left nothing for `id` and `bundle`.
#[track_caller]
fn assert_nothing_left(rt: &Runtime, id: &str, bundle: &Bundle, out: &Output) {
    assert!(
        !rt.state_dir_exists(id),
        "state dir {} left behind after:\n{out}",
        rt.root().join(id).display()
    );
    let cg = existing_cgroup_dirs(bundle.cgroup_path());
    assert!(
        cg.is_empty(),
        "cgroup dirs left behind: {cg:?} after:\n{out}"
    );
    let m = host_mounts_mentioning(bundle.path());
    assert!(
        m.is_empty(),
        "mounts left behind:\n{}\nafter:\n{out}",
        m.join("\n")
    );
    let list = rt.exec(&["list", "-q"]);
    assert!(
        !list.stdout.lines().any(|l| l == id),
        "{id} is still listed after:\n{out}\nlist:\n{list}"
    );
}

/// Asserts `--log-format json` logged an error line.
#[track_caller]
fn assert_json_error_logged(rt: &Runtime, out: &Output) {
    let log = rt.log_text();
    let found = log.lines().any(|l| {
        serde_json::from_str::<Value>(l).is_ok_and(|v| {
            v["level"] == "error" && v["msg"].as_str().is_some_and(|m| !m.is_empty())
        })
    });
    assert!(
        found,
        "no {{\"level\":\"error\",\"msg\":...}} line in --log:\n{log}\nafter:\n{out}"
    );
}

#[track_caller]
fn check_strict(case: &Case, out: &Output) {
    if !case.strict.is_empty() && !is_runc() {
        out.stderr_mentions(case.strict);
    }
}

#[test]
fn bad_bundles_fail_create_cleanly() {
    for case in CASES {
        eprintln!("case: {}", case.name);
        let rt = Runtime::with_json_log();
        let mut b = Bundle::new();
        b.sh("sleep 1000");
        (case.prepare)(&mut b);
        let id = rt.new_id();
        let out = if case.name == "missing config.json" {
            // Write nothing: create must find no config.json.
            let _ = fs::remove_file(b.path().join("config.json"));
            rt.exec(&["create", "--bundle", b.path_str(), &id])
        } else {
            rt.create(&id, &b)
        };
        out.fails().stderr_mentions(case.keywords);
        check_strict(case, &out);
        assert_json_error_logged(&rt, &out);
        assert_nothing_left(&rt, &id, &b, &out);
    }
}

#[test]
fn bad_bundles_fail_run_cleanly() {
    for case in CASES.iter().filter(|c| c.name != "missing config.json") {
        eprintln!("case: {}", case.name);
        let rt = Runtime::new();
        let mut b = Bundle::new();
        b.sh("echo SHOULD-NOT-RUN");
        (case.prepare)(&mut b);
        let id = rt.new_id();
        let out = rt.run_id(&id, &b, &[]);
        out.fails().stderr_mentions(case.keywords);
        assert!(!out.stdout.contains("SHOULD-NOT-RUN"), "\n{out}");
        assert_nothing_left(&rt, &id, &b, &out);
    }
}

#[test]
fn duplicate_id() {
    let rt = Runtime::with_json_log();
    let mut first = Bundle::new();
    first.sh("sleep 1000");
    let id = rt.new_id();
    rt.create(&id, &first).ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();

    let mut second = Bundle::new();
    second.sh("sleep 1000");
    let out = rt.create(&id, &second);
    out.fails().stderr_mentions(&["exist", "already", "in use"]);
    assert_json_error_logged(&rt, &out);
    // The first container is untouched; the second left nothing.
    let st = rt.state(&id);
    assert_eq!(st["status"], "created", "{st:#}");
    assert_eq!(st["pid"].as_i64(), Some(pid), "{st:#}");
    assert_eq!(st["bundle"], first.path_str(), "{st:#}");
    let cg = existing_cgroup_dirs(second.cgroup_path());
    assert!(cg.is_empty(), "cgroup of the duplicate left: {cg:?}");
    assert!(host_mounts_mentioning(second.path()).is_empty());
    assert!(!existing_cgroup_dirs(first.cgroup_path()).is_empty());
    rt.delete_force(&id).ok();
}

#[test]
fn unknown_id() {
    let rt = Runtime::with_json_log();
    let id = coracle_conformance::unique("unknown");
    let commands: [&[&str]; 6] = [
        &["state", &id],
        &["start", &id],
        &["kill", &id, "TERM"],
        &["kill", &id, "9"],
        &["delete", &id],
        &["kill", "--all", &id, "KILL"],
    ];
    for args in commands {
        let out = rt.exec(args);
        out.fails()
            .stderr_mentions(&["not exist", "not found", "no such"]);
        assert_json_error_logged(&rt, &out);
        assert!(
            !rt.state_dir_exists(&id),
            "state dir appeared after:\n{out}"
        );
    }
}

#[test]
fn start_of_a_running_container() {
    let rt = Runtime::with_json_log();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    rt.start(&id).ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let out = rt.start(&id);
    out.fails().stderr_mentions(&["running", "already"]);
    assert_json_error_logged(&rt, &out);
    let st = rt.state(&id);
    assert_eq!(st["status"], "running", "{st:#}");
    assert_eq!(st["pid"].as_i64(), Some(pid), "{st:#}");
    rt.delete_force(&id).ok();
}

#[test]
fn create_without_an_id() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    b.write();
    let out = rt.exec(&["create", "--bundle", b.path_str()]);
    out.fails().stderr_mentions(&[
        "container-id",
        "container id",
        "<id>",
        "argument",
        "required",
    ]);
    assert!(existing_cgroup_dirs(b.cgroup_path()).is_empty(), "\n{out}");
    let entries: Vec<_> = fs::read_dir(rt.root())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        entries.is_empty(),
        "state entries appeared: {entries:?}\n{out}"
    );
}

#[test]
fn ids_that_escape_the_root_are_rejected() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    let escape = coracle_conformance::unique("coracle-test-escape");
    for id in [
        format!("../{escape}"),
        "..".to_string(),
        "a/b".to_string(),
        String::new(),
    ] {
        let out = rt.create(&id, &b);
        out.fails()
            .stderr_mentions(&["id", "argument", "required", "empty"]);
        let outside = rt.root().parent().unwrap_or(Path::new("/")).join(&escape);
        assert!(
            !outside.exists(),
            "{} was created\n{out}",
            outside.display()
        );
        assert!(existing_cgroup_dirs(b.cgroup_path()).is_empty(), "\n{out}");
    }
}

#[test]
fn kill_with_an_unknown_signal() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    rt.start(&id).ok();
    for sig in ["NOSUCHSIG", "SIGNOPE", "99999", "-1"] {
        let out = rt.kill(&id, sig);
        out.fails().stderr_mentions(&["signal", sig]);
        assert_eq!(rt.state(&id)["status"], "running", "after kill {sig}");
    }
    rt.delete_force(&id).ok();
}

#[test]
fn systemd_cgroup_is_not_supported_yet() {
    if coracle_conformance::skip_for_runc("runc has a systemd cgroup driver") {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("true");
    b.write();
    let id = rt.new_id();
    let mut args: Vec<String> = vec!["--systemd-cgroup".into()];
    args.extend(rt.global_args());
    args.extend([
        "run".into(),
        "--bundle".into(),
        b.path_str().into(),
        id.clone(),
    ]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = std::process::Command::new(rt.bin());
    cmd.args(&argv).stdin(std::process::Stdio::null());
    let out = rt.exec_command(cmd, "--systemd-cgroup run");
    out.fails().stderr_mentions(&["systemd"]);
    assert!(!rt.state_dir_exists(&id), "\n{out}");
}
