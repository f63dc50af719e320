//! Filesystem system calls: openat2, the new mount API, mount_setattr.
