//! The system-call ABIs a filter can judge: their `AUDIT_ARCH_*` values, syscall tables and
//! argument width. On an x86_64 host a process can call the kernel through three ABIs: x86_64,
//! i386 (`int 0x80`, 32-bit arguments) and x32 (x86_64's arch value, numbers with bit 30 set).

use oci_spec::runtime::Arch;

use super::tables;

/// `__X32_SYSCALL_BIT`: set in `seccomp_data.nr` for an x32 call.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// `AUDIT_ARCH_X86_64` (also the arch value of x32 calls).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// One system-call ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Abi {
    /// x86_64.
    X86_64,
    /// i386, as seen on an x86_64 kernel (`int 0x80`, compat syscalls).
    X86,
    /// x32.
    X32,
}

impl Abi {
    /// The ABIs this host's kernel can be called through, native first.
    pub fn host() -> &'static [Abi] {
        if cfg!(target_arch = "x86_64") {
            &[Abi::X86_64, Abi::X86, Abi::X32]
        } else {
            &[]
        }
    }

    /// The host's native ABI, if coracle knows it.
    pub fn native() -> Option<Abi> {
        Self::host().first().copied()
    }

    /// The ABI an OCI architecture names, when the host can run it (`None` for an architecture
    /// this kernel never reports: a filter for it would never be consulted).
    pub fn from_oci(arch: Arch) -> Option<Abi> {
        let abi = match arch {
            Arch::ScmpArchNative => return Self::native(),
            Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX86 => Abi::X86,
            Arch::ScmpArchX32 => Abi::X32,
            _ => return None,
        };
        Self::host().contains(&abi).then_some(abi)
    }

    /// The OCI name (`SCMP_ARCH_*`).
    pub fn oci(self) -> Arch {
        match self {
            Abi::X86_64 => Arch::ScmpArchX86_64,
            Abi::X86 => Arch::ScmpArchX86,
            Abi::X32 => Arch::ScmpArchX32,
        }
    }

    /// `seccomp_data.arch` for a call through this ABI.
    pub fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::X86 => AUDIT_ARCH_I386,
        }
    }

    /// Whether the arguments are 64 bits wide (else only their low 32 bits are compared, as
    /// libseccomp does for 32-bit ABIs).
    pub fn wide_args(self) -> bool {
        !matches!(self, Abi::X86)
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Abi::X86_64 => tables::X86_64,
            Abi::X86 => tables::I386,
            Abi::X32 => tables::X32,
        }
    }

    /// The number of system call `name` in this ABI as the filter sees it (x32 numbers carry
    /// [`X32_SYSCALL_BIT`]); `None` when this ABI has no such call.
    pub fn syscall(self, name: &str) -> Option<u32> {
        let table = self.table();
        table
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| table[i].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_agree_with_libc() {
        for abi in [Abi::X86_64, Abi::X86, Abi::X32] {
            assert!(abi.table().windows(2).all(|w| w[0].0 < w[1].0), "{abi:?}");
        }
        #[cfg(target_arch = "x86_64")]
        {
            let nr = |n: libc::c_long| Some(u32::try_from(n).unwrap());
            assert_eq!(Abi::X86_64.syscall("write"), nr(libc::SYS_write));
            assert_eq!(Abi::X86_64.syscall("unshare"), nr(libc::SYS_unshare));
            assert_eq!(Abi::X86_64.syscall("clone3"), nr(libc::SYS_clone3));
            assert_eq!(Abi::X86_64.syscall("mseal"), nr(libc::SYS_mseal));
        }
        assert_eq!(Abi::X86.syscall("write"), Some(4));
        assert_eq!(Abi::X86.syscall("socketcall"), Some(102));
        assert_eq!(Abi::X32.syscall("write"), Some(X32_SYSCALL_BIT | 1));
        assert_eq!(Abi::X86_64.syscall("socketcall"), None);
        assert_eq!(Abi::X86.syscall("no_such_call"), None);
    }
}
