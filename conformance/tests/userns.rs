//! User namespaces: a rootful container with uid/gid mappings (the maps, ownership inside and
//! on the host, exec joining it), an idmapped bind mount, and rootless containers run by an
//! unprivileged user the test creates and removes (single-id mapping with setgroups denied,
//! several ids through newuidmap/newgidmap, the state dir, exec).

use std::fs;
use std::os::unix::fs::{chown, MetadataExt};
use std::path::Path;
use std::time::{Duration, Instant};

use coracle_conformance::rootless::RootlessUser;
use coracle_conformance::{guarded, id_mappings, is_runc, skip_for_runc, Bundle, Output, Runtime};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// The host id container id 0 maps to in the rootful tests.
const BASE: u32 = 300_000;

/// The words of a uid_map/gid_map text, one Vec per line.
fn map_lines(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| !l.is_empty())
        .collect()
}

fn owner(p: &Path) -> (u32, u32) {
    let m = fs::metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    (m.uid(), m.gid())
}

/// A bundle with a new user namespace mapping 0..65536 to BASE..BASE+65536.
fn userns_bundle() -> Bundle {
    let mut b = Bundle::new();
    b.add_namespace("user", None)
        .uid_mappings(&[(0, BASE, 65536)])
        .gid_mappings(&[(0, BASE, 65536)]);
    b
}

/// process.oomScoreAdj applies in a new user namespace too (the container process can no longer
/// write its own /proc/self/oom_score_adj there).
#[test]
fn oom_score_adj_in_a_user_namespace() {
    let rt = Runtime::new();
    let mut b = userns_bundle();
    b.config["process"]["oomScoreAdj"] = serde_json::json!(321);
    b.sh("echo OOM=$(cat /proc/self/oom_score_adj)");
    let out = rt.run(&b);
    out.ok();
    assert_eq!(out.expect_field("OOM"), "321", "\n{out}");
}

#[test]
fn user_namespace_with_mappings() {
    let rt = Runtime::new();
    let mut b = userns_bundle();
    b.args(&["sleep", "1000"]);
    // A file owned by the host ids that container ids 1000:1000 map to.
    chown(
        b.rootfs().join("home/tester"),
        Some(BASE + 1000),
        Some(BASE + 1000),
    )
    .unwrap();
    let id = rt.run_detached(&b);
    let init = rt.init_pid(&id);

    // From the host: the init runs as the mapped ids, with the maps written.
    let status = fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    for key in ["Uid:", "Gid:"] {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        let ids: Vec<&str> = line[key.len()..].split_whitespace().collect();
        let base = BASE.to_string();
        assert_eq!(
            ids,
            vec![base.as_str(); 4],
            "{key} of the container's init on the host"
        );
    }
    for map in ["uid_map", "gid_map"] {
        let text = fs::read_to_string(format!("/proc/{init}/{map}")).unwrap();
        assert_eq!(
            map_lines(&text),
            vec![vec!["0".to_string(), BASE.to_string(), "65536".to_string()]],
            "{map}:\n{text}"
        );
    }

    // From inside, through exec (which must join the user namespace).
    let out = rt.exec_sh(
        &id,
        &[],
        "echo UID=$(id -u); echo GID=$(id -g); echo UIDMAP=$(cat /proc/self/uid_map); \
         echo GIDMAP=$(cat /proc/self/gid_map); echo USERNS=$(readlink /proc/self/ns/user); \
         echo TESTER=$(stat -c %u:%g /home/tester); echo BUSYBOX=$(stat -c %u:%g /bin/busybox); \
         echo DEV=$(stat -c %u:%g /dev); echo SHM=$(stat -c %u:%g /dev/shm); \
         echo PTS=$(stat -c %u:%g /dev/pts/ptmx); touch /tmp/made-inside && echo TOUCH=ok",
    );
    out.ok();
    assert_eq!(out.expect_field("UID"), "0", "\n{out}");
    assert_eq!(out.expect_field("GID"), "0", "\n{out}");
    let map = format!("0 {BASE} 65536");
    assert_eq!(out.expect_field("UIDMAP"), map, "\n{out}");
    assert_eq!(out.expect_field("GIDMAP"), map, "\n{out}");
    let host_view = fs::read_link(format!("/proc/{init}/ns/user")).unwrap();
    assert_eq!(
        out.expect_field("USERNS"),
        host_view.display().to_string(),
        "exec did not join the user namespace\n{out}"
    );
    assert_eq!(
        out.expect_field("TESTER"),
        "1000:1000",
        "mapped owner\n{out}"
    );
    assert_eq!(
        out.expect_field("BUSYBOX"),
        "65534:65534",
        "host root is unmapped: the overflow ids\n{out}"
    );
    // What the runtime mounts for the container is owned by the container's root.
    for key in ["DEV", "SHM", "PTS"] {
        assert_eq!(out.expect_field(key), "0:0", "{key}\n{out}");
    }
    assert_eq!(out.expect_field("TOUCH"), "ok", "\n{out}");
    assert_eq!(
        owner(&b.rootfs().join("tmp/made-inside")),
        (BASE, BASE),
        "a file made by the container's root, seen from the host"
    );
}

