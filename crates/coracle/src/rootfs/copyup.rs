//! `tmpcopyup`: the old content of a directory copied into the tmpfs mounted on it.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::dir::Dir;
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};

use super::{io_err, RootfsError};

/// Copies the entries of the directory `from` (opened O_RDONLY) into `to` (any fd on the
/// target directory), recursively, keeping modes, owners and symlinks; never following one.
pub(super) fn copy_dir(from: &OwnedFd, to: &OwnedFd, shown: &Path) -> Result<(), RootfsError> {
    let to_dir = nix::fcntl::openat(
        to,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err("open", shown)(e.into()))?;
    copy_entries(from, &to_dir, shown)
}

fn copy_entries(from: &OwnedFd, to: &OwnedFd, shown: &Path) -> Result<(), RootfsError> {
    let err = |op| move |e: nix::Error| io_err(op, shown)(e.into());
    let mut dir = Dir::openat(
        from,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(err("read directory"))?;
    let names: Vec<_> = dir
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.to_bytes() != b"." && n.to_bytes() != b"..")
        .collect();
    for name in names {
        let name = name.as_c_str();
        let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(err("stat"))?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
        if kind == SFlag::S_IFDIR {
            mkdirat(to, name, mode).map_err(err("mkdir"))?;
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let sub_from =
                nix::fcntl::openat(from, name, flags, Mode::empty()).map_err(err("open"))?;
            let sub_to = nix::fcntl::openat(to, name, flags, Mode::empty()).map_err(err("open"))?;
            copy_entries(&sub_from, &sub_to, shown)?;
        } else if kind == SFlag::S_IFREG {
            let src = nix::fcntl::openat(
                from,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(err("open"))?;
            let dst = nix::fcntl::openat(
                to,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                mode,
            )
            .map_err(err("create"))?;
            std::io::copy(&mut File::from(src), &mut File::from(dst))
                .map_err(io_err("copy", shown))?;
        } else if kind == SFlag::S_IFLNK {
            let target = readlinkat(from, name).map_err(err("readlink"))?;
            symlinkat(target.as_os_str(), to, name).map_err(err("symlink"))?;
        } else {
            mknodat(to, name, kind, mode, st.st_rdev).map_err(err("mknod"))?;
        }
        fchownat(
            to.as_fd(),
            name,
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(err("chown"))?;
        if kind != SFlag::S_IFLNK {
            // umask may have trimmed the mode of what we created.
            nix::sys::stat::fchmodat(to, name, mode, nix::sys::stat::FchmodatFlags::FollowSymlink)
                .map_err(err("chmod"))?;
        }
    }
    Ok(())
}
