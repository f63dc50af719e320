//! cgroup v2 devices: the device rules compiled by hand into a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program (as runc's `devicefilter`), loaded and attached to the container's cgroup.
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (access_type = access << 16 | type) and walks the rules from the last to the first: the
//! first that matches decides (1 allows, 0 denies); no match denies. An allow rule matches
//! when it covers every access asked for; a deny rule when it covers any of them.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::resources::{DeviceRule, ACC_ALL};
use super::CgroupError;
use crate::sys::bpf::{self, Insn};

const BPF_LDX_W_MEM: u8 = 0x61; // BPF_LDX | BPF_W | BPF_MEM
const BPF_ALU_AND_K: u8 = 0x54; // 32-bit and, immediate
const BPF_ALU_RSH_K: u8 = 0x74; // 32-bit right shift, immediate
const BPF_ALU_MOV_X: u8 = 0xbc; // 32-bit move, register
const BPF_ALU64_MOV_K: u8 = 0xb7; // 64-bit move, immediate
const BPF_JNE_K: u8 = 0x55;
const BPF_JEQ_K: u8 = 0x15;
const BPF_EXIT: u8 = 0x95;

/// `BPF_DEVCG_DEV_BLOCK` / `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

// Registers: r1 ctx, r2 type, r3 access, r4 major, r5 minor, r6 scratch, r0 result.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const R6: u8 = 6;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The instructions of one rule; jumps that leave the block on a mismatch have an offset to
/// the block's end.
fn rule_block(r: &DeviceRule) -> Vec<Insn> {
    // (instruction, whether it is a "no match: skip the rest of the block" jump)
    let mut body: Vec<(Insn, bool)> = Vec::new();
    match r.kind {
        'b' => body.push((insn(BPF_JNE_K, R2, 0, 0, DEV_BLOCK), true)),
        'c' => body.push((insn(BPF_JNE_K, R2, 0, 0, DEV_CHAR), true)),
        _ => {}
    }
    if r.allow {
        if r.access != ACC_ALL {
            // Every access asked for must be in the rule: (access & ~rule) == 0.
            body.push((insn(BPF_ALU_MOV_X, R6, R3, 0, 0), false));
            body.push((
                insn(BPF_ALU_AND_K, R6, 0, 0, i32::from(!r.access & ACC_ALL)),
                false,
            ));
            body.push((insn(BPF_JNE_K, R6, 0, 0, 0), true));
        }
    } else if r.access != ACC_ALL {
        // Any access asked for that the rule names: (access & rule) != 0.
        body.push((insn(BPF_ALU_MOV_X, R6, R3, 0, 0), false));
        body.push((insn(BPF_ALU_AND_K, R6, 0, 0, i32::from(r.access)), false));
        body.push((insn(BPF_JEQ_K, R6, 0, 0, 0), true));
    }
    if let Some(m) = r.major {
        body.push((insn(BPF_JNE_K, R4, 0, 0, m.cast_signed()), true));
    }
    if let Some(m) = r.minor {
        body.push((insn(BPF_JNE_K, R5, 0, 0, m.cast_signed()), true));
    }
    body.push((insn(BPF_ALU64_MOV_K, R0, 0, 0, i32::from(r.allow)), false));
    body.push((insn(BPF_EXIT, 0, 0, 0, 0), false));
    let len = body.len();
    body.into_iter()
        .enumerate()
        .map(|(i, (mut ins, skip))| {
            if skip {
                ins.off = i16::try_from(len - i - 1).unwrap_or(i16::MAX);
            }
            ins
        })
        .collect()
}

/// Compiles `rules` (in spec order: later rules override earlier ones) into a program.
pub fn compile(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = vec![
        insn(BPF_LDX_W_MEM, R2, R1, 0, 0),
        insn(BPF_ALU_AND_K, R2, 0, 0, 0xffff),
        insn(BPF_LDX_W_MEM, R3, R1, 0, 0),
        insn(BPF_ALU_RSH_K, R3, 0, 0, 16),
        insn(BPF_LDX_W_MEM, R4, R1, 4, 0),
        insn(BPF_LDX_W_MEM, R5, R1, 8, 0),
    ];
    for r in rules.iter().rev() {
        prog.extend(rule_block(r));
        // A rule for every device and access always decides: nothing before it matters.
        if r.kind == 'a' && r.major.is_none() && r.minor.is_none() && r.access == ACC_ALL {
            return prog;
        }
    }
    prog.push(insn(BPF_ALU64_MOV_K, R0, 0, 0, 0));
    prog.push(insn(BPF_EXIT, 0, 0, 0, 0));
    prog
}

/// Evaluates a compiled program for one access (type 1 block / 2 char; access bits), so that
/// tests can check the compiler without a kernel. Supports exactly the opcodes [`compile`]
/// emits.
pub fn evaluate(prog: &[Insn], dev_type: u32, access: u32, major: u32, minor: u32) -> Option<u64> {
    let ctx = [(access << 16) | dev_type, major, minor];
    let mut reg = [0u64; 11];
    let mut pc = 0usize;
    while let Some(i) = prog.get(pc) {
        let (dst, src) = (usize::from(i.regs & 0xf), usize::from(i.regs >> 4));
        let imm = u64::from(i.imm.cast_unsigned());
        let mut next = pc + 1;
        let jump = |cond: bool| {
            if cond {
                pc + 1 + usize::try_from(i.off).unwrap_or(0)
            } else {
                pc + 1
            }
        };
        match i.code {
            BPF_LDX_W_MEM => reg[dst] = u64::from(*ctx.get(usize::try_from(i.off / 4).ok()?)?),
            BPF_ALU_AND_K => reg[dst] = (reg[dst] & imm) & 0xffff_ffff,
            BPF_ALU_RSH_K => reg[dst] = (reg[dst] & 0xffff_ffff) >> imm,
            BPF_ALU_MOV_X => reg[dst] = reg[src] & 0xffff_ffff,
            BPF_ALU64_MOV_K => reg[dst] = imm,
            BPF_JNE_K => next = jump(reg[dst] != imm),
            BPF_JEQ_K => next = jump(reg[dst] == imm),
            BPF_EXIT => return Some(reg[0]),
            _ => return None,
        }
        pc = next;
    }
    None
}

