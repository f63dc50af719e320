//! The container's filesystem: mounts, propagation, devices, /dev symlinks, pivot_root,
//! masked and read-only paths. (Stub: being written.)

use std::path::Path;

use oci_spec::runtime::Spec;

/// Errors of the rootfs module.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A mount in config.json is invalid.
    #[error("mounts[{index}] ({destination}): {reason}")]
    InvalidMount {
        /// Index in `mounts`.
        index: usize,
        /// Its destination.
        destination: String,
        /// What is wrong.
        reason: String,
    },
}

/// Everything the child needs to build the root filesystem, checked in the parent.
#[derive(Debug, Clone)]
pub struct RootfsPlan {}

impl RootfsPlan {
    /// Checks and converts the filesystem part of `spec` (`root`, `mounts`, `linux.devices`,
    /// `rootfsPropagation`, `maskedPaths`, `readonlyPaths`). `rootfs` is the absolute,
    /// canonical root path.
    pub fn from_spec(_spec: &Spec, _rootfs: &Path) -> Result<Self, RootfsError> {
        Ok(Self {})
    }
}

/// Options of [`setup`] that come from the command line or the namespaces.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetupOptions {
    /// `--no-pivot`: move the root with MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The container has its own user namespace (devices are bind mounted, not mknod'ed).
    pub in_user_ns: bool,
    /// The container has its own cgroup namespace.
    pub cgroup_ns: bool,
}

/// Runs in the container process, in its new mount namespace: propagation, the mounts, the
/// devices, /dev symlinks and /dev/pts, then pivot_root (or chroot with `no_pivot`). On return
/// the process's root and cwd are the container's root.
pub fn setup(_plan: &RootfsPlan, _opts: SetupOptions) -> Result<(), RootfsError> {
    Ok(())
}

/// Runs after [`setup`] (and after the createContainer hooks): readonly paths, masked paths,
/// and a read-only root when `root.readonly`.
pub fn finalize(_plan: &RootfsPlan) -> Result<(), RootfsError> {
    Ok(())
}