#[test]
fn idmapped_bind_mount_shows_the_mapped_owner() {
    let rt = Runtime::new();
    let mut b = userns_bundle();
    let src = b.path().join("idmapped-src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("owned-by-1000"), "x").unwrap();
    chown(src.join("owned-by-1000"), Some(1000), Some(1000)).unwrap();
    fs::write(src.join("owned-by-root"), "x").unwrap();
    // The container's root (an unprivileged host uid) cannot make the mount point itself.
    fs::create_dir_all(b.path().join("rootfs/mnt/idmapped")).unwrap();
    if let Some(m) = b.config["mounts"].as_array_mut() {
        m.push(json!({
            "destination": "/mnt/idmapped",
            "type": "bind",
            "source": src.to_str().unwrap(),
            "options": ["bind", "idmap"],
            "uidMappings": id_mappings(&[(0, BASE, 65536)]),
            "gidMappings": id_mappings(&[(0, BASE, 65536)]),
        }));
    }
    b.sh(
        "echo ROOTFILE=$(stat -c %u:%g /mnt/idmapped/owned-by-root); \
         echo USERFILE=$(stat -c %u:%g /mnt/idmapped/owned-by-1000); \
         touch /mnt/idmapped/made-inside && echo TOUCH=ok",
    );
    let out = rt.run(&b);
    out.ok();
    // On-disk 0 and 1000 show as the container's 0 and 1000 (without the idmap: 65534).
    assert_eq!(out.expect_field("ROOTFILE"), "0:0", "\n{out}");
    assert_eq!(out.expect_field("USERFILE"), "1000:1000", "\n{out}");
    assert_eq!(out.expect_field("TOUCH"), "ok", "\n{out}");
    assert_eq!(
        owner(&src.join("made-inside")),
        (0, 0),
        "written through the idmapped mount by the container's root: on-disk root"
    );
}

/// A bundle for `user`: owned by it, config.json from `spec --rootless` run as the user, the
/// process replaced by `script` (guarded) without a terminal.
fn rootless_bundle(user: &RootlessUser, rt: &Runtime, b: &mut Bundle, script: &str) {
    user.chown(b.path());
    let out = user.run(
        &["spec", "--rootless", "--bundle", b.path_str()],
        rt.work_dir(),
        "spec",
    );
    out.ok();
    let text = fs::read_to_string(b.path().join("config.json")).expect("spec wrote no config.json");
    let spec: Value = serde_json::from_str(&text).expect("spec wrote no JSON");
    b.config = spec;
    // A writable root, so that the tests can leave files for the host to look at.
    b.terminal(false).root_readonly(false).sh(script);
    b.write();
}

/// Polls `state ID` as the user until the status is `status`.
fn wait_status_as(user: &RootlessUser, rt: &Runtime, id: &str, status: &str) -> Value {
    let start = Instant::now();
    loop {
        let out = user.run(&["state", id], rt.work_dir(), "state");
        if let Ok(v) = serde_json::from_str::<Value>(&out.stdout) {
            if v["status"] == status {
                return v;
            }
        }
        assert!(
            start.elapsed() < WAIT,
            "container {id} never reached {status:?}\n{out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn rootless_container_with_a_single_id_mapping() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let user = RootlessUser::create();
    rootless_bundle(
        &user,
        &rt,
        &mut b,
        "echo UID=$(id -u); echo UIDMAP=$(cat /proc/self/uid_map); \
         echo GIDMAP=$(cat /proc/self/gid_map); echo SETGROUPS=$(cat /proc/self/setgroups); \
         touch /tmp/rootless-made && echo TOUCH=ok",
    );
    let id = format!("rl-{}", std::process::id());
    user.track(&id);
    let create = user.run(
        &["create", "--bundle", b.path_str(), &id],
        rt.work_dir(),
        "create",
    );
    create.ok();
    let name = if is_runc() { "runc" } else { "coracle" };
    let state_dir = user.xdg_runtime_dir().join(name).join(&id);
    assert!(
        state_dir.is_dir(),
        "the state of a rootless container belongs in $XDG_RUNTIME_DIR/{name}/<id> ({})",
        state_dir.display()
    );
    let st = wait_status_as(&user, &rt, &id, "created");
    let pid = st["pid"].as_i64().unwrap();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let want = user.uid.to_string();
    assert_eq!(
        uid_line[4..].split_whitespace().collect::<Vec<_>>(),
        vec![want.as_str(); 4],
        "the container's init runs as the user on the host"
    );
    user.run(&["start", &id], rt.work_dir(), "start").ok();
    wait_status_as(&user, &rt, &id, "stopped");
    let out = Output {
        stdout: fs::read_to_string(rt.work_dir().join("create.out")).unwrap_or_default(),
        stderr: fs::read_to_string(rt.work_dir().join("create.err")).unwrap_or_default(),
        ..create
    };
    assert_eq!(out.expect_field("UID"), "0", "\n{out}");
    assert_eq!(
        out.expect_field("UIDMAP"),
        format!("0 {} 1", user.uid),
        "\n{out}"
    );
    assert_eq!(
        out.expect_field("GIDMAP"),
        format!("0 {} 1", user.gid),
        "\n{out}"
    );
    assert_eq!(
        out.expect_field("SETGROUPS"),
        "deny",
        "a single-id gid map written by the user needs setgroups denied\n{out}"
    );
    assert_eq!(out.expect_field("TOUCH"), "ok", "\n{out}");
    assert_eq!(
        owner(&b.rootfs().join("tmp/rootless-made")),
        (user.uid, user.gid),
        "a file made by the rootless container's root is the user's on the host"
    );
    user.run(&["delete", &id], rt.work_dir(), "delete").ok();
    assert!(!state_dir.exists(), "state left after delete");
}

#[test]
fn rootless_state_dir_without_xdg_runtime_dir() {
    if skip_for_runc("runc 1.1 falls back to /run/runc") {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let user = RootlessUser::create();
    rootless_bundle(&user, &rt, &mut b, "sleep 1000");
    let id = format!("rl-{}", std::process::id());
    user.track(&id);
    let fallback = std::env::temp_dir().join(format!("coracle-{}", user.uid));
    let mut cmd = user.command(&["create", "--bundle", b.path_str(), &id]);
    cmd.env_remove("XDG_RUNTIME_DIR");
    let out = rt.exec_command(cmd, "(as the user, no XDG_RUNTIME_DIR) create");
    let exists = fallback.join(&id).is_dir();
    let mut cmd = user.command(&["delete", "--force", &id]);
    cmd.env_remove("XDG_RUNTIME_DIR");
    let del = rt.exec_command(cmd, "(as the user, no XDG_RUNTIME_DIR) delete --force");
    let _ = fs::remove_dir_all(&fallback);
    out.ok();
    assert!(
        exists,
        "without XDG_RUNTIME_DIR the state belongs in {}/<id>",
        fallback.display()
    );
    del.ok();
}

#[test]
fn rootless_container_with_subordinate_ids() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let user = RootlessUser::create();
    let (sub_u, n_u) = user
        .subuid()
        .expect("useradd gave the user no /etc/subuid range");
    let (sub_g, n_g) = user
        .subgid()
        .expect("useradd gave the user no /etc/subgid range");
    let (n_u, n_g) = (n_u.min(65536), n_g.min(65536));
    rootless_bundle(
        &user,
        &rt,
        &mut b,
        "echo UIDMAP=$(cat /proc/self/uid_map | tr '\\n' ' '); \
         echo SETGROUPS=$(cat /proc/self/setgroups); touch /tmp/multi; \
         chown 1000:1000 /tmp/multi && echo CHOWN=ok; echo OWNER=$(stat -c %u:%g /tmp/multi)",
    );
    b.uid_mappings(&[(0, user.uid, 1), (1, sub_u, n_u)])
        .gid_mappings(&[(0, user.gid, 1), (1, sub_g, n_g)])
        .caps_all(&[
            "CAP_CHOWN",
            "CAP_AUDIT_WRITE",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
        ])
        .remove_cap_set("ambient")
        .remove_cap_set("inheritable");
    b.write();
    let id = format!("rl-{}", std::process::id());
    user.track(&id);
    let out = user.run(
        &["run", "--bundle", b.path_str(), &id],
        rt.work_dir(),
        "run",
    );
    out.ok();
    assert_eq!(
        out.expect_field("UIDMAP"),
        format!("0 {} 1 1 {sub_u} {n_u}", user.uid),
        "\n{out}"
    );
    assert_eq!(out.expect_field("CHOWN"), "ok", "\n{out}");
    assert_eq!(out.expect_field("OWNER"), "1000:1000", "\n{out}");
    assert_eq!(
        owner(&b.rootfs().join("tmp/multi")),
        (sub_u + 999, sub_g + 999),
        "container id 1000 is subordinate id start+999 on the host"
    );
}

#[test]
fn rootless_exec() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let user = RootlessUser::create();
    rootless_bundle(&user, &rt, &mut b, "sleep 1000");
    let id = format!("rl-{}", std::process::id());
    user.track(&id);
    user.run(
        &["run", "--detach", "--bundle", b.path_str(), &id],
        rt.work_dir(),
        "run",
    )
    .ok();
    let script = guarded("echo UID=$(id -u); echo ONE=$(cat /proc/1/cmdline | tr '\\0' ' ')");
    let out = user.run(&["exec", &id, "sh", "-c", &script], rt.work_dir(), "exec");
    out.ok();
    assert_eq!(out.expect_field("UID"), "0", "\n{out}");
    assert_eq!(out.expect_field("ONE"), "sleep 1000", "\n{out}");
}