fn bpf_err<'a>(op: &'static str, dir: &'a Path) -> impl FnOnce(std::io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Bpf {
        op,
        path: dir.to_path_buf(),
        source,
    }
}

/// Loads the program for `rules` and attaches it to the cgroup `dir` (allowing several
/// programs, as runc); then detaches the device programs that were attached there before, so
/// that the new rules replace the old ones without a moment with no filter.
pub fn attach(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let prog = compile(rules);
    let fd = bpf::prog_load(bpf::PROG_TYPE_CGROUP_DEVICE, &prog, c"Apache-2.0")
        .map_err(bpf_err("load", dir))?;
    let cgroup: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map(OwnedFd::from)
        .map_err(bpf_err("open", dir))?;
    let old = bpf::prog_query(cgroup.as_fd(), bpf::CGROUP_DEVICE).map_err(bpf_err("query", dir))?;
    bpf::prog_attach(
        fd.as_fd(),
        cgroup.as_fd(),
        bpf::CGROUP_DEVICE,
        bpf::F_ALLOW_MULTI,
    )
    .map_err(bpf_err("attach", dir))?;
    for id in old {
        let old_fd = bpf::prog_get_fd_by_id(id).map_err(bpf_err("get fd of old program", dir))?;
        bpf::prog_detach(old_fd.as_fd(), cgroup.as_fd(), bpf::CGROUP_DEVICE)
            .map_err(bpf_err("detach old program", dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::resources::{device_rules, ACC_MKNOD, ACC_READ, ACC_WRITE};

    const R: u32 = ACC_READ as u32;
    const W: u32 = ACC_WRITE as u32;
    const M: u32 = ACC_MKNOD as u32;
    const C: u32 = DEV_CHAR.unsigned_abs();
    const B: u32 = DEV_BLOCK.unsigned_abs();

    fn rules(json: &str) -> Vec<DeviceRule> {
        let res: oci_spec::runtime::LinuxResources = serde_json::from_str(json).unwrap();
        device_rules(&res).unwrap()
    }

    #[test]
    fn runc_defaults() {
        let p = compile(&rules("{}"));
        assert_eq!(evaluate(&p, C, R | W, 1, 3), Some(1)); // /dev/null
        assert_eq!(evaluate(&p, C, R, 1, 9), Some(1)); // urandom
        assert_eq!(evaluate(&p, C, R | W, 136, 7), Some(1)); // a pty
        assert_eq!(evaluate(&p, C, M, 4, 1), Some(1)); // mknod of anything
        assert_eq!(evaluate(&p, B, M, 8, 0), Some(1));
        assert_eq!(evaluate(&p, B, R, 8, 0), Some(0)); // /dev/sda
        assert_eq!(evaluate(&p, C, R, 1, 1), Some(0)); // /dev/mem
        assert_eq!(evaluate(&p, C, R | M, 1, 1), Some(0));
    }

    #[test]
    fn order_and_partial_access() {
        let p = compile(&rules(
            r#"{"devices":[{"allow":true,"type":"b","major":8,"access":"r"},
                {"allow":false,"type":"b","major":8,"minor":1,"access":"r"},
                {"allow":true,"type":"c","major":10,"minor":229,"access":"rw"}]}"#,
        ));
        assert_eq!(evaluate(&p, B, R, 8, 0), Some(1));
        assert_eq!(evaluate(&p, B, W, 8, 0), Some(0));
        assert_eq!(evaluate(&p, B, R, 8, 1), Some(0));
        assert_eq!(evaluate(&p, C, R | W, 10, 229), Some(1));
        assert_eq!(evaluate(&p, C, R | W, 10, 228), Some(0));
        // An allow-all rule at the end short-circuits everything.
        let p = compile(&rules(r#"{"devices":[{"allow":true,"access":"rwm"}]}"#));
        assert_eq!(evaluate(&p, B, R, 8, 0), Some(1));
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Attaches a program to a fresh cgroup2 directory of this host (hybrid or unified) and
    /// checks, from a child moved into it, that /dev/null opens and /dev/kmsg does not.
    #[test]
    fn real_program_filters_opens() {
        let Some(mount) = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.controllers").exists())
        else {
            return;
        };
        if !is_root() {
            return;
        }
        let dir = mount.join(format!("coracle-bpf-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        struct Rm(std::path::PathBuf);
        impl Drop for Rm {
            fn drop(&mut self) {
                let _ = crate::cgroups::fsops::rmdir_retry(&self.0);
            }
        }
        let _rm = Rm(dir.clone());
        attach(&dir, &rules("{}")).unwrap();
        // Attaching again replaces the program (one stays attached).
        attach(&dir, &rules("{}")).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&dir)
            .unwrap();
        assert_eq!(
            bpf::prog_query(f.as_fd(), bpf::CGROUP_DEVICE)
                .unwrap()
                .len(),
            1
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && : < /dev/null && \
                 if (: < /dev/kmsg) 2>/dev/null; then echo kmsg-open; else echo kmsg-denied; fi",
                dir.display()
            ))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(text.trim(), "kmsg-denied");
    }
}
