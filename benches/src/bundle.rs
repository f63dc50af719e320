//! The busybox bundle: one shared read-only rootfs, one config.json per container (each with
//! its own absolute cgroupsPath).

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `dir/rootfs` from a static busybox: `/bin/busybox` plus one symlink per applet.
pub fn build_rootfs(dir: &Path, busybox: &Path) -> io::Result<PathBuf> {
    if has_interpreter(busybox)? {
        return Err(io::Error::other(format!(
            "{} is dynamically linked; install busybox-static or pass --busybox",
            busybox.display()
        )));
    }
    let rootfs = dir.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "root"] {
        fs::create_dir_all(rootfs.join(d))?;
    }
    fs::copy(busybox, rootfs.join("bin/busybox"))?;
    let out = Command::new(busybox).arg("--list").output()?;
    let list = String::from_utf8_lossy(&out.stdout);
    for applet in list
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
    {
        symlink("busybox", rootfs.join("bin").join(applet))?;
    }
    if !rootfs.join("bin/true").exists() || !rootfs.join("bin/sleep").exists() {
        return Err(io::Error::other("busybox lacks the true/sleep applets"));
    }
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    fs::write(rootfs.join("etc/group"), "root:x:0:\n")?;
    Ok(rootfs)
}

/// Whether the ELF file has a PT_INTERP program header (is dynamically linked).
pub fn has_interpreter(path: &Path) -> io::Result<bool> {
    let mut buf = Vec::new();
    fs::File::open(path)?
        .take(64 * 1024)
        .read_to_end(&mut buf)?;
    let bad = || {
        io::Error::other(format!(
            "{}: not a 64-bit little-endian ELF file",
            path.display()
        ))
    };
    if buf.len() < 64 || &buf[..4] != b"\x7fELF" || buf[4] != 2 || buf[5] != 1 {
        return Err(bad());
    }
    let u16_at = |o: usize| buf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        buf.get(o..o + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let u64_at = |o: usize| {
        buf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let phoff = u64_at(0x20)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(bad)?;
    let phentsize = usize::from(u16_at(0x36).ok_or_else(bad)?);
    let phnum = usize::from(u16_at(0x38).ok_or_else(bad)?);
    for i in 0..phnum {
        const PT_INTERP: u32 = 3;
        if u32_at(phoff + i * phentsize).ok_or_else(bad)? == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes `bundle/config.json` (the config `runc spec` makes, with terminal false) running
/// `args`, rooted at the absolute `rootfs`, in cgroup `cgroups_path`.
pub fn write_bundle(
    bundle: &Path,
    rootfs: &Path,
    args: &[&str],
    cgroups_path: &str,
) -> io::Result<()> {
    fs::create_dir_all(bundle)?;
    let mut spec = spec_template();
    spec["process"]["args"] = serde_json::json!(args);
    spec["root"]["path"] = serde_json::json!(rootfs);
    spec["linux"]["cgroupsPath"] = serde_json::json!(cgroups_path);
    let text = serde_json::to_vec_pretty(&spec).map_err(io::Error::other)?;
    fs::write(bundle.join("config.json"), text)
}

/// `runc spec` (runc 1.1) with `"terminal": false`: `coracle spec` without the cgroup
/// namespace, with ociVersion 1.0.2-dev, runc's hostname and ambient capabilities.
fn spec_template() -> serde_json::Value {
    let mut c = coracle::spec::template(false);
    c["ociVersion"] = serde_json::json!("1.0.2-dev");
    c["process"]["terminal"] = serde_json::json!(false);
    c["process"]["capabilities"]["ambient"] = c["process"]["capabilities"]["bounding"].clone();
    c["hostname"] = serde_json::json!("runc");
    if let Some(ns) = c["linux"]["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "cgroup");
    }
    c
}

#[cfg(test)]
mod tests {
    // No `use super::*`: this file is also compiled into the criterion bench, where the tests
    // are dropped and an unused import would warn. Hence the full paths.

    #[test]
    fn template_is_json_and_gets_filled() {
        let dir = std::env::temp_dir().join(format!("coracle-bench-test-{}", std::process::id()));
        super::write_bundle(
            &dir,
            std::path::Path::new("/abs/rootfs"),
            &["/bin/true"],
            "/x/y",
        )
        .unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(v["process"]["args"][0], "/bin/true");
        assert_eq!(v["process"]["terminal"], false);
        assert_eq!(v["root"]["path"], "/abs/rootfs");
        assert_eq!(v["linux"]["cgroupsPath"], "/x/y");
    }

    #[test]
    fn elf_interp_detection() {
        // Our own test binary is linked statically (.cargo/config.toml); /bin/sh is not.
        let me = std::env::current_exe().unwrap();
        assert!(!super::has_interpreter(&me).unwrap());
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        assert!(super::has_interpreter(&sh).unwrap());
    }
}
